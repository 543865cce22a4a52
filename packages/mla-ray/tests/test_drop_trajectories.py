"""``drop_trajectories``: after a worker's restart, mlagents' real ``AgentProcessor`` keeps
nothing of that worker's agents (trajectories, last steps and actions, memories, places in
their groups) and everything of the other workers'. Runs on every supported mlagents release,
since it relies on ``AgentProcessor``'s per-agent clean-up."""

from __future__ import annotations

import numpy as np
from mla_ray.env_manager import drop_trajectories
from mlagents.trainers.agent_processor import AgentProcessor
from mlagents.trainers.settings import NetworkSettings
from mlagents.trainers.stats import StatsReporter
from mlagents_envs.base_env import ActionSpec, DecisionSteps, TerminalSteps

from mla_plugin_core.testing.builders import make_trainer, trainer_settings, vector_behavior_spec

OBS = 4


def steps(rng: np.random.Generator, agent_ids: list[int], group_id: int) -> DecisionSteps:
    n = len(agent_ids)
    return DecisionSteps(
        [rng.standard_normal((n, OBS)).astype(np.float32)],
        rng.standard_normal(n).astype(np.float32),
        np.array(agent_ids, dtype=np.int32),
        None,
        np.full(n, group_id, dtype=np.int32),
        np.zeros(n, dtype=np.float32),
    )


def recurrent_policy(tmp_path, spec):
    from mlagents.trainers.ppo.trainer import PPOSettings, PPOTrainer

    memory = NetworkSettings.MemorySettings(sequence_length=4, memory_size=8)
    trainer = make_trainer(PPOTrainer, trainer_settings("ppo", PPOSettings(), memory=memory),
                           spec, tmp_path)  # fmt: skip
    return trainer.get_policy(next(iter(trainer.policies)))


def state_of(processor: AgentProcessor, worker_id: int) -> dict[str, set[str]]:
    """Every agent (and group) id of ``worker_id`` that ``processor`` or its policy holds."""
    agent, group = f"agent_{worker_id}-", f"group_{worker_id}-"
    policy = processor.policy
    tables = {
        "experience": set(processor._experience_buffers),
        "last step": set(processor._last_step_result),
        "last actions": set(processor._last_take_action_outputs),
        "episode steps": set(processor._episode_steps),
        "memories": set(policy.memory_dict),
        "previous actions": set(policy.previous_action_dict),
        "group status": set(processor._group_status),
        "group members": {a for g in processor._group_status.values() for a in g},
        "group obs": {a for g in processor._current_group_obs.values() for a in g},
    }
    return {
        name: {i for i in ids if i.startswith((agent, group))}
        for name, ids in tables.items()
        if any(i.startswith((agent, group)) for i in ids)
    }


def test_a_restarted_workers_agents_leave_nothing_behind(tmp_path):
    # the bug this catches: a dropped agent's teammates stay in its group's status and
    # observations, so the new environment's agents (same global group ids) would train
    # with a teammate of the crashed environment; or memories carried over the crash
    spec = vector_behavior_spec(ActionSpec.create_discrete((3,)), obs_size=OBS)
    policy = recurrent_policy(tmp_path, spec)
    processor = AgentProcessor(policy, "Basic?team=0", StatsReporter("drop-test"))
    rng = np.random.default_rng(0)
    for _ in range(3):  # a few steps of two workers, each with a group of three agents
        for worker_id in (0, 1):
            decisions = steps(rng, [0, 1, 2], group_id=1)
            action = policy.get_action(decisions, worker_id)
            processor.add_experiences(decisions, TerminalSteps.empty(spec), worker_id, action)
    before_0, before_1 = state_of(processor, 0), state_of(processor, 1)
    for table in ("experience", "last step", "memories", "group status", "group obs"):
        assert before_0.get(table) and before_1.get(table), (table, before_0, before_1)

    drop_trajectories([processor], 0)

    assert state_of(processor, 0) == {}
    assert state_of(processor, 1) == before_1
