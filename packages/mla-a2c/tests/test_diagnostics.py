"""What A2C reports to explain an unstable run (README, "Why A2C collapsed on 3DBall")."""

import math

import numpy as np
import pytest
import torch
from a2c_testkit import make_trainer
from mlagents.trainers.buffer import BufferKey
from mlagents.trainers.settings import ScheduleType
from mlagents.trainers.stats import StatsReporter
from mlagents_envs.base_env import ActionSpec

from mla_a2c.optimizer import (
    ACTION_CLIP,
    explained_variance,
    gaussian_means,
    gaussian_stats,
)
from mla_plugin_core.replay.batches import Minibatch
from mla_plugin_core.testing.builders import random_trajectory, vector_behavior_spec

CONTINUOUS = vector_behavior_spec(ActionSpec.create_continuous(2))


def process(trainer, n_trajectories=4, length=8):
    for i in range(n_trajectories):
        rewards = list(np.linspace(-1, 1, length))
        trajectory = random_trajectory(
            trainer.policy.behavior_spec, rewards, done=i % 2 == 0, seed=i
        )
        trainer._process_trajectory(trajectory)


def minibatch(trainer) -> Minibatch:
    """The whole update buffer as a minibatch (read from a copy: reading adds empty fields)."""
    buffer = trainer.update_buffer
    return trainer.optimizer.minibatch(buffer.make_mini_batch(0, buffer.num_experiences))


def stat(trainer, name: str):
    summary = trainer._stats_reporter.get_stats_summaries(name)
    return summary.mean if summary.num > 0 else None


@pytest.fixture(autouse=True)
def fresh_stats():
    StatsReporter.stats_dict.clear()
    yield
    StatsReporter.stats_dict.clear()


def test_explained_variance():
    returns = {"extrinsic": torch.tensor([1.0, 2.0, 3.0, 4.0])}
    assert explained_variance({"extrinsic": returns["extrinsic"].clone()}, returns) == 1.0
    constant = {"extrinsic": torch.full((4,), 2.5)}  # the targets' mean: no better than it
    assert explained_variance(constant, returns) == pytest.approx(0.0)
    reversed_ = {"extrinsic": torch.tensor([4.0, 3.0, 2.0, 1.0])}
    assert explained_variance(reversed_, returns) == pytest.approx(-3.0)
    flat = {"extrinsic": torch.ones(4)}
    assert explained_variance(flat, flat) is None  # undefined, and never a NaN stat


def test_minibatch_value_estimates_are_the_critics_not_the_returns(tmp_path):
    """mlagents' ``RewardSignalUtil.value_estimates_key`` is its returns key: value
    estimates stored there are overwritten by the returns (explained variance read 1.0)."""
    trainer = make_trainer(CONTINUOUS, tmp_path, buffer_size=64)
    process(trainer)
    mb = minibatch(trainer)
    with torch.no_grad():
        values = trainer.optimizer.values(mb)["extrinsic"]
    torch.testing.assert_close(mb.value_estimates["extrinsic"], values)
    assert not torch.allclose(mb.value_estimates["extrinsic"], mb.returns["extrinsic"])


def test_gaussian_stats_read_the_policy(tmp_path):
    trainer = make_trainer(CONTINUOUS, tmp_path, buffer_size=64, log_sigma_init=-1.5)
    process(trainer)
    stats = gaussian_stats(*gaussian_means(trainer.policy, minibatch(trainer)))
    assert stats["Policy/Sigma"] == pytest.approx(math.exp(-1.5), rel=1e-5)
    assert stats["Policy/Mu Beyond Clip"] == 0.0
    mu_layer = trainer.policy.actor.action_model._continuous_distribution.mu
    with torch.no_grad():
        mu_layer.bias.fill_(ACTION_CLIP + 1.0)
        mu_layer.weight.zero_()
    stats = gaussian_stats(*gaussian_means(trainer.policy, minibatch(trainer)))
    assert stats["Policy/Mean |mu|"] == pytest.approx(ACTION_CLIP + 1.0)
    assert stats["Policy/Mu Beyond Clip"] == 1.0


