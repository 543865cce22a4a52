"""Small builders shared by the tests: behavior specs, settings, policies, replay samples,
CartPole-like trajectories and short ``mlagents-learn`` runs on Basic."""

from __future__ import annotations

import socket
from importlib import resources

import numpy as np
import yaml
from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents.trainers.settings import NetworkSettings, TrainerSettings
from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents.trainers.trajectory import AgentExperience, Trajectory
from mlagents_envs.base_env import ActionSpec, ActionTuple, BehaviorSpec

from mla_dqn.optimizer import DQNOptimizer
from mla_dqn.settings import DemonstrationSettings, DQNSettings
from mla_dqn.trainer import DQNPolicy, DQNTrainer
from mla_plugin_core.replay.transitions import ReplaySample
from mla_plugin_core.testing import run_mlagents_learn
from mla_plugin_core.testing.builders import vector_behavior_spec


def behavior_spec(obs_size: int = 4, branches: tuple[int, ...] = (3,), continuous: int = 0):
    return vector_behavior_spec(ActionSpec(continuous, branches), obs_size, name="obs")


def trainer_settings(**hyperparameters) -> TrainerSettings:
    return TrainerSettings(
        trainer_type="dqn",
        hyperparameters=DQNSettings(**hyperparameters),
        network_settings=NetworkSettings(hidden_units=16, num_layers=1),
    )


def make_optimizer(spec: BehaviorSpec, settings: TrainerSettings, seed: int = 0) -> DQNOptimizer:
    signals = [s.value for s in settings.reward_signals]
    policy = DQNPolicy(seed, spec, settings.network_settings, settings.hyperparameters, signals)
    return DQNOptimizer(policy, settings)


def replay_sample(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: dict[str, np.ndarray],
    discounts: dict[str, np.ndarray],
    next_obs: np.ndarray,
    dones: np.ndarray | None = None,
    truncated: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    next_masks: np.ndarray | None = None,
    n_mask: int = 3,
) -> ReplaySample:
    b = len(obs)
    return ReplaySample(
        obs=[np.asarray(obs, np.float32)],
        continuous_actions=np.zeros((b, 0), np.float32),
        discrete_actions=np.asarray(actions, np.int32).reshape(b, -1),
        action_masks=np.ones((b, n_mask), bool) if masks is None else masks,
        rewards={k: np.asarray(v, np.float32) for k, v in rewards.items()},
        dones=np.zeros(b, bool) if dones is None else np.asarray(dones, bool),
        truncated=np.zeros(b, bool) if truncated is None else np.asarray(truncated, bool),
        next_obs=[np.asarray(next_obs, np.float32)],
        next_action_masks=np.ones((b, n_mask), bool) if next_masks is None else next_masks,
        discounts={k: np.asarray(v, np.float32) for k, v in discounts.items()},
        indices=np.arange(b, dtype=np.int64),
        weights=np.ones(b, np.float32),
    )


BASIC_CONFIG = resources.files("mla_dqn") / "configs" / "dqn_basic.yaml"
#: Steps of the Basic learning test (it runs once per mlagents version in CI).
BASIC_TEST_STEPS = 7000


def free_port() -> int:
    """A free TCP port for ``--base-port``, so that parallel runs do not collide."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def learn(tmp_path, config, **kwargs):
    extra = ["--base-port", str(free_port()), *kwargs.pop("extra_args", [])]
    return run_mlagents_learn(
        config, env="Basic", results_dir=tmp_path, seed=1, extra_args=extra, **kwargs
    )


def basic_config(**hyperparameters):
    config = yaml.safe_load(BASIC_CONFIG.read_text())
    config["behaviors"]["Basic"]["hyperparameters"].update(hyperparameters)
    return config


CARTPOLE = "CartPole-v1?team=0"
GAMMA = 0.99


def make_trainer(tmp_path, **hyperparameters) -> DQNTrainer:
    settings = TrainerSettings(
        trainer_type="dqn", hyperparameters=DQNSettings(batch_size=4, **hyperparameters)
    )
    settings.reward_signals[next(iter(settings.reward_signals))].gamma = GAMMA
    trainer = DQNTrainer("CartPole-v1", 10, settings, True, False, 0, str(tmp_path))
    identifiers = BehaviorIdentifiers.from_name_behavior_id(CARTPOLE)
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
    return Trajectory(steps, next_obs, [], agent, CARTPOLE)


def demo_trainer(
    tmp_path, demos: DemonstrationSettings, load: bool = False, normalize: bool = False
) -> DQNTrainer:
    """A Basic trainer with demonstrations, its checkpoints in ``tmp_path / "run"``."""
    settings = TrainerSettings(
        trainer_type="dqn",
        hyperparameters=DQNSettings(batch_size=4, demonstrations=demos),
        network_settings=NetworkSettings(hidden_units=16, num_layers=1, normalize=normalize),
    )
    trainer = DQNTrainer("Basic", 10, settings, True, load, 0, str(tmp_path / "run"))
    identifiers = BehaviorIdentifiers.from_name_behavior_id("Basic?team=0")
    spec = behavior_spec(20, (3,))  # Basic
    trainer.add_policy(identifiers, trainer.create_policy(identifiers, spec))
    return trainer
