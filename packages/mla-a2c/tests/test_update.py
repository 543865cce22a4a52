"""One A2C update through the trainer, for every kind of behavior mlagents has."""

import math

import numpy as np
import pytest
import torch
from a2c_testkit import make_trainer
from mlagents.trainers.settings import NetworkSettings, ScheduleType
from mlagents.trainers.torch_entities.layers import Swish
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.testing.builders import random_trajectory, update_once, vector_behavior_spec

SPECS = {
    "continuous": ActionSpec.create_continuous(2),
    "discrete-branches": ActionSpec.create_discrete((3, 2)),
    "hybrid": ActionSpec(1, (2,)),
}
STATS = {
    "Losses/Policy Loss",
    "Losses/Value Loss",
    "Losses/Entropy",
    "Losses/Gradient Norm",
    "Policy/Learning Rate",
    "Policy/Beta",
}


def fill_and_update(trainer, n_trajectories=4, length=8, memory_size=0):
    for i in range(n_trajectories):
        rewards = list(np.linspace(-1, 1, length))
        trajectory = random_trajectory(
            trainer.policy.behavior_spec, rewards, done=i % 2 == 0, memory_size=memory_size, seed=i
        )
        trainer._process_trajectory(trajectory)
    before = [p.detach().clone() for p in trainer.policy.actor.parameters() if p.requires_grad]
    trainer._update_policy()
    after = [p.detach() for p in trainer.policy.actor.parameters() if p.requires_grad]
    return before, after


def policy_changed(before, after) -> bool:
    return any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))


def reported(trainer) -> dict[str, float]:
    from mlagents.trainers.stats import StatsReporter

    summaries = {}
    for key in STATS:
        summary = trainer._stats_reporter.get_stats_summaries(key)
        summaries[key] = summary.mean
    StatsReporter.stats_dict.clear()
    return summaries


def record_minibatch_sizes(trainer) -> list[int]:
    """The size of every minibatch the optimizer updates on from now on, in order."""
    sizes: list[int] = []
    original = trainer.optimizer.update
    trainer.optimizer.update = lambda batch, n: (
        sizes.append(batch.num_experiences) or original(batch, n)
    )
    return sizes


@pytest.mark.parametrize("kind", SPECS)
@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
def test_update_trains_actor_and_critic_and_reports_stats(tmp_path, kind, optimizer):
    """One update moves the actor and the critic's value head. A loss fed the value
    estimates stored in the buffer instead of the critic's own V(s) has no gradient into
    the critic, and a policy loss without the log-probabilities none into the actor."""
    trainer = make_trainer(
        vector_behavior_spec(SPECS[kind]),
        tmp_path,
        buffer_size=16,
        batch_size=16,
        optimizer=optimizer,
    )
    critic_before = {n: p.detach().clone() for n, p in trainer.optimizer.critic.named_parameters()}
    update = update_once(trainer)
    assert update.updated
    assert any(update.changed(name) for name in update.before if "action_model" in name)
    critic_after = dict(trainer.optimizer.critic.named_parameters())
    heads = [name for name in critic_before if "value_heads" in name]
    assert heads and all(not torch.equal(critic_before[n], critic_after[n]) for n in heads)
    stats = reported(trainer)
    assert all(math.isfinite(value) for value in stats.values()), stats
    assert trainer.update_buffer.num_experiences == 0


def test_shared_critic_and_conditional_sigma(tmp_path):
    trainer = make_trainer(
        vector_behavior_spec(SPECS["continuous"]),
        tmp_path,
        buffer_size=16,
        shared_critic=True,
        conditional_sigma=True,
    )
    assert trainer.optimizer.critic is trainer.policy.actor
    before, after = fill_and_update(trainer)
    assert policy_changed(before, after)


@pytest.mark.parametrize("kind", ["discrete-branches", "continuous"])
def test_recurrent_policy_trains_on_sequences(tmp_path, kind):
    memory = NetworkSettings.MemorySettings(sequence_length=4, memory_size=8)
    trainer = make_trainer(
        vector_behavior_spec(SPECS[kind]), tmp_path, memory=memory, buffer_size=16
    )
    assert trainer.policy.use_recurrent
    before, after = fill_and_update(trainer, memory_size=trainer.policy.m_size)
    assert policy_changed(before, after)
    assert all(math.isfinite(value) for value in reported(trainer).values())


def test_minibatches_make_several_steps(tmp_path):
    trainer = make_trainer(
        vector_behavior_spec(SPECS["continuous"]), tmp_path, buffer_size=32, batch_size=8
    )
    steps = record_minibatch_sizes(trainer)
    fill_and_update(trainer)
    assert steps == [8, 8, 8, 8]


