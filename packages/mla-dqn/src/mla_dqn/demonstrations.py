"""ML-Agents ``.demo`` files as n-step expert transitions for DQfD.

A ``.demo`` file holds one record per agent step: the observations, the reward since the
previous record, whether the record ends an episode (``done``, with ``max_step_reached`` for
a cut) and an action. Unity writes the record in ``Agent.SendInfoToBrain``, before the
Academy's ``DecideAction`` of that step, so its action is the one decided at the record
*before* (none at an episode's first record; the terminal record holds the last decision's):
the action taken at record ``t`` is the one record ``t + 1`` holds. (mlagents'
``make_demo_buffer`` pairs record ``t`` with its own action, one decision late.) A folder's files (those mlagents' own loader lists)
are read one by one with mlagents' parser and decoder, and every file gives its own
transitions; nothing links the end of one file to the start of another. Per file, record
``t`` becomes a transition when:

- it is a decision: a record with ``done`` holds an episode's terminal observation, not a
  decision, and is dropped as a start;
- a record follows it in the same file: the file's last record has no next observation,
  so when a recording stops in the middle of an episode that last step is dropped.

The transition of record ``t``: ``next_obs = obs[t + 1]``, the action and the reward of
record ``t + 1``,
``dones`` when record ``t + 1`` ends its episode at a real terminal, ``truncated`` when it
ends it at ``max_step`` or when record ``t + 1`` is the file's last and no episode end
(the bootstrap from ``next_obs`` stays valid in both cases, and n-step sums stop there).
A terminal transition's ``next_obs`` is the episode's terminal observation, as in the
agent's own trajectories: the TD target ignores it, reward providers that read next
observations (curiosity) see the real one.

Masks are all-allowed (the format does not record them). Every reward signal of the
trainer is evaluated on the transitions once, at load time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from mlagents.trainers.buffer import AgentBuffer, BufferKey
from mlagents.trainers.demo_loader import get_demo_files, load_demonstration, make_demo_buffer
from mlagents.trainers.trajectory import ObsUtil
from mlagents_envs.base_env import BehaviorSpec
from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_envs.rpc_utils import steps_from_proto

from mla_plugin_core.replay.step_replay import StepReplay
from mla_plugin_core.replay.transitions import Transitions, concatenate_transitions, to_agent_buffer

#: Agent id of the demonstrations in the expert replay.
EXPERT_ID = "expert"


class ExpertSteps(NamedTuple):
    """The 1-step expert transitions of one or more ``.demo`` files (``N`` rows).

    :param buffer: what reward providers and observation normalisers read, as in an
        agent's trajectory: observations and next observations, discrete actions, all-ones
        action masks, ``DONE`` (the next record ends the episode, terminal or cut) and
        ``ENVIRONMENT_REWARDS``.
    :param dones: bool ``[N]``, the next observation is a real terminal.
    :param truncated: bool ``[N]``, the episode (or the recording) stops at the next
        observation without a terminal: the bootstrap from it stays.
    """

    buffer: AgentBuffer
    dones: np.ndarray
    truncated: np.ndarray


class RecordingSteps(NamedTuple):
    """The ``N`` transitions of one file: the extrinsic reward after the action as the only
    reward signal, masks all-allowed, and where the episode ends at ``next_obs`` (terminal
    or cut, bool ``[N]``)."""

    transitions: Transitions
    ended: np.ndarray


def demo_files(path: str) -> list[str]:
    """The ``.demo`` files at ``path`` (a file or folder, listed as mlagents lists them),
    in name order so that the expert replay does not depend on the file system.

    :raises FileNotFoundError, ValueError: naming ``path``.
    """
    try:
        return sorted(get_demo_files(path))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: no such .demo file or folder") from err
    except ValueError as err:
        what = "no .demo file in this folder" if "directory" in str(err) else "not a .demo file"
        raise ValueError(f"{path}: {what}") from err


def check_spec(file: str, found: BehaviorSpec, expected: BehaviorSpec) -> None:
    """Raise a one-line ``ValueError`` naming ``file`` unless its spec matches the trainer's."""
    if found.action_spec != expected.action_spec:
        raise ValueError(
            f"{file}: the actions {found.action_spec} of the demonstrations do not match "
            f"the behavior's {expected.action_spec}"
        )
    found_shapes = [spec.shape for spec in found.observation_specs]
    expected_shapes = [spec.shape for spec in expected.observation_specs]
    if len(found_shapes) != len(expected_shapes):
        raise ValueError(
            f"{file}: {len(found_shapes)} observations in the demonstrations, the behavior "
            f"has {len(expected_shapes)}"
        )
    for i, (shape, wanted) in enumerate(zip(found_shapes, expected_shapes, strict=True)):
        if shape != wanted:
            raise ValueError(
                f"{file}: observation {i} has shape {shape} in the demonstrations, the "
                f"behavior's is {wanted}"
            )


