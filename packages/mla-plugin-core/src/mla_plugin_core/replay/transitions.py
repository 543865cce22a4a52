"""The transition schema: :class:`Transitions`, :class:`ReplaySample` and :data:`FIELDS`.

Every field of a transition is declared once, in :data:`FIELDS` (its kind, stored dtype,
width, tensor dtype, mlagents ``AgentBuffer`` key and which step of an n-step transition
it comes from). The replay buffer's storage, the n-step accumulator, row selection and
concatenation, :meth:`~mla_plugin_core.replay.batches.ReplayBatch.from_sample` and
:func:`to_agent_buffer` all read it; a new field is one entry here, one attribute of the
two tuples below, and its producers (the off-policy trainer's ``_transitions``, the DQN
demonstrations).

A batch is also seen flat, as named *columns* ``[B, ...]``: a field of kind ``"array"`` is
one column named as the field, one of kind ``"per_obs"`` a column ``obs[i]`` per
observation, one of kind ``"per_signal"`` a column ``rewards[name]`` per reward signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from mlagents.trainers.buffer import AgentBuffer

Array = npt.NDArray[Any]


class Transitions(NamedTuple):
    """A batch of ``B`` transitions, as given to :meth:`ReplayBuffer.add`.

    :param obs: one array per observation, ``[B, *obs_shape]``, stored as float32.
    :param continuous_actions: ``[B, continuous_size]``, stored as float32.
    :param discrete_actions: integers ``[B, n_branches]``, branch ``b`` in
        ``[0, discrete_branches[b])``, stored as int32.
    :param action_masks: ``[B, sum(discrete_branches)]``, truthy = action allowed (as
        mlagents' ``AgentBuffer[BufferKey.ACTION_MASK]``, ``1 - DecisionSteps.action_mask``).
    :param rewards: reward signal name -> ``[B]``; for n-step transitions the discounted sum.
    :param dones: ``[B]``, truthy when ``next_obs`` is terminal (no bootstrap).
    :param truncated: ``[B]``, truthy when the episode was interrupted (max step) at
        ``next_obs``; the bootstrap from ``next_obs`` stays valid.
    :param next_obs: one array per observation, ``[B, *obs_shape]``.
    :param next_action_masks: masks of ``next_obs``, ``[B, sum(discrete_branches)]``, for
        the ``max``/``argmax`` over next actions.
    :param discounts: reward signal name -> ``[B]``, the factor ``gamma^K`` of the
        bootstrap; :class:`NStepAccumulator` fills it. Required by :meth:`ReplayBuffer.add`.
    """

    obs: Sequence[npt.ArrayLike]
    continuous_actions: npt.ArrayLike
    discrete_actions: npt.ArrayLike
    action_masks: npt.ArrayLike
    rewards: Mapping[str, npt.ArrayLike]
    dones: npt.ArrayLike
    truncated: npt.ArrayLike
    next_obs: Sequence[npt.ArrayLike]
    next_action_masks: npt.ArrayLike
    discounts: Mapping[str, npt.ArrayLike] | None = None


class ReplaySample(NamedTuple):
    """A sampled minibatch of ``B`` transitions; fields as in :class:`Transitions`.

    Dtypes: observations, continuous actions, rewards, discounts and weights float32;
    discrete actions int32; masks, dones and truncated bool; indices int64.

    :param indices: ring slots sampled, ``[B]``; pass them back to
        :meth:`PrioritizedReplayBuffer.update_priorities`.
    :param weights: importance-sampling weights ``[B]`` to multiply the per-sample loss
        by; all ones for uniform sampling.
    """

    obs: list[Array]
    continuous_actions: Array
    discrete_actions: Array
    action_masks: Array
    rewards: dict[str, Array]
    dones: Array
    truncated: Array
    next_obs: list[Array]
    next_action_masks: Array
    discounts: dict[str, Array]
    indices: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]


class SequenceSample(NamedTuple):
    """A sampled minibatch of ``B`` sequences of ``L`` consecutive steps of one agent's
    episode (R2D2, Kapturowski et al. 2019), 1-step rows as stored. Past an episode end a
    sequence is padding (``valid`` False there, the last valid row repeated).

    :param obs: one array per observation, ``[B, L, *obs_shape]``.
    :param continuous_actions: ``[B, L, continuous_size]``.
    :param discrete_actions: ``[B, L, n_branches]``, int32.
    :param action_masks: ``[B, L, sum(discrete_branches)]``, bool.
    :param rewards: reward signal name -> 1-step rewards ``[B, L]``.
    :param dones: ``[B, L]``, the step's next observation is terminal.
    :param truncated: ``[B, L]``, the episode was interrupted at the step's next observation.
    :param next_obs: one array per observation, ``[B, L, *obs_shape]``.
    :param next_action_masks: ``[B, L, sum(discrete_branches)]``.
    :param valid: ``[B, L]``, bool, the step belongs to the sequence's episode.
    :param memories: the recurrent state stored with each sequence's first step ``[B, M]``
        (the policy's memory before acting there; ``M = 0`` without memory).
    :param indices: ring slots of the first steps, ``[B]`` (for priorities).
    :param weights: importance-sampling weights ``[B]``.
    """

    obs: list[Array]
    continuous_actions: Array
    discrete_actions: Array
    action_masks: Array
    rewards: dict[str, Array]
    dones: Array
    truncated: Array
    next_obs: list[Array]
    next_action_masks: Array
    valid: Array
    memories: Array
    indices: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float32]


Kind = Literal["array", "per_obs", "per_signal"]
Width = Literal["obs", "continuous", "branches", "mask", "scalar"]
Step = Literal["first", "last", "summed"]


class Field(NamedTuple):
    """The declaration of one field of :class:`Transitions`.

    :param name: the attribute of :class:`Transitions` and :class:`ReplaySample`.
    :param kind: ``"array"`` (one ``[B, ...]``), ``"per_obs"`` (a list, one per
        observation) or ``"per_signal"`` (a dict, reward signal name -> ``[B]``).
    :param dtype: the dtype the replay buffer stores (and samples) it as.
    :param width: the column's shape without the batch axis: an observation's shape,
        ``(continuous_size,)``, ``(n_branches,)``, ``(sum(discrete_branches),)`` or ``()``.
    :param tensor: the torch dtype of :class:`~mla_plugin_core.replay.batches.ReplayBatch`'s tensor
        (``None``: that of the array); a per-signal field becomes one ``[B, S]`` tensor.
    :param agent_buffer: the ``BufferKey`` name of :func:`to_agent_buffer` (``"obs"``: the
        observation names of ``ObsUtil``, ``"next_obs"``: their next names; a per-signal
        field: only its ``extrinsic`` signal); ``None`` when mlagents' providers read none.
    :param step: which step of an n-step transition it comes from: the ``"first"``, the
        ``"last"``, or ``"summed"`` over them (rewards, discounts: the accumulator's).
    :param fixed_dtype: whether the accumulator casts it to ``dtype`` (flags, rewards); the
        other fields keep the dtype they are given in.
    """

    name: str
    kind: Kind
    dtype: type
    width: Width
    tensor: str | None
    agent_buffer: str | None
    step: Step
    fixed_dtype: bool = False


#: Every field of :class:`Transitions`, in its order.
FIELDS: tuple[Field, ...] = (
    Field("obs", "per_obs", np.float32, "obs", None, "obs", "first"),
    Field(
        "continuous_actions",
        "array",
        np.float32,
        "continuous",
        "float32",
        "CONTINUOUS_ACTION",
        "first",
    ),
    Field("discrete_actions", "array", np.int32, "branches", "long", "DISCRETE_ACTION", "first"),
    Field("action_masks", "array", np.bool_, "mask", "bool", "ACTION_MASK", "first"),
    Field(
        "rewards",
        "per_signal",
        np.float32,
        "scalar",
        "float32",
        "ENVIRONMENT_REWARDS",
        "summed",
        True,
    ),
    Field("dones", "array", np.bool_, "scalar", "float32", "DONE", "last", True),
    Field("truncated", "array", np.bool_, "scalar", "float32", None, "last", True),
    Field("next_obs", "per_obs", np.float32, "obs", None, "next_obs", "last"),
    Field("next_action_masks", "array", np.bool_, "mask", "bool", None, "last"),
    Field("discounts", "per_signal", np.float32, "scalar", "float32", None, "summed", True),
)
assert tuple(f.name for f in FIELDS) == Transitions._fields == ReplaySample._fields[:-2]

#: The fields of kind ``"array"``, in order.
ARRAY_FIELDS = tuple(f.name for f in FIELDS if f.kind == "array")
#: The fields of kind ``"per_obs"`` and ``"per_signal"``.
PER_OBS_FIELDS = tuple(f.name for f in FIELDS if f.kind == "per_obs")
PER_SIGNAL_FIELDS = tuple(f.name for f in FIELDS if f.kind == "per_signal")


def _values(batch: Transitions | ReplaySample) -> tuple[Any, ...]:
    """The field values of ``batch`` in :data:`FIELDS`' order (then a sample's own)."""
    return batch


def column_name(field: Field, key: int | str | None = None) -> str:
    """The column of ``field`` (of observation or reward signal ``key``), e.g. ``obs[0]``."""
    return field.name if field.kind == "array" else f"{field.name}[{key}]"


def layout(
    obs_shapes: Sequence[tuple[int, ...]],
    continuous_size: int,
    discrete_branches: Sequence[int],
    signals: Sequence[str],
) -> dict[str, tuple[tuple[int, ...], type]]:
    """Every column of a batch with this spec: name -> (shape without the batch axis,
    stored dtype), fields in order; per-observation and per-signal columns in theirs."""
    widths: dict[str, tuple[int, ...]] = {
        "continuous": (int(continuous_size),),
        "branches": (len(discrete_branches),),
        "mask": (int(sum(discrete_branches)),),
        "scalar": (),
    }
    result: dict[str, tuple[tuple[int, ...], type]] = {}
    for field in FIELDS:
        if field.kind == "per_obs":
            for i, shape in enumerate(obs_shapes):
                result[column_name(field, i)] = (tuple(shape), field.dtype)
        elif field.kind == "per_signal":
            for signal in signals:
                result[column_name(field, signal)] = (widths[field.width], field.dtype)
        else:
            result[field.name] = (widths[field.width], field.dtype)
    return result


def columns(batch: Transitions | ReplaySample) -> dict[str, Any]:
    """Flatten a batch to named columns, e.g. ``obs[0]``, ``rewards[gail]`` (``discounts``
    only when given)."""
    result: dict[str, Any] = {}
    for field, value in zip(FIELDS, _values(batch), strict=False):
        if field.kind == "array":
            result[field.name] = value
        elif field.kind == "per_obs":
            result.update({column_name(field, i): v for i, v in enumerate(value)})
        elif value is not None:
            result.update({column_name(field, k): v for k, v in value.items()})
    return result


def fields(columns: Mapping[str, Any], n_obs: int, signals: Sequence[str]) -> dict[str, Any]:
    """Inverse of :func:`columns`: the keyword arguments of a Transitions/ReplaySample
    (a per-signal field ``None`` when ``columns`` has none of it)."""
    result: dict[str, Any] = {}
    for field in FIELDS:
        if field.kind == "array":
            result[field.name] = columns[field.name]
        elif field.kind == "per_obs":
            result[field.name] = [columns[column_name(field, i)] for i in range(n_obs)]
        elif signals and column_name(field, signals[0]) in columns:
            result[field.name] = {k: columns[column_name(field, k)] for k in signals}
        else:
            result[field.name] = None
    return result


def batch_size(batch: Transitions) -> int:
    """``B``, the length of ``batch.dones``, which must be ``[B]``."""
    dones = np.asarray(batch.dones)
    if dones.ndim != 1:
        raise ValueError(f"dones: expected shape [B], got {dones.shape}")
    return len(dones)


def _like(batch: Transitions, values: Mapping[str, Any]) -> Transitions:
    """A :class:`Transitions` of columns ``values`` with the observations and reward
    signals of ``batch``."""
    return Transitions(**fields(values, len(batch.obs), list(batch.rewards)))


def select_rows(batch: Transitions, rows: slice | npt.NDArray[np.integer]) -> Transitions:
    """Rows ``rows`` (a slice, which gives views, or an integer index array) of every field."""
    return _like(batch, {key: np.asarray(value)[rows] for key, value in columns(batch).items()})


def concatenate_transitions(batches: Sequence[Transitions]) -> Transitions:
    """The rows of ``batches`` (at least one, all alike) one after the other; a single
    batch is returned as it is."""
    if len(batches) == 1:
        return batches[0]
    per_batch = [columns(batch) for batch in batches]
    return _like(
        batches[0],
        {key: np.concatenate([np.asarray(c[key]) for c in per_batch]) for key in per_batch[0]},
    )


def to_tensors(sample: ReplaySample, signal_names: Sequence[str]) -> dict[str, Any]:
    """The fields of ``sample`` as torch tensors: per observation a list, per signal one
    ``[B, S]`` tensor with the columns of ``signal_names``, the rest ``[B, ...]``."""
    import torch

    result: dict[str, Any] = {}
    for field, value in zip(FIELDS, _values(sample), strict=False):
        dtype = None if field.tensor is None else getattr(torch, field.tensor)
        if field.kind == "per_obs":
            result[field.name] = [torch.as_tensor(v, dtype=dtype) for v in value]
        elif field.kind == "per_signal":
            stacked = np.stack([value[s] for s in signal_names], axis=1)
            result[field.name] = torch.as_tensor(stacked, dtype=dtype)
        else:
            result[field.name] = torch.as_tensor(value, dtype=dtype)
    return result


def to_agent_buffer(batch: Transitions | ReplaySample) -> AgentBuffer:
    """An mlagents ``AgentBuffer`` of ``batch`` for its reward providers and normalisers:
    every field with an ``agent_buffer`` key, masks and flags as float32, the reward of the
    ``extrinsic`` signal (zeros without it), and ``MASKS`` all ones (every row is a step)."""
    from mlagents.trainers.buffer import AgentBuffer, BufferKey
    from mlagents.trainers.trajectory import ObsUtil

    n = batch_size(batch)  # type: ignore[arg-type]
    buffer = AgentBuffer()
    for field, value in zip(FIELDS, _values(batch), strict=False):
        key = field.agent_buffer
        if key in ("obs", "next_obs"):
            name = ObsUtil.get_name_at if key == "obs" else ObsUtil.get_name_at_next
            for i, obs in enumerate(value):
                buffer[name(i)].set(list(obs))
        elif key is not None:
            if field.kind == "per_signal":
                value = value.get("extrinsic", np.zeros(n, np.float32))
            array = np.asarray(value)
            if array.dtype == np.bool_:
                array = array.astype(np.float32)
            buffer[BufferKey[key]].set(list(array))
    buffer[BufferKey.MASKS].set(list(np.ones(n, np.float32)))
    return buffer
