"""One forward for several workers gives each worker what mlagents' per-worker call gives.

Policies are mlagents' own (PPO's, with an LSTM) and mla-dqn's, built with the testing kit;
the reference is ``policy.get_action(steps, worker_id)``, worker by worker, on a copy of the
same policy (same weights, same memories before the call).
"""

from __future__ import annotations

import copy

import attr
import numpy as np
import pytest
import torch
from mla_ray.batching import batchable, batched_actions, stack_decision_steps
from mlagents.trainers.action_info import ActionInfo
from mlagents.trainers.behavior_id_utils import get_global_agent_id
from mlagents.trainers.settings import NetworkSettings
from mlagents_envs.base_env import ActionSpec, DecisionSteps

from mla_plugin_core.testing.builders import make_trainer, trainer_settings, vector_behavior_spec

DETERMINISTIC = "deterministic" in {f.name for f in attr.fields(NetworkSettings)}


def decision_steps(
    rng: np.random.Generator, n: int, obs_size: int, agent_ids: list[int],
    branches: tuple[int, ...] = (),
) -> DecisionSteps:  # fmt: skip
    masks = None
    if branches:
        masks = [rng.random((n, b)) < 0.3 for b in branches]
        for mask in masks:
            mask[:, 0] = False  # at least one action allowed
    return DecisionSteps(
        [rng.standard_normal((n, obs_size)).astype(np.float32)],
        rng.standard_normal(n).astype(np.float32),
        np.array(agent_ids, dtype=np.int32),
        masks,
        np.zeros(n, dtype=np.int32),
        np.zeros(n, dtype=np.float32),
    )


def ppo_policy(tmp_path, spec, memory: bool):
    from mlagents.trainers.ppo.trainer import PPOSettings, PPOTrainer

    settings = trainer_settings(
        "ppo",
        PPOSettings(),
        memory=NetworkSettings.MemorySettings(sequence_length=4, memory_size=8) if memory else None,
    )
    if DETERMINISTIC:
        settings.network_settings.deterministic = True
    trainer = make_trainer(PPOTrainer, settings, spec, tmp_path)
    return trainer.get_policy(next(iter(trainer.policies)))


def dqn_policy(tmp_path, spec):
    from mla_dqn.settings import DQNSettings
    from mla_dqn.trainer import DQNTrainer

    settings = trainer_settings("dqn", DQNSettings(exploration_initial_eps=0.0,
                                                   exploration_final_eps=0.0))  # fmt: skip
    trainer = make_trainer(DQNTrainer, settings, spec, tmp_path)
    return trainer.get_policy(next(iter(trainer.policies)))


def assert_same(batched: ActionInfo, alone: ActionInfo) -> None:
    assert batched.agent_ids == alone.agent_ids
    if not alone.agent_ids:
        assert batched == ActionInfo.empty()
        return
    for field in ("continuous", "discrete"):
        np.testing.assert_allclose(
            getattr(batched.env_action, field), getattr(alone.env_action, field), atol=1e-6
        )
        np.testing.assert_allclose(
            getattr(batched.action, field), getattr(alone.action, field), atol=1e-6
        )
    assert set(batched.outputs) == set(alone.outputs)
    for key, value in alone.outputs.items():
        other = batched.outputs[key]
        if hasattr(value, "continuous"):
            np.testing.assert_allclose(other.continuous, value.continuous, atol=1e-5)
            np.testing.assert_allclose(other.discrete, value.discrete, atol=1e-5)
        else:
            np.testing.assert_allclose(np.asarray(other), np.asarray(value), atol=1e-5)


def compare(policy, decisions: dict[int, DecisionSteps]) -> dict[int, ActionInfo]:
    reference = copy.deepcopy(policy)
    assert batchable(policy)
    torch.manual_seed(0)
    batched = batched_actions(policy, decisions)
    for worker, steps in decisions.items():
        torch.manual_seed(0)
        alone = reference.get_action(steps, worker)
        assert_same(batched[worker], alone)
    return batched