def _read_file(file: str, behavior_spec: BehaviorSpec) -> RecordingSteps:
    """One file's transitions (none when it has fewer than two records).

    :raises ValueError: naming ``file``, when mlagents cannot read it or its spec differs.
    """
    try:
        spec, pairs, _ = load_demonstration(file)
    except Exception as err:  # protobuf's DecodeError, IndexError, RuntimeError...
        raise ValueError(f"{file}: not a readable .demo file ({err})") from err
    check_spec(file, spec, behavior_spec)
    return records_to_steps(pairs, spec)


def _discrete_action(pair: AgentInfoActionPairProto) -> list[float]:
    action = pair.action_info
    return list(action.discrete_actions) or list(action.vector_actions_deprecated)


def records_to_steps(pairs: list[AgentInfoActionPairProto], spec: BehaviorSpec) -> RecordingSteps:
    """The transitions of consecutive records of one recording (a file, or an episode read
    while it is recorded), with Unity's alignment of actions (module docstring)."""
    n_obs = len(spec.observation_specs)
    n_branches = len(spec.action_spec.discrete_branches)
    # mlagents' rows: one per record but the last, with the record's observations, and
    # DONE and reward of the record after it (its actions are not used, see above).
    rows = make_demo_buffer(pairs, spec, 1)
    n_rows = rows.num_experiences
    # Observations of every record: the rows', then the last record's (for the row before).
    obs = [
        np.asarray(o, np.float32).reshape(n_rows, *o_spec.shape)
        for o, o_spec in zip(ObsUtil.from_buffer(rows, n_obs), spec.observation_specs, strict=True)
    ]
    if pairs:
        decisions, terminals = steps_from_proto([pairs[-1].agent_info], spec)
        last_obs = (terminals if len(terminals) else decisions).obs  # each [1, *shape]
        obs = [
            np.concatenate([o, np.asarray(last, np.float32)])
            for o, last in zip(obs, last_obs, strict=True)
        ]
    # Row t: record t, a decision unless it holds a terminal observation.
    keep = np.array([not p.agent_info.done for p in pairs[:n_rows]], bool)
    ended = np.asarray(rows[BufferKey.DONE].get_batch(), bool).reshape(n_rows)
    cut = np.array([p.agent_info.max_step_reached for p in pairs[1 : n_rows + 1]], bool) & ended
    stopped = np.zeros(n_rows, bool)  # the file's last record is not an episode end
    stopped[-1:] = ~ended[-1:]
    # The action taken at record t: the one record t + 1 holds (Unity's alignment).
    actions = np.array([_discrete_action(p) for p in pairs[1 : n_rows + 1]], np.float32)
    rewards = np.asarray(rows[BufferKey.ENVIRONMENT_REWARDS].get_batch(), np.float32)
    index = np.flatnonzero(keep)
    n = len(index)
    masks = np.ones((n, int(sum(spec.action_spec.discrete_branches))), bool)
    transitions = Transitions(
        obs=[o[index] for o in obs],
        continuous_actions=np.zeros((n, 0), np.float32),
        discrete_actions=np.rint(actions).astype(np.int32).reshape(n_rows, n_branches)[index],
        action_masks=masks,
        rewards={"extrinsic": rewards.reshape(n_rows)[index]},
        dones=(ended & ~cut)[index],
        truncated=(cut | stopped)[index],
        next_obs=[o[index + 1] for o in obs],
        next_action_masks=masks,
    )
    return RecordingSteps(transitions, ended[index])


