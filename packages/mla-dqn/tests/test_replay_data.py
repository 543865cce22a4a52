"""What ``DQNTrainer`` stores from mlagents trajectories: CartPole-like episodes (reward 1
per step, a real terminal or a 500-step cut) must reach replay with the right ``dones``."""

import numpy as np
import pytest
from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents.trainers.settings import TrainerSettings
from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents.trainers.trajectory import AgentExperience, Trajectory
from mlagents_envs.base_env import ActionTuple

from mla_dqn.settings import DQNSettings
from mla_dqn.trainer import DQNTrainer

from .dqn_testkit import behavior_spec

BEHAVIOR = "CartPole-v1?team=0"
GAMMA = 0.99


def make_trainer(tmp_path, **hyperparameters) -> DQNTrainer:
    settings = TrainerSettings(
        trainer_type="dqn", hyperparameters=DQNSettings(batch_size=4, **hyperparameters)
    )
    settings.reward_signals[next(iter(settings.reward_signals))].gamma = GAMMA
    trainer = DQNTrainer("CartPole-v1", 10, settings, True, False, 0, str(tmp_path))
    identifiers = BehaviorIdentifiers.from_name_behavior_id(BEHAVIOR)
    trainer.add_policy(identifiers, trainer.create_policy(identifiers, behavior_spec(4, (2,))))
    return trainer


def experience(t: int, done: bool = False, interrupted: bool = False) -> AgentExperience:
    """Step ``t`` of an episode: observation ``[t, 0, 0, 0]``, action ``t % 2``, reward 1."""
    return AgentExperience(
        obs=[np.array([t, 0, 0, 0], np.float32)],
        reward=1.0,
        done=done,
        action=ActionTuple(discrete=np.array([t % 2], np.int32)),
        action_probs=LogProbsTuple(discrete=np.zeros(1, np.float32)),
        action_mask=[np.zeros(2, dtype=bool)],
        prev_action=np.zeros(1, np.float32),
        interrupted=interrupted,
        memory=None,
        group_status=[],
        group_reward=0.0,
    )


def trajectory(agent: str, first: int, last: int, **end) -> Trajectory:
    """Steps ``first..last`` of one agent; ``end`` (``done``, ``interrupted``) on the last."""
    steps = [experience(t, **(end if t == last else {})) for t in range(first, last + 1)]
    next_obs = [np.array([last + 1, 0, 0, 0], np.float32)]
    return Trajectory(steps, next_obs, [], agent, BEHAVIOR)


def stored(trainer: DQNTrainer) -> dict[str, np.ndarray]:
    """Every transition in replay, sorted by the step ``t`` of its observation."""
    replay = trainer.replay
    assert replay is not None
    everything = replay._gather(np.arange(len(replay)), np.ones(len(replay), np.float32))
    order = np.argsort(everything.obs[0][:, 0])
    return {
        "t": everything.obs[0][order, 0],
        "next_t": everything.next_obs[0][order, 0],
        "dones": everything.dones[order],
        "truncated": everything.truncated[order],
        "rewards": everything.rewards["extrinsic"][order],
        "discounts": everything.discounts["extrinsic"][order],
    }


@pytest.mark.parametrize("n_step", [1, 3])
def test_terminal_after_a_time_horizon_cut_reaches_replay_as_done(tmp_path, n_step):
    trainer = make_trainer(tmp_path, n_step=n_step)
    # A 10-step episode in two fragments (time_horizon 6), ending in a real terminal.
    trainer._process_trajectory(trajectory("agent-0", 0, 5))
    trainer._process_trajectory(trajectory("agent-0", 6, 9, done=True))
    rows = stored(trainer)
    assert rows["t"].tolist() == list(range(10))
    assert rows["next_t"].tolist() == [min(t + n_step, 10) for t in range(10)]
    # Only transitions whose n-step window reaches the terminal are done.
    assert rows["dones"].tolist() == [t + n_step >= 10 for t in range(10)]
    assert not rows["truncated"].any()
    k = np.minimum(n_step, 10 - np.arange(10))  # rewards summed per transition
    np.testing.assert_allclose(rows["rewards"], (1 - GAMMA**k) / (1 - GAMMA), rtol=1e-5)
    np.testing.assert_allclose(rows["discounts"], GAMMA**k, rtol=1e-5)
    assert trainer.n_step_accumulator is not None and len(trainer.n_step_accumulator) == 0


def test_max_step_cut_is_truncated_not_done(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer._process_trajectory(trajectory("agent-0", 0, 4, done=True, interrupted=True))
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 2, 3, 4]
    assert not rows["dones"].any()
    assert rows["truncated"].tolist() == [False] * 4 + [True]


def test_episodes_of_interleaved_agents_keep_their_own_terminals(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer._process_trajectory(trajectory("agent-0", 0, 2))
    trainer._process_trajectory(trajectory("agent-1", 100, 104, done=True))
    trainer._process_trajectory(trajectory("agent-0", 3, 3, done=True))
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 2, 3, 100, 101, 102, 103, 104]
    assert rows["dones"].tolist() == [False, False, False, True] + [False] * 4 + [True]
