"""The Q-network's head hook: other value representations (QR-DQN's quantiles, C51's atoms)
through ``outputs_per_action``, ``head_outputs`` and ``q_from_head``, not by replacing
``q_head`` after the base built it (how a QR-DQN plugin had to do it with core 0.1)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from mlagents.trainers.settings import (
    NetworkSettings,
)
from mlagents.trainers.torch_entities.model_serialization import ModelSerializer
from mlagents_envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

from mla_plugin_core.io.model_check import Expected, check_model
from mla_plugin_core.io.onnx_export import use_legacy_exporter
from mla_plugin_core.networks.q_network import DiscreteQActor, EpsilonGreedyQPolicy
from mla_plugin_core.trainers.schedules import ScheduledValue

BRANCHES = (3, 2)
SPEC = BehaviorSpec(
    [ObservationSpec((4,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "obs")],
    ActionSpec.create_discrete(BRANCHES),
)
EPSILON = ScheduledValue("constant", 0.0, 0.0, 1)


class CategoricalQActor(DiscreteQActor):
    """C51-style (Bellemare et al. 2017): K atoms per action on a fixed support, Q the
    expectation of their softmax."""

    def __init__(self, *args, atoms: int = 5, **kwargs) -> None:
        super().__init__(*args, outputs_per_action=atoms, **kwargs)
        self.register_buffer("support", torch.linspace(-1.0, 1.0, atoms))

    def q_from_head(self, outputs: torch.Tensor) -> torch.Tensor:
        probabilities = outputs.softmax(dim=1)  # [B, K, n_d] over atoms
        return (probabilities * self.support[:, None]).sum(dim=1)


def policy(actor_cls=DiscreteQActor, **actor_kwargs) -> EpsilonGreedyQPolicy:
    settings = NetworkSettings(hidden_units=16, num_layers=1)
    return EpsilonGreedyQPolicy(
        7, SPEC, settings, EPSILON, actor_cls=actor_cls, actor_kwargs=actor_kwargs
    )


def test_quantile_heads_through_outputs_per_action():
    """QR-DQN (Dabney et al. 2018): N quantiles per action, Q their mean (the default)."""
    actor = policy(outputs_per_action=8).actor
    obs = [torch.randn(6, 4)]
    outputs = actor.head_outputs(obs)
    assert [tuple(o.shape) for o in outputs] == [(6, 8, 3), (6, 8, 2)]
    q_values = actor.q_values(obs)
    for q, quantiles in zip(q_values, outputs, strict=True):
        torch.testing.assert_close(q, quantiles.mean(dim=1))
    greedy = actor.greedy_actions(obs)
    assert greedy.tolist() == torch.stack([q.argmax(1) for q in q_values], 1).tolist()
    assert actor._generator.initial_seed() == 7  # the policy's seed, with the kwargs


def test_an_overridden_reduction_decides_the_actions():
    actor = policy(CategoricalQActor, atoms=5).actor
    obs = [torch.randn(32, 4)]
    q_values = actor.q_values(obs)
    assert all(q.abs().max() <= 1.0 for q in q_values)  # expectations on [-1, 1]
    expected = [(o.softmax(1) * actor.support[:, None]).sum(1) for o in actor.head_outputs(obs)]
    for q, e in zip(q_values, expected, strict=True):
        torch.testing.assert_close(q, e)
    # the greedy actions (and so the exported model) follow q_from_head
    by_q = actor.greedy_actions(obs)
    assert by_q.tolist() == torch.stack([q.argmax(1) for q in q_values], 1).tolist()


@pytest.mark.parametrize("actor_cls, kwargs", [(DiscreteQActor, {"outputs_per_action": 8}),
                                               (CategoricalQActor, {"atoms": 5})])  # fmt: skip
def test_other_heads_export_models_unity_loads(tmp_path, actor_cls, kwargs):
    use_legacy_exporter()
    ModelSerializer(policy(actor_cls, **kwargs)).export_policy_model(str(tmp_path / "q"))
    expected = Expected(observation_shapes=[(4,)], discrete_branches=list(BRANCHES))
    assert [str(v) for v in check_model(tmp_path / "q.onnx", expected)] == []


def test_outputs_per_action_must_be_positive():
    with pytest.raises(ValueError, match="outputs_per_action must be >= 1, got 0"):
        policy(outputs_per_action=0)


OBS2_SPEC = BehaviorSpec(
    [ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "obs")],
    ActionSpec(0, (3, 2)),
)


def test_epsilon_greedy_policy_follows_its_schedule_and_explores_every_branch():
    epsilon = ScheduledValue("linear", 1.0, 0.0, 100)
    policy = EpsilonGreedyQPolicy(0, OBS2_SPEC, NetworkSettings(hidden_units=8), epsilon)
    assert policy.epsilon == 1.0
    policy.increment_step(50)
    assert policy.epsilon == pytest.approx(0.5)
    policy.actor.exploration_epsilon = 1.0
    masks = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0]] * 400)  # branch 0: {0, 2}; branch 1: {1}
    action, _, _ = policy.actor.get_action_and_stats([torch.zeros(400, 2)], masks)
    first, second = (a.flatten() for a in action.discrete_list)
    assert set(first.tolist()) == {0, 2} and set(second.tolist()) == {1}
    assert (
        EpsilonGreedyQPolicy(0, OBS2_SPEC, NetworkSettings(), epsilon, greedy=True).epsilon == 0.0
    )


class _QuantileActor(DiscreteQActor):
    """A Q-network with an argument of its own, as a plugin's QR-DQN head has."""

    def __init__(self, *args: Any, num_quantiles: int, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, seed=seed, **kwargs)
        self.num_quantiles, self.seed_given = num_quantiles, seed


def test_actor_kwargs_are_added_to_the_policy_seed():
    # the bug this catches: actor_kwargs replaced {"seed": seed}, so an actor with an
    # argument of its own silently explored with seed 0 whatever the run's seed
    epsilon = ScheduledValue("constant", 0.1, 0.1, 1)
    policy = EpsilonGreedyQPolicy(7, OBS2_SPEC, NetworkSettings(hidden_units=8), epsilon,
                                  actor_cls=_QuantileActor, actor_kwargs={"num_quantiles": 4})  # fmt: skip
    assert policy.actor.num_quantiles == 4 and policy.actor.seed_given == 7