def load_expert_steps(path: str, behavior_spec: BehaviorSpec) -> ExpertSteps:
    """Read ``.demo`` file(s) into 1-step expert transitions, each file on its own.

    :param path: a ``.demo`` file or a folder of them.
    :param behavior_spec: the trainer's spec; every file must match it.
    :raises FileNotFoundError, ValueError: one line naming the path or file (missing,
        no ``.demo`` file, unreadable, another spec, no transition at all).
    """
    files = [_read_file(file, behavior_spec) for file in demo_files(path)]
    if sum(len(f.ended) for f in files) == 0:
        raise ValueError(f"{path}: no transition (a decision with its next observation)")
    return expert_steps(files)


def expert_steps(parts: list[RecordingSteps]) -> ExpertSteps:
    """The transitions of several recordings (files, or episodes read while recorded), in
    order, each on its own."""
    steps = concatenate_transitions([p.transitions for p in parts])
    ended = np.concatenate([p.ended for p in parts])
    # DONE, as in an agent's trajectory, marks every episode end (terminal or cut)
    buffer = to_agent_buffer(steps._replace(dones=ended))
    return ExpertSteps(buffer, np.asarray(steps.dones), np.asarray(steps.truncated))


def expert_rows(
    steps: ExpertSteps, behavior_spec: BehaviorSpec, reward_signals: dict
) -> Transitions:
    """The rows of the expert replay for ``steps``: every reward signal of the trainer
    evaluated on them now (``reward_signals``: the optimizer's providers, name -> provider
    with ``evaluate``, ``strength`` and ``gamma``), masks all-allowed."""
    buffer = steps.buffer
    n = buffer.num_experiences
    n_obs = len(behavior_spec.observation_specs)
    masks = np.ones((n, int(sum(behavior_spec.action_spec.discrete_branches))), bool)
    return Transitions(
        obs=ObsUtil.from_buffer(buffer, n_obs),
        continuous_actions=np.zeros((n, 0), np.float32),
        discrete_actions=np.asarray(buffer[BufferKey.DISCRETE_ACTION].get_batch()),
        action_masks=masks,
        rewards={
            name: np.asarray(signal.evaluate(buffer), np.float32) * signal.strength
            for name, signal in reward_signals.items()
        },
        dones=steps.dones,
        truncated=steps.truncated,
        next_obs=ObsUtil.from_buffer_next(buffer, n_obs),
        next_action_masks=masks,
    )


def new_expert_replay(
    capacity: int,
    behavior_spec: BehaviorSpec,
    reward_signals: dict,
    n_step: int,
    seed: int | None = None,
) -> StepReplay:
    """An empty expert replay of ``capacity`` rows, sampled as n-step transitions exactly
    as the agent's own (the same store, :class:`StepReplay`): sums stop at episode ends and
    where a recording stopped."""
    return StepReplay(
        capacity=capacity,
        obs_shapes=[o.shape for o in behavior_spec.observation_specs],
        continuous_size=0,
        discrete_branches=behavior_spec.action_spec.discrete_branches,
        gammas={k: s.gamma for k, s in reward_signals.items()},
        n_step=n_step,
        seed=seed,
    )


def expert_replay(
    steps: ExpertSteps,
    behavior_spec: BehaviorSpec,
    reward_signals: dict,
    n_step: int,
    seed: int | None = None,
) -> StepReplay:
    """A replay holding the steps of ``steps``, one row each (:func:`expert_rows` in a
    :func:`new_expert_replay` of their size)."""
    replay = new_expert_replay(
        steps.buffer.num_experiences, behavior_spec, reward_signals, n_step, seed
    )
    replay.add(EXPERT_ID, expert_rows(steps, behavior_spec, reward_signals))
    # Normally nothing runs: every file's last transition ends an episode or a recording.
    replay.end_episodes()
    return replay


def load_expert_replay(
    path: str,
    behavior_spec: BehaviorSpec,
    reward_signals: dict,
    n_step: int,
    seed: int | None = None,
) -> StepReplay:
    """:func:`load_expert_steps` then :func:`expert_replay`."""
    return expert_replay(
        load_expert_steps(path, behavior_spec), behavior_spec, reward_signals, n_step, seed
    )
