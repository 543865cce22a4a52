"""The off-policy base trainer's data flow: trajectories -> n-step transitions in replay."""

from pathlib import Path

import numpy as np
import pytest
import torch
from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents.trainers.settings import (
    CuriositySettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
    TrainerSettings,
)
from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents.trainers.trajectory import AgentExperience, ObsUtil, Trajectory
from mlagents_envs.base_env import ActionSpec, ActionTuple
from tiny_plugin import RecordingTrainer

from mla_plugin_core.host.config_errors import ResumeError
from mla_plugin_core.replay import PrioritizedStepReplay, StepReplay
from mla_plugin_core.settings import OffPolicySettings
from mla_plugin_core.testing.builders import vector_behavior_spec
from mla_plugin_core.trainers.off_policy import (
    OffPolicyOptimizer,
    sample_to_agent_buffer,
)

BRANCHES = (3, 2)
GAMMA = 0.9
SPEC = vector_behavior_spec(ActionSpec.create_discrete(BRANCHES), obs_size=2, name="vec")


def make_trainer(tmp_path: Path, **hyperparameters) -> RecordingTrainer:
    settings = TrainerSettings(hyperparameters=OffPolicySettings(**hyperparameters))
    settings.reward_signals[next(iter(settings.reward_signals))].gamma = GAMMA
    trainer = RecordingTrainer("Test", 10, settings, True, False, 0, str(tmp_path))
    identifiers = BehaviorIdentifiers.from_name_behavior_id("Test?team=0")
    trainer.add_policy(identifiers, trainer.create_policy(identifiers, SPEC))
    return trainer


def experience(t: int, reward: float, done=False, interrupted=False, forbidden=()):
    mask = [np.zeros(b, dtype=bool) for b in BRANCHES]  # True = forbidden, as in DecisionSteps
    for branch, action in forbidden:
        mask[branch][action] = True
    return AgentExperience(
        obs=[np.array([t, 0.0], np.float32)],
        reward=reward,
        done=done,
        action=ActionTuple(discrete=np.array([t % 3, t % 2], np.int32)),
        action_probs=LogProbsTuple(discrete=np.zeros(2, np.float32)),
        action_mask=mask,
        prev_action=np.zeros(2, np.float32),
        interrupted=interrupted,
        memory=None,
        group_status=[],
        group_reward=0.0,
    )


def trajectory(agent: str, steps, next_t: int) -> Trajectory:
    return Trajectory(steps, [np.array([next_t, 0.0], np.float32)], [], agent, "Test?team=0")


def stored(trainer):
    replay = trainer.replay
    slots = replay.complete_slots()
    everything = replay.transitions(slots, np.ones(len(slots), np.float32))
    order = np.argsort(everything.obs[0][:, 0])
    return {
        name: np.asarray(value)[order]
        for name, value in everything._asdict().items()
        if name not in ("obs", "next_obs", "rewards", "discounts")
    } | {
        "t": everything.obs[0][order, 0],
        "next_t": everything.next_obs[0][order, 0],
        "rewards": everything.rewards["extrinsic"][order],
        "discounts": everything.discounts["extrinsic"][order],
    }


def test_time_horizon_cut_waits_for_the_next_mask_and_terminal_cuts_bootstrap(tmp_path):
    trainer = make_trainer(tmp_path, batch_size=2, buffer_size=100)
    # Fragment 1 cut by the time horizon: its last step waits for fragment 2.
    trainer._process_trajectory(trajectory("a", [experience(0, 1.0), experience(1, 2.0)], 2))
    assert len(trainer.replay) == 1
    # Fragment 2 starts with a mask forbidding branch 0 action 1; it ends with a terminal.
    trainer._process_trajectory(
        trajectory("a", [experience(2, 3.0, forbidden=[(0, 1)]), experience(3, 4.0, done=True)], 4)
    )
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 2, 3]
    assert rows["next_t"].tolist() == [1, 2, 3, 4]
    assert rows["rewards"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert rows["dones"].tolist() == [False, False, False, True]
    assert not rows["truncated"].any()
    np.testing.assert_allclose(rows["discounts"], GAMMA)
    # Step 1's next observation is step 2's, whose mask forbids action 1 of branch 0.
    assert rows["next_action_masks"][1].tolist() == [True, False, True, True, True]
    assert rows["action_masks"][2].tolist() == [True, False, True, True, True]
    assert rows["discrete_actions"][:, 0].tolist() == [0, 1, 2, 0]


def test_max_step_interruption_keeps_bootstrap_and_n_step_sums(tmp_path):
    trainer = make_trainer(tmp_path, batch_size=2, buffer_size=100, n_step=3)
    steps = [experience(0, 1.0), experience(1, 1.0), experience(2, 1.0)]
    steps.append(experience(3, 1.0, done=True, interrupted=True))
    trainer._process_trajectory(trajectory("a", steps, 4))
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 2, 3]
    assert rows["next_t"].tolist() == [3, 4, 4, 4]
    np.testing.assert_allclose(
        rows["rewards"], [1 + GAMMA + GAMMA**2, 1 + GAMMA + GAMMA**2, 1 + GAMMA, 1]
    )
    np.testing.assert_allclose(rows["discounts"], [GAMMA**3, GAMMA**3, GAMMA**2, GAMMA])
    assert not rows["dones"].any()
    assert rows["truncated"].tolist() == [False, True, True, True]


