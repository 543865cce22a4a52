"""What A2C reports to explain a collapse, and the trust region (``target_kl``) it led to."""

import math

import numpy as np
import pytest
import torch
from a2c_testkit import make_trainer
from mlagents.trainers.buffer import BufferKey
from mlagents.trainers.stats import StatsReporter
from mlagents_envs.base_env import ActionSpec

from mla_a2c.optimizer import (
    ACTION_CLIP,
    MAX_STEP_SCALE,
    MIN_STEP_SCALE,
    adapted_step_scale,
    explained_variance,
    gaussian_means,
    gaussian_stats,
)
from mla_plugin_core.batches import Minibatch
from mla_plugin_core.optimizer import PluginOptimizer
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


def test_adapted_step_scale_follows_ppos_rule():
    assert adapted_step_scale(1.0, update_kl=0.031, target_kl=0.02) == 0.5  # > 1.5 target
    assert adapted_step_scale(0.5, update_kl=0.025, target_kl=0.02) == 0.5  # within
    assert adapted_step_scale(0.25, update_kl=0.01, target_kl=0.02) == 0.5  # < target / 1.5
    assert adapted_step_scale(MAX_STEP_SCALE, 0.0, 0.02) == MAX_STEP_SCALE  # never above
    assert adapted_step_scale(MIN_STEP_SCALE, 1.0, 0.02) == MIN_STEP_SCALE  # never to 0


def acted_by_current_policy(trainer) -> None:
    """Store the current policy's own log-probabilities as the acting ones (the builders'
    trajectories carry zeros), so that the first step starts inside any trust region."""
    with torch.no_grad():
        log_probs, _ = trainer.optimizer.policy_stats(minibatch(trainer))
    trainer.update_buffer[BufferKey.CONTINUOUS_LOG_PROBS].set(list(log_probs.numpy()))


@pytest.mark.parametrize("target_kl, skipped", [(0.0, 0.0), (1.0e3, 0.0), (1.0e-9, 0.75)])
def test_target_kl_skips_the_steps_after_the_policy_left_the_trust_region(
    tmp_path, target_kl, skipped
):
    trainer = make_trainer(CONTINUOUS, tmp_path, buffer_size=32, batch_size=8, target_kl=target_kl)
    process(trainer)
    acted_by_current_policy(trainer)
    before = [p.detach().clone() for p in trainer.policy.actor.parameters()]
    trainer._update_policy()
    # 4 minibatches: the first always steps; with a tiny region the 3 others are skipped
    assert stat(trainer, "Policy/Skipped Steps") == pytest.approx(skipped)
    assert any(
        not torch.equal(b, a)
        for b, a in zip(before, trainer.policy.actor.parameters(), strict=True)
    )
    # the update moved the policy, measured on its last minibatch; the step size follows
    assert trainer.last_update_kl is not None and trainer.last_update_kl > 0
    assert stat(trainer, "Policy/Update KL") == pytest.approx(trainer.last_update_kl)
    expected_scale = 0.5 if target_kl == 1.0e-9 else 1.0
    assert trainer.optimizer.step_scale == expected_scale
    scheduled = PluginOptimizer.learning_rate(trainer.optimizer)
    assert trainer.optimizer.learning_rate() == pytest.approx(expected_scale * scheduled)


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