def test_activation_applies_to_actor_and_critic(tmp_path):
    trainer = make_trainer(
        vector_behavior_spec(SPECS["discrete-branches"]),
        tmp_path,
        buffer_size=16,
        activation="tanh",
    )
    for network in (trainer.policy.actor, trainer.optimizer.critic):
        modules = list(network.modules())
        assert any(isinstance(m, torch.nn.Tanh) for m in modules)
        assert not any(isinstance(m, Swish) for m in modules)
    before, after = fill_and_update(trainer)
    assert policy_changed(before, after)


def test_update_starts_at_buffer_size_and_uses_every_experience(tmp_path):
    """Trajectories arrive whole: an update starts once ``buffer_size`` experiences are in,
    and the last minibatch takes what does not fill a whole one (nothing is dropped)."""
    trainer = make_trainer(
        vector_behavior_spec(SPECS["continuous"]), tmp_path, buffer_size=32, batch_size=8
    )
    steps = record_minibatch_sizes(trainer)
    for i, length in enumerate([8, 8, 8]):
        trajectory = random_trajectory(
            trainer.policy.behavior_spec, [0.5] * length, done=False, seed=i
        )
        trainer._process_trajectory(trajectory)
    assert not trainer._is_ready_update()  # 24 < 32
    trainer._process_trajectory(
        random_trajectory(trainer.policy.behavior_spec, [0.5] * 13, done=False, seed=9)
    )
    assert trainer._is_ready_update()  # 37 >= 32
    trainer._update_policy()
    assert steps == [8, 8, 8, 13]
    assert trainer.update_buffer.num_experiences == 0


@pytest.mark.parametrize("conditional_sigma", [False, True])
def test_log_sigma_init_sets_the_starting_noise(tmp_path, conditional_sigma):
    spec = vector_behavior_spec(SPECS["continuous"])
    observations = torch.zeros(64, spec.observation_specs[0].shape[0])

    def sampled_std(trainer) -> float:
        actor = trainer.policy.actor
        encoding, _ = actor.network_body([observations])
        (distribution,) = [actor.action_model._continuous_distribution(encoding)]
        return float(distribution.std.detach().mean())

    default = make_trainer(spec, tmp_path / "a", conditional_sigma=conditional_sigma)
    assert sampled_std(default) == pytest.approx(1.0, abs=0.01)  # mlagents' log(sigma) = 0
    low = make_trainer(
        spec, tmp_path / "b", conditional_sigma=conditional_sigma, log_sigma_init=-2.0
    )
    assert sampled_std(low) == pytest.approx(math.exp(-2.0), rel=0.05)
    before, after = fill_and_update(low)  # still learned: a parameter with a gradient
    assert policy_changed(before, after)


@pytest.mark.parametrize("decay_steps", [None, 2_500])
def test_linear_learning_rate_reaches_its_floor_at_learning_rate_decay_steps(tmp_path, decay_steps):
    """mlagents decays a linear learning rate over max_steps (10,000 here); with
    learning_rate_decay_steps it reaches its floor there instead, and stays."""
    spec = vector_behavior_spec(ActionSpec.create_continuous(2))
    trainer = make_trainer(
        spec, tmp_path, learning_rate=1e-3, learning_rate_schedule=ScheduleType.LINEAR,
        learning_rate_decay_steps=decay_steps,
    )  # fmt: skip
    horizon = decay_steps or 10_000
    rates = {}
    for step in (0, horizon // 2, horizon, horizon + 1_000):
        trainer.policy.set_step(step)
        rates[step] = trainer.optimizer.learning_rate()
    assert rates[0] == pytest.approx(1e-3)
    assert rates[horizon // 2] == pytest.approx(0.5e-3, rel=1e-6)
    assert rates[horizon] == pytest.approx(1e-10) and rates[horizon + 1_000] == rates[horizon]
    # and the optimizer steps with it
    trainer.policy.set_step(horizon // 2)
    fill_and_update(trainer)
    assert trainer.optimizer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3, rel=0.05)


def test_deprecated_scheduled_still_gives_the_value_at_the_current_step(tmp_path):
    """0.1's PluginOptimizer.scheduled() (a schedule over max_steps) warns and still works."""
    spec = vector_behavior_spec(ActionSpec.create_continuous(2))
    trainer = make_trainer(spec, tmp_path)
    trainer.policy.set_step(2_500)  # a quarter of max_steps
    with pytest.warns(DeprecationWarning, match=r"scheduled\(\) is deprecated"):
        value = trainer.optimizer.scheduled(1.0, "linear", 0.0)
    assert value == pytest.approx(0.75)


def test_learning_rate_decay_steps_must_be_a_positive_integer():
    from mla_a2c.settings import A2CSettings
    from mla_plugin_core.settings.errors import SettingError

    for bad in (0, -5, 2.5, "many"):
        with pytest.raises((SettingError, ValueError, TypeError)):
            A2CSettings(learning_rate_decay_steps=bad)
