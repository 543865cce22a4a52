"""The on-policy base trainer's measures: how far an update moved the policy."""

import math

import pytest
import torch
from mlagents.trainers.buffer import RewardSignalUtil

from mla_plugin_core.replay.batches import value_estimates_key
from mla_plugin_core.trainers.on_policy import approx_kl


def gaussian_kl(mu_p: float, sigma_p: float, mu_q: float, sigma_q: float) -> float:
    """KL(N(mu_p, sigma_p) || N(mu_q, sigma_q)) in closed form."""
    return math.log(sigma_q / sigma_p) + (sigma_p**2 + (mu_p - mu_q) ** 2) / (2 * sigma_q**2) - 0.5


def test_approx_kl_estimates_the_kl_from_the_acting_policy():
    generator = torch.Generator().manual_seed(0)
    old = torch.distributions.Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.5]))
    new = torch.distributions.Normal(torch.tensor([0.3, 0.8]), torch.tensor([0.8, 0.6]))
    actions = old.mean + old.stddev * torch.randn(200_000, 2, generator=generator)
    estimate = approx_kl(old.log_prob(actions), new.log_prob(actions))
    # independent dimensions: the KLs add up
    exact = gaussian_kl(0.0, 1.0, 0.3, 0.8) + gaussian_kl(1.0, 0.5, 0.8, 0.6)
    assert estimate == pytest.approx(exact, rel=0.03)
    assert approx_kl(old.log_prob(actions), old.log_prob(actions)) == 0.0


def test_approx_kl_counts_only_masked_rows():
    old = torch.zeros(3, 1)
    new = torch.tensor([[0.0], [0.0], [-5.0]])
    assert approx_kl(old, new, torch.tensor([True, True, False])) == 0.0
    assert approx_kl(old, new) > 1.0


def test_value_estimates_have_their_own_key():
    # mlagents' own value_estimates_key is its returns key (the returns overwrite them)
    assert value_estimates_key("extrinsic") != RewardSignalUtil.returns_key("extrinsic")