def test_agents_do_not_mix(tmp_path):
    trainer = make_trainer(tmp_path, batch_size=2, buffer_size=100, n_step=2)
    trainer._process_trajectory(
        trajectory("a", [experience(0, 1.0), experience(1, 1.0, done=True)], 2)
    )
    trainer._process_trajectory(
        trajectory("b", [experience(10, 5.0), experience(11, 5.0, done=True)], 12)
    )
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 10, 11]
    np.testing.assert_allclose(rows["rewards"], [1 + GAMMA, 1, 5 + 5 * GAMMA, 5])


def test_a_forced_reset_ends_every_running_episode(tmp_path):
    """On a lesson change or a self-play swap mlagents drops the partial trajectories and
    calls end_episode(): the next trajectory of an agent starts a new episode."""
    trainer = make_trainer(tmp_path, batch_size=2, buffer_size=100, n_step=3)
    # Agent a is cut by the time horizon; b has a step held and one in its n-step queue.
    steps_a = [experience(0, 1.0), experience(1, 2.0), experience(2, 3.0)]
    trainer._process_trajectory(trajectory("a", steps_a, 3))
    trainer._process_trajectory(trajectory("b", [experience(10, 5.0), experience(11, 6.0)], 12))
    assert len(trainer.replay) == 0
    trainer.end_episode()
    assert len(trainer.replay) == 5 and trainer.replay.waiting("a") == 0
    # The next episodes, from new observations.
    trainer._process_trajectory(
        trajectory("a", [experience(100, 10.0), experience(101, 20.0, done=True)], 102)
    )
    trainer._process_trajectory(trajectory("b", [experience(110, 7.0, done=True)], 111))
    rows = stored(trainer)
    assert rows["t"].tolist() == [0, 1, 2, 10, 11, 100, 101, 110]  # none lost or repeated
    # Old episodes end on their last real next observation, bootstrap kept (truncated).
    assert rows["next_t"].tolist() == [3, 3, 3, 12, 12, 102, 102, 111]
    assert rows["truncated"].tolist() == [True] * 5 + [False] * 3
    assert rows["dones"].tolist() == [False] * 5 + [True] * 3
    np.testing.assert_allclose(
        rows["rewards"],
        [1 + 2 * GAMMA + 3 * GAMMA**2, 2 + 3 * GAMMA, 3, 5 + 6 * GAMMA, 6, 10 + 20 * GAMMA, 20, 7],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        rows["discounts"], [GAMMA**3, GAMMA**2, GAMMA, GAMMA**2, GAMMA, GAMMA**2, GAMMA, GAMMA]
    )


def test_updates_follow_steps_per_update_and_update_priorities(tmp_path):
    trainer = make_trainer(
        tmp_path, batch_size=2, buffer_size=100, steps_per_update=2.0, prioritized_replay=True
    )
    assert isinstance(trainer.replay, PrioritizedStepReplay)
    trainer._process_trajectory(
        trajectory(
            "a", [experience(t, 1.0) for t in range(9)] + [experience(9, 1.0, done=True)], 10
        )
    )
    assert trainer._is_ready_update()
    assert trainer._update_policy()
    # 10 steps at 2 steps per update: mlagents' rule (step / updates > ratio) gives 4.
    assert len(trainer.optimizer.samples) == 4
    sampled = trainer.optimizer.samples[-1].indices
    expected = (2.0 + trainer.replay.eps) ** trainer.replay.alpha
    np.testing.assert_allclose(trainer.replay.priorities(sampled), expected)