@pytest.mark.skipif(not DETERMINISTIC, reason="this mlagents has no deterministic inference")
@pytest.mark.parametrize("memory", [False, True], ids=["feedforward", "lstm"])
def test_continuous_policy_batched_equals_per_worker(tmp_path, memory):
    spec = vector_behavior_spec(ActionSpec.create_continuous(2), obs_size=8)
    policy = ppo_policy(tmp_path, spec, memory)
    rng = np.random.default_rng(3)
    # the same agent ids on several workers: memories must stay apart
    decisions = {0: decision_steps(rng, 3, 8, [0, 1, 2]), 2: decision_steps(rng, 2, 8, [1, 0]),
                 5: decision_steps(rng, 4, 8, [7, 1, 3, 2])}  # fmt: skip
    for _ in range(3):  # memories carried from one step to the next, per agent and worker
        batched = compare(policy, decisions)
        decisions = {
            w: decision_steps(rng, len(s), 8, list(s.agent_id)) for w, s in decisions.items()
        }
    assert batched[5].env_action.continuous.shape == (4, 2)
    if memory:
        ids = [get_global_agent_id(w, int(a)) for w, s in decisions.items() for a in s.agent_id]
        memories = policy.retrieve_memories(ids)
        assert np.abs(memories).sum() > 0
        # agent 1 of worker 0 and agent 1 of worker 2 are different agents
        assert not np.allclose(memories[ids.index("agent_0-1")], memories[ids.index("agent_2-1")])


def test_dqn_policy_with_masks_batched_equals_per_worker(tmp_path):
    spec = vector_behavior_spec(ActionSpec.create_discrete((3, 2)), obs_size=5)
    policy = dqn_policy(tmp_path, spec)
    rng = np.random.default_rng(4)
    decisions = {
        0: decision_steps(rng, 3, 5, [0, 1, 2], branches=(3, 2)),
        1: decision_steps(rng, 2, 5, [0, 1], branches=(3, 2)),
        3: decision_steps(rng, 0, 5, [], branches=(3, 2)),  # no agent asked on this worker
    }
    batched = compare(policy, decisions)
    assert batched[3].agent_ids == []
    chosen = np.concatenate([batched[w].env_action.discrete for w in (0, 1)])
    masks = stack_decision_steps([decisions[0], decisions[1]]).action_mask
    for branch, mask in enumerate(masks):  # a masked action is never taken
        assert not mask[np.arange(len(chosen)), chosen[:, branch]].any()


def test_stack_allows_every_action_of_a_worker_without_masks():
    rng = np.random.default_rng(5)
    with_masks = decision_steps(rng, 2, 3, [0, 1], branches=(3,))
    without = decision_steps(rng, 2, 3, [0, 1])
    stacked = stack_decision_steps([without, with_masks])
    assert stacked.action_mask[0].shape == (4, 3)
    assert not stacked.action_mask[0][:2].any()
    np.testing.assert_array_equal(stacked.action_mask[0][2:], with_masks.action_mask[0])
    np.testing.assert_array_equal(stacked.obs[0][2:], with_masks.obs[0])


def test_a_policy_with_its_own_get_action_is_served_worker_by_worker(tmp_path):
    spec = vector_behavior_spec(ActionSpec.create_discrete((3,)), obs_size=5)
    policy = dqn_policy(tmp_path, spec)
    calls = []

    class Counting(type(policy)):
        def get_action(self, decision_requests, worker_id=0):
            calls.append(worker_id)
            return super().get_action(decision_requests, worker_id)

    policy.__class__ = Counting
    rng = np.random.default_rng(6)
    assert not batchable(policy)
    batched_actions(
        policy, {0: decision_steps(rng, 2, 5, [0, 1]), 1: decision_steps(rng, 1, 5, [0])}
    )
    assert calls == [0, 1]
