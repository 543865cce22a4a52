"""One policy forward for the decisions of several environment workers.

mlagents' ``TorchPolicy.get_action(decision_steps, worker_id)`` serves one worker at a time:
it names each agent ``agent_<worker>-<id>`` (its memories are kept under that name), runs
``evaluate`` and returns an ``ActionInfo``. :func:`batched_actions` does the same for every
ready worker at once: the workers' decision steps are stacked into one ``DecisionSteps``,
``evaluate`` runs once with every agent's own global id, and the outputs are cut back into
one ``ActionInfo`` per worker, in the worker's agent order. Only the policy's public
``evaluate``, ``save_memories`` and ``check_nan_action`` are used, so plugin policies that
override ``evaluate`` (mla-dqn's epsilon-greedy Q policy) are batched as they act.

A policy that overrides ``get_action`` itself does something per call that stacking might
change; it is served one worker at a time, as mlagents does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from mlagents.trainers.action_info import ActionInfo
from mlagents.trainers.behavior_id_utils import get_global_agent_id
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents_envs.base_env import DecisionSteps, _ActionTupleBase


def batchable(policy: Any) -> bool:
    """Whether ``policy`` acts through mlagents' own ``TorchPolicy.get_action``."""
    return isinstance(policy, TorchPolicy) and type(policy).get_action is TorchPolicy.get_action


def stack_decision_steps(parts: list[DecisionSteps]) -> DecisionSteps:
    """The decision steps of several workers as one (rows in the order of ``parts``)."""
    obs = [np.concatenate([p.obs[i] for p in parts]) for i in range(len(parts[0].obs))]
    masks = None
    reference = next((p.action_mask for p in parts if p.action_mask is not None), None)
    if reference is not None:  # a worker that sent none allows every action
        masks = [
            np.concatenate([
                p.action_mask[branch] if p.action_mask is not None
                else np.zeros((len(p), width.shape[1]), dtype=bool)
                for p in parts
            ])
            for branch, width in enumerate(reference)
        ]  # fmt: skip
    return DecisionSteps(
        obs,
        np.concatenate([p.reward for p in parts]),
        np.concatenate([p.agent_id for p in parts]),
        masks,
        np.concatenate([p.group_id for p in parts]),
        np.concatenate([p.group_reward for p in parts]),
    )


def _rows(value: Any, start: int, stop: int, total: int) -> Any:
    """Rows ``start:stop`` of one ``evaluate`` output (per-agent arrays and action tuples);
    anything not per agent is passed on whole."""
    if isinstance(value, _ActionTupleBase):
        return type(value)(
            continuous=value.continuous[start:stop], discrete=value.discrete[start:stop]
        )
    if hasattr(value, "shape") and len(value.shape) > 0 and value.shape[0] == total:
        return value[start:stop]
    return value


def batched_actions(
    policy: TorchPolicy, decisions: Mapping[int, DecisionSteps]
) -> dict[int, ActionInfo]:
    """``policy``'s actions for the decision steps of several workers (worker id ->
    ``DecisionSteps``), computed in one forward pass: the same ``ActionInfo`` per worker as
    ``policy.get_action(steps, worker_id)`` would give, memories kept per agent and worker."""
    workers = [w for w, steps in decisions.items() if len(steps) > 0]
    result = {w: ActionInfo.empty() for w, steps in decisions.items() if len(steps) == 0}
    if not workers:
        return result
    if len(workers) == 1 or not batchable(policy):
        for worker in workers:
            result[worker] = policy.get_action(decisions[worker], worker)
        return result
    parts = [decisions[w] for w in workers]
    stacked = stack_decision_steps(parts)
    global_ids = [
        get_global_agent_id(w, int(agent)) for w in workers for agent in decisions[w].agent_id
    ]
    run_out = policy.evaluate(stacked, global_ids)
    policy.save_memories(global_ids, run_out.get("memory_out"))
    policy.check_nan_action(run_out.get("action"))
    total, start = len(stacked), 0
    for worker, part in zip(workers, parts, strict=True):
        stop = start + len(part)
        outputs = {key: _rows(value, start, stop, total) for key, value in run_out.items()}
        result[worker] = ActionInfo(
            action=outputs.get("action"),
            env_action=outputs.get("env_action"),
            outputs=outputs,
            agent_ids=list(part.agent_id),
        )
        start = stop
    return result