def test_prioritized_beta_follows_the_trainers_step(tmp_path):
    """The buffer asks the trainer for beta at each draw: prioritized_replay_beta at step 0,
    annealed linearly to 1 at prioritized_replay_beta_steps."""
    trainer = make_trainer(
        tmp_path,
        batch_size=2,
        buffer_size=100,
        prioritized_replay=True,
        prioritized_replay_beta=0.4,
        prioritized_replay_beta_steps=1000,
    )
    assert isinstance(trainer.replay, PrioritizedStepReplay)
    for step, beta in ((0, 0.4), (500, 0.7), (1000, 1.0), (5000, 1.0)):
        trainer._step = step
        assert trainer.replay.current_beta() == pytest.approx(beta)


def _resumed(tmp_path, spec=SPEC, buffer_size=100, n_step=1):
    settings = TrainerSettings(
        hyperparameters=OffPolicySettings(
            batch_size=2, buffer_size=buffer_size, save_replay_buffer=True, n_step=n_step
        )
    )
    trainer = RecordingTrainer("Test", 10, settings, True, True, 0, str(tmp_path))
    identifiers = BehaviorIdentifiers.from_name_behavior_id("Test?team=0")
    trainer.add_policy(identifiers, trainer.create_policy(identifiers, spec))
    return trainer


def _trained_and_saved(tmp_path):
    trainer = make_trainer(tmp_path, batch_size=2, buffer_size=100, save_replay_buffer=True)
    trainer._process_trajectory(
        trajectory("a", [experience(0, 1.0), experience(1, 2.0, done=True)], 2)
    )
    trainer._checkpoint()
    return trainer


def test_replay_buffer_resumes_and_a_mismatching_file_is_left_alone(tmp_path):
    _trained_and_saved(tmp_path)
    assert (tmp_path / "Test-2.pt").exists() and (tmp_path / "Test-2.onnx").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left

    again = _resumed(tmp_path)
    assert len(again.replay) == 2
    np.testing.assert_array_equal(stored(again)["rewards"], [1.0, 2.0])

    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ResumeError) as refused:  # another buffer_size
        _resumed(tmp_path, buffer_size=50)
    assert str(refused.value) == (
        f"cannot resume {tmp_path / 'replay_buffer.npz'}: saved replay has "
        "capacity=100, this replay has capacity=50; resume with the settings it was saved "
        "with, move the file away, or set save_replay_buffer: false to start with an empty "
        "buffer"
    )
    other_spec = vector_behavior_spec(ActionSpec.create_discrete(BRANCHES), 5, name="vec")
    with pytest.raises(ResumeError, match=r"checkpoint.pt: Policy: network shape differs"):
        _resumed(tmp_path, other_spec)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_end_of_run_save_writes_the_replay_buffer_once(tmp_path, monkeypatch):
    trainer = _trained_and_saved(tmp_path)
    writes = []
    save = type(trainer.replay).save
    monkeypatch.setattr(
        type(trainer.replay), "save", lambda self, *a, **k: writes.append(1) or save(self, *a, **k)
    )
    trainer._process_trajectory(trajectory("a", [experience(2, 3.0, done=True)], 3))
    trainer.save_model()  # mlagents: _checkpoint (saves the buffer), then saves it again
    assert len(writes) == 1
    assert len(_resumed(tmp_path).replay) == 3


def test_end_of_run_save_keeps_the_steps_still_waiting(tmp_path):
    """The last steps of running episodes (a held step, an n-step queue) reach the saved
    buffer as truncated transitions, even when the last periodic save was at that step."""
    trainer = make_trainer(
        tmp_path, batch_size=2, buffer_size=100, n_step=3, save_replay_buffer=True
    )
    trainer._process_trajectory(
        trajectory("a", [experience(0, 1.0), experience(1, 2.0), experience(2, 3.0)], 3)
    )
    trainer._process_trajectory(trajectory("b", [experience(10, 5.0)], 11))
    trainer._checkpoint()  # periodic save at this step: nothing complete yet
    assert len(trainer.replay) == 0
    trainer.save_model()
    again = _resumed(tmp_path, n_step=3)
    rows = stored(again)
    assert rows["t"].tolist() == [0, 1, 2, 10]
    assert rows["next_t"].tolist() == [3, 3, 3, 11]
    assert rows["truncated"].all() and not rows["dones"].any()
    g = again.optimizer.reward_signals["extrinsic"].gamma  # the resumed run's: steps are stored
    np.testing.assert_allclose(rows["rewards"], [1 + 2 * g + 3 * g**2, 2 + 3 * g, 3, 5], rtol=1e-6)