def test_discrete_policy_has_no_gaussian_stats(tmp_path):
    trainer = make_trainer(vector_behavior_spec(ActionSpec.create_discrete((3,))), tmp_path)
    process(trainer)
    assert gaussian_stats(*gaussian_means(trainer.policy, minibatch(trainer))) == {}


def acted_by_current_policy(trainer) -> None:
    """Store the current policy's own log-probabilities as the acting ones (the builders'
    trajectories carry zeros)."""
    with torch.no_grad():
        log_probs, _ = trainer.optimizer.policy_stats(minibatch(trainer))
    trainer.update_buffer[BufferKey.CONTINUOUS_LOG_PROBS].set(list(log_probs.numpy()))


def test_update_reports_the_diagnostics(tmp_path):
    trainer = make_trainer(CONTINUOUS, tmp_path, buffer_size=32, batch_size=8)
    process(trainer)
    advantages = np.asarray(trainer.update_buffer[BufferKey.ADVANTAGES].get_batch())
    trainer._update_policy()
    # the raw scale, before the advantages are standardised for the loss
    assert stat(trainer, "Policy/Advantage Std") == pytest.approx(advantages.std(), rel=1e-5)
    for name in ("Policy/Sigma", "Policy/Explained Variance", "Losses/Gradient Norm"):
        value = stat(trainer, name)
        assert value is not None and math.isfinite(value), name
    # how far the update moved the policy from the one that acted (the builders' stored
    # log-probabilities are 0, a policy's are not: a KL above 0 however little it moved)
    assert trainer.last_update_kl is not None and trainer.last_update_kl > 0
    assert stat(trainer, "Policy/Update KL") == pytest.approx(trainer.last_update_kl)


def test_update_kl_measures_the_change_from_the_acting_policy(tmp_path):
    """Stored log-probabilities from the policy itself: an update with a learning rate of
    almost 0 moves it by almost nothing, a large one by much more."""
    kls = []
    for learning_rate in (1e-9, 1e-1):
        trainer = make_trainer(
            CONTINUOUS, tmp_path / str(learning_rate), buffer_size=32,
            learning_rate=learning_rate, learning_rate_schedule=ScheduleType.CONSTANT,
        )  # fmt: skip
        process(trainer)
        acted_by_current_policy(trainer)
        trainer._update_policy()
        kls.append(trainer.last_update_kl)
    assert kls[0] < 1e-9 < 1e-3 < kls[1], kls


def _outputs(trainer, obs):
    """The actor's Gaussian means and the critic's values for observations ``obs``."""
    inputs = [torch.as_tensor(obs)]
    with torch.no_grad():
        encoding, _ = trainer.policy.actor.network_body(inputs)
        means = trainer.policy.actor.action_model._continuous_distribution(encoding).mean
        values, _ = trainer.optimizer.critic.critic_pass(inputs)
    return means, values["extrinsic"]


@pytest.mark.parametrize("stable", [True, False])
def test_stable_normalization_keeps_the_policy_and_the_values(tmp_path, stable):
    """Trajectories update the running observation statistics: with stable_normalization
    the actor and the critic still answer as before (until a gradient step); with
    mlagents' normalisation their answers move with the statistics."""
    trainer = make_trainer(
        CONTINUOUS, tmp_path, normalize=True, buffer_size=10_000, stable_normalization=stable
    )
    obs = np.random.default_rng(5).normal(scale=0.3, size=(16, 4)).astype(np.float32)
    before = _outputs(trainer, obs)
    process(trainer, n_trajectories=6)  # observations of scale 1: the std moves from 1
    assert trainer.update_buffer.num_experiences < 10_000  # no update happened
    after = _outputs(trainer, obs)
    for network in (trainer.policy.actor, trainer.optimizer.critic):  # the statistics moved
        assert int(network.network_body.processors[0].normalizer.normalization_steps) > 40
    for old, new in zip(before, after, strict=True):
        if stable:
            torch.testing.assert_close(new, old, rtol=1e-4, atol=1e-5)
        else:
            assert (new - old).abs().max() > 1e-3