def test_a_store_cut_short_leaves_a_consistent_replay_that_is_saved(tmp_path, monkeypatch):
    """Ctrl-C in mlagents' main thread in the middle of a store (the rows written, not yet
    held): the end-of-run save that follows saves the model and a replay holding what it
    held before, whole rows only; no damage flag, nothing to refuse on --resume."""
    trainer = _trained_and_saved(tmp_path)  # checkpoint and buffer at step 2
    real = StepReplay._completed

    def cut_short(self, *args):
        monkeypatch.setattr(StepReplay, "_completed", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(StepReplay, "_completed", cut_short)
    steps = [experience(2, 3.0), experience(3, 4.0), experience(4, 5.0, done=True)]
    with pytest.raises(KeyboardInterrupt):
        trainer._process_trajectory(trajectory("a", steps, 5))
    trainer.save_model()
    assert (tmp_path / "Test-5.pt").exists()  # the model is saved
    again = _resumed(tmp_path)
    rows = stored(again)
    assert rows["t"].tolist() == [0, 1] and rows["next_t"].tolist() == [1, 2]
    np.testing.assert_array_equal(rows["rewards"], [1.0, 2.0])


def test_the_model_is_saved_when_ending_the_running_episodes_fails(tmp_path, monkeypatch):
    trainer = _trained_and_saved(tmp_path)
    trainer._process_trajectory(trajectory("a", [experience(2, 3.0)], 3))  # a step waits

    def fail(*args, **kwargs):
        raise ValueError("refused")

    monkeypatch.setattr(trainer.replay, "end_episodes", fail)
    trainer.save_model()
    assert (tmp_path / "Test-3.pt").exists() and (tmp_path / "Test-3.onnx").exists()
    assert len(_resumed(tmp_path).replay) == 3  # saved, the waiting step ended on resume


def test_replay_buffer_saved_at_another_step_than_the_checkpoint_loads_with_a_warning(
    tmp_path, caplog
):
    trainer = _trained_and_saved(tmp_path)  # checkpoint and buffer at step 2
    trainer._process_trajectory(trajectory("a", [experience(2, 3.0, done=True)], 3))
    trainer.model_saver.save_checkpoint("Test", trainer._step)  # killed before the buffer
    with caplog.at_level("WARNING"):
        again = _resumed(tmp_path)
    assert again._step == 3 and len(again.replay) == 2
    assert "replay_buffer.npz was saved at step 2 and the checkpoint at step 3" in caplog.text


def test_sample_to_agent_buffer_has_what_reward_providers_read(tmp_path):
    trainer = make_trainer(tmp_path, batch_size=2, buffer_size=100)
    trainer._process_trajectory(
        trajectory("a", [experience(0, 1.0), experience(1, 2.0, done=True)], 2)
    )
    buffer = sample_to_agent_buffer(trainer.replay.sample(5))
    assert buffer.num_experiences == 5
    from mlagents.trainers.buffer import BufferKey

    assert np.asarray(buffer[BufferKey.DISCRETE_ACTION].get_batch()).shape == (5, 2)
    assert np.asarray(buffer[BufferKey.ACTION_MASK].get_batch()).shape == (5, 5)


def test_base_optimizer_refuses_agent_buffer_updates(tmp_path):
    trainer = make_trainer(tmp_path, batch_size=2, buffer_size=100)
    with pytest.raises(NotImplementedError, match="update_from_replay"):
        OffPolicyOptimizer.update(trainer.optimizer, None, 1)
    assert torch.is_tensor(torch.zeros(1))


def _trainer_with_signals(tmp_path: Path, signals: dict, **hyperparameters) -> RecordingTrainer:
    """A trainer whose reward signals are mlagents' own (``RewardSignalType`` -> settings)."""
    settings = TrainerSettings(
        hyperparameters=OffPolicySettings(**hyperparameters), reward_signals=signals
    )
    trainer = RecordingTrainer("Test", 10, settings, True, False, 0, str(tmp_path))
    identifiers = BehaviorIdentifiers.from_name_behavior_id("Test?team=0")
    trainer.add_policy(identifiers, trainer.create_policy(identifiers, SPEC))
    return trainer


def _curiosity_trainer(tmp_path: Path) -> RecordingTrainer:
    """A trainer with extrinsic and curiosity signals and one 20-step episode in replay."""
    signals = {
        RewardSignalType.EXTRINSIC: RewardSignalSettings(),
        RewardSignalType.CURIOSITY: CuriositySettings(learning_rate=1e-3),
    }
    trainer = _trainer_with_signals(
        tmp_path, signals, batch_size=16, buffer_size=100, reward_signal_steps_per_update=1.0
    )
    steps = [experience(t, 0.0) for t in range(19)] + [experience(19, 1.0, done=True)]
    trainer._process_trajectory(trajectory("a", steps, 20))
    return trainer


def test_curiosity_learns_from_replay_samples(tmp_path):
    torch.manual_seed(0)
    trainer = _curiosity_trainer(tmp_path)
    curiosity = trainer.optimizer.reward_signals["curiosity"]
    transitions = sample_to_agent_buffer(trainer.replay.sample(20))
    with torch.no_grad():
        error_before = curiosity._network.compute_reward(transitions).mean().item()
    before = [p.detach().clone() for p in curiosity._network.parameters()]

    trainer._step = 50  # 50 environment steps at 1 per update: 49 reward-signal updates
    trainer._update_reward_signals()
    assert trainer.reward_signal_update_steps == 50

    forward, inverse = (
        curiosity.update(transitions)[f"Losses/Curiosity {kind} Loss"]
        for kind in ("Forward", "Inverse")
    )
    assert np.isfinite(forward) and np.isfinite(inverse)
    after = list(curiosity._network.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    with torch.no_grad():
        error_after = curiosity._network.compute_reward(transitions).mean().item()
    assert error_after < 0.5 * error_before, (error_before, error_after)


def test_a_non_finite_reward_signal_loss_stops_training(tmp_path):
    from mla_plugin_core.util.finite import NonFiniteError

    trainer = _curiosity_trainer(tmp_path)
    curiosity = trainer.optimizer.reward_signals["curiosity"]
    with torch.no_grad():
        next(curiosity._network.parameters()).view(-1)[0] = float("nan")
    trainer._step = 5
    with pytest.raises(NonFiniteError, match=r"^Test: Losses/Curiosity .* = nan") as raised:
        trainer._update_reward_signals()
    assert "\n" not in str(raised.value)
    assert trainer.non_finite is raised.value


def test_reward_signals_learn_from_uniform_samples_under_prioritized_replay(tmp_path):
    signals = {
        RewardSignalType.EXTRINSIC: RewardSignalSettings(),
        RewardSignalType.RND: RNDSettings(),
    }
    trainer = _trainer_with_signals(
        tmp_path, signals, batch_size=64, buffer_size=100, prioritized_replay=True
    )
    steps = [experience(t, 0.0) for t in range(19)] + [experience(19, 1.0, done=True)]
    trainer._process_trajectory(trajectory("a", steps, 20))
    # Transition t=0 holds nearly all the priority mass: a prioritized sample is all t=0.
    trainer.replay.update_priorities(np.arange(20), np.r_[1e6, np.full(19, 1e-3)])
    assert (trainer.sample_replay().obs[0][:, 0] == 0).all()

    trainer._step = 3 * trainer.reward_signal_steps_per_update + 1
    trainer._update_reward_signals()
    batches = trainer.optimizer.reward_signal_batches
    assert len(batches) == 3
    seen = np.concatenate([np.asarray(ObsUtil.from_buffer(b, 1)[0])[:, 0] for b in batches])
    # Uniform over 20 transitions: 192 draws see most of them, t=0 about 1/20 of the time.
    assert len(np.unique(seen)) >= 15
    assert (seen == 0).mean() < 0.2


def _perturb(module: torch.nn.Module) -> None:
    """Change a provider's network in place, as its training would."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))


@pytest.mark.parametrize("kind", ["rnd", "curiosity"])
def test_samples_carry_the_current_learning_rewards_with_one_step(tmp_path, kind):
    torch.manual_seed(0)
    # Curiosity clips its rewards at 1 / strength: a small strength keeps them apart.
    signal_settings = RNDSettings() if kind == "rnd" else CuriositySettings(strength=0.01)
    signals = {
        RewardSignalType.EXTRINSIC: RewardSignalSettings(),
        RewardSignalType(kind): signal_settings,
    }
    trainer = _trainer_with_signals(tmp_path, signals, batch_size=16, buffer_size=100, n_step=1)
    provider = trainer.optimizer.reward_signals[kind]
    if kind == "curiosity":
        provider._has_updated_once = True  # else its rewards are all zero
    steps = [experience(t, float(t)) for t in range(19)] + [experience(19, 19.0, done=True)]
    trainer._process_trajectory(trajectory("a", steps, 20))
    stored_rows = trainer.replay.transitions(np.arange(20), np.ones(20, np.float32))
    stored_by_t = dict(zip(stored_rows.obs[0][:, 0], stored_rows.rewards[kind], strict=True))
    _perturb(provider._training_network if kind == "rnd" else provider._network)

    trainer._step = 2 * trainer.steps_per_update + 1
    assert trainer._update_policy()
    sample = trainer.optimizer.samples[-1]
    t = sample.obs[0][:, 0]
    current = provider.evaluate(sample_to_agent_buffer(sample)) * provider.strength
    np.testing.assert_allclose(sample.rewards[kind], current, rtol=1e-5)
    stale = np.array([stored_by_t[x] for x in t])
    assert np.abs(sample.rewards[kind] - stale).max() > 1e-3  # not the stored values
    np.testing.assert_array_equal(sample.rewards["extrinsic"], t)  # extrinsic: as stored


def test_samples_sum_the_current_learning_rewards_with_n_step(tmp_path):
    """With n_step: 3 each sampled return sums the providers' rewards of its steps now
    (curiosity's 1-step rows are in the replay): rnd, from the stored steps re-evaluated;
    the extrinsic sums as stored."""
    torch.manual_seed(0)
    signals = {
        RewardSignalType.EXTRINSIC: RewardSignalSettings(),
        RewardSignalType.RND: RNDSettings(),
    }
    trainer = _trainer_with_signals(tmp_path, signals, batch_size=16, buffer_size=100, n_step=3)
    steps = [experience(t, 0.0) for t in range(19)] + [experience(19, 1.0, done=True)]
    trainer._process_trajectory(trajectory("a", steps, 20))
    provider = trainer.optimizer.reward_signals["rnd"]
    stored_rnd = trainer.replay.transitions(np.arange(20), np.ones(20, np.float32), n_step=1)
    _perturb(provider._training_network)

    trainer._step = 2 * trainer.steps_per_update + 1
    assert trainer._update_policy()
    sample = trainer.optimizer.samples[-1]
    every_step = trainer.replay.transitions(np.arange(20), np.ones(20, np.float32), n_step=1)
    now = provider.evaluate(sample_to_agent_buffer(every_step)) * provider.strength
    gamma = provider.gamma
    for i, t in enumerate(sample.obs[0][:, 0].astype(int)):
        k = min(3, 20 - t)
        want = sum(gamma**j * now[t + j] for j in range(k))
        stale = sum(gamma**j * stored_rnd.rewards["rnd"][t + j] for j in range(k))
        assert sample.rewards["rnd"][i] == pytest.approx(want, rel=1e-4, abs=1e-6)
        assert abs(want - stale) > 1e-4  # not the stored values
        assert sample.rewards["extrinsic"][i] == pytest.approx(
            1.0 * gamma ** (19 - t) if t >= 17 else 0.0
        )


def test_a_0_1_create_replay_buffer_override_gets_a_step_replay_with_a_warning(tmp_path):
    """A plugin written against 0.1 that builds its own (prioritized) ReplayBuffer keeps
    working: the trainer stores steps in a StepReplay of that capacity, kind and alpha."""
    from mla_plugin_core.replay import PrioritizedReplayBuffer

    class OldPlugin(RecordingTrainer):
        def create_replay_buffer(self):
            return PrioritizedReplayBuffer(
                capacity=37, obs_shapes=[(2,)], discrete_branches=BRANCHES, alpha=0.3
            )

    settings = TrainerSettings(hyperparameters=OffPolicySettings(batch_size=2, n_step=2))
    trainer = OldPlugin("Test", 10, settings, True, False, 0, str(tmp_path))
    identifiers = BehaviorIdentifiers.from_name_behavior_id("Test?team=0")
    with pytest.warns(DeprecationWarning, match="create_replay_buffer returns a ReplayBuffer"):
        trainer.add_policy(identifiers, trainer.create_policy(identifiers, SPEC))
    replay = trainer.replay
    assert isinstance(replay, PrioritizedStepReplay)
    assert (replay.capacity, replay.alpha, replay.n_step) == (37, 0.3, 2)
    trainer._process_trajectory(
        trajectory("a", [experience(0, 1.0), experience(1, 2.0, done=True)], 2)
    )
    assert len(replay) == 2
