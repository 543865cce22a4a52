"""Replay buffers for off-policy trainers: uniform, prioritized, and n-step returns.

- :class:`ReplayBuffer`: preallocated numpy ring storage, batched inserts, uniform sampling.
- :class:`PrioritizedReplayBuffer`: proportional prioritized replay (Schaul et al. 2016,
  https://arxiv.org/abs/1511.05952) on a :class:`~mla_plugin_core.sum_tree.SumTree`.
- :class:`NStepAccumulator`: turns interleaved per-agent steps into n-step transitions
  (Sutton & Barto 2018, section 7.1; Rainbow, Hessel et al. 2018,
  https://arxiv.org/abs/1710.02298).

A stored transition ``t`` holds everything a TD target needs::

    target = rewards[s] + discounts[s] * (1 - dones) * V_s(next_obs)

with ``rewards[s] = sum_{k<K} gamma_s^k r_{t+k}``, ``discounts[s] = gamma_s^K`` and ``K`` the
number of steps actually summed (``n`` or fewer at an episode end).

Memory: next observations are stored explicitly, next to the observations, so each
transition costs twice its observation bytes. Deriving ``next_obs`` from the following slot
would halve that, but breaks when several agents interleave in one ring and at episode
ends; it is not worth it for vector observations. For visual observations it is: one
``(84, 84, 3)`` float32 observation is 84.7 kB, so 100,000 transitions take 16.9 GB. Size
the capacity accordingly. ``np.zeros`` storage is only backed by RAM once written.
"""

from __future__ import annotations

import importlib
import json
import operator
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from mla_plugin_core.atomic_file import atomic_write
from mla_plugin_core.sum_tree import MinTree, SumTree

# numpy's C functions, without the dispatch of np.concatenate, np.count_nonzero and
# np.correlate (in numpy 1 Python code that costs more than their work on a trajectory)
try:
    _umath: Any = importlib.import_module("numpy._core._multiarray_umath")  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1
    _umath = importlib.import_module("numpy.core._multiarray_umath")
_concatenate = _umath.concatenate
_correlate = _umath.correlate2
_count_nonzero = _umath.count_nonzero

#: Version of the layout :meth:`ReplayBuffer.save` writes; :meth:`ReplayBuffer.load`
#: refuses any other.
FORMAT_VERSION = 1

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


def _columns(batch: Transitions) -> dict[str, Any]:
    """Flatten a :class:`Transitions` to named columns, e.g. ``obs[0]``, ``rewards[gail]``."""
    columns: dict[str, Any] = {f"obs[{i}]": o for i, o in enumerate(batch.obs)}
    columns.update({f"next_obs[{i}]": o for i, o in enumerate(batch.next_obs)})
    columns["continuous_actions"] = batch.continuous_actions
    columns["discrete_actions"] = batch.discrete_actions
    columns["action_masks"] = batch.action_masks
    columns["next_action_masks"] = batch.next_action_masks
    columns["dones"] = batch.dones
    columns["truncated"] = batch.truncated
    columns.update({f"rewards[{k}]": r for k, r in batch.rewards.items()})
    if batch.discounts is not None:
        columns.update({f"discounts[{k}]": d for k, d in batch.discounts.items()})
    return columns


def _fields(columns: Mapping[str, Any], n_obs: int, signals: Sequence[str]) -> dict:
    """Inverse of :func:`_columns`: the keyword arguments of a Transitions/ReplaySample
    (``discounts=None`` when ``columns`` has none)."""
    has_discounts = bool(signals) and f"discounts[{signals[0]}]" in columns
    return dict(
        obs=[columns[f"obs[{i}]"] for i in range(n_obs)],
        continuous_actions=columns["continuous_actions"],
        discrete_actions=columns["discrete_actions"],
        action_masks=columns["action_masks"],
        rewards={k: columns[f"rewards[{k}]"] for k in signals},
        dones=columns["dones"],
        truncated=columns["truncated"],
        next_obs=[columns[f"next_obs[{i}]"] for i in range(n_obs)],
        next_action_masks=columns["next_action_masks"],
        discounts={k: columns[f"discounts[{k}]"] for k in signals} if has_discounts else None,
    )


def _batch_size(batch: Transitions) -> int:
    """``B``, the length of ``batch.dones``, which must be ``[B]``."""
    dones = np.asarray(batch.dones)
    if dones.ndim != 1:
        raise ValueError(f"dones: expected shape [B], got {dones.shape}")
    return len(dones)


class ReplayBuffer:
    """Uniform replay over a preallocated ring of the last ``capacity`` transitions.

    Any number of agents may insert into one buffer: each row of a batch is a whole
    transition, ``next_obs`` included.

    :param capacity: maximum number of transitions; once full, the oldest are overwritten.
    :param obs_shapes: the shape of each observation without the batch axis, e.g.
        ``[(8,), (84, 84, 3)]``.
    :param continuous_size: number of continuous actions (``0`` for none).
    :param discrete_branches: the size of each discrete action branch (empty for none).
    :param reward_signals: names of the reward signals, e.g. ``["extrinsic", "curiosity"]``.
    :param seed: seed of the ``np.random.Generator`` used for sampling; ``None`` for fresh
        entropy.
    """

    kind = "uniform"

    def __init__(
        self,
        capacity: int,
        obs_shapes: Sequence[Sequence[int] | int],
        continuous_size: int = 0,
        discrete_branches: Sequence[int] = (),
        reward_signals: Sequence[str] = ("extrinsic",),
        seed: int | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected >= 1, got {capacity}")
        if continuous_size < 0:
            raise ValueError(f"continuous_size: expected >= 0, got {continuous_size}")
        if any(b < 1 for b in discrete_branches):
            raise ValueError(f"discrete_branches: expected sizes >= 1, got {discrete_branches}")
        if not reward_signals or len(set(reward_signals)) != len(reward_signals):
            raise ValueError(f"reward_signals: expected unique names, got {reward_signals}")
        self._capacity = int(capacity)
        self.obs_shapes = [tuple(int(d) for d in np.atleast_1d(s)) for s in obs_shapes]
        self.continuous_size = int(continuous_size)
        self.discrete_branches = [int(b) for b in discrete_branches]
        self._branch_sizes = np.array(self.discrete_branches, np.int64)
        self.reward_signals = [str(s) for s in reward_signals]
        self._rng = np.random.default_rng(seed)
        self._position = 0  # ring slot the next transition goes to
        self._size = 0  # number of valid transitions, <= capacity

        # column name -> (shape without batch axis, dtype)
        n_mask = sum(self.discrete_branches)
        layout: dict[str, tuple[tuple[int, ...], type]] = {}
        for i, shape in enumerate(self.obs_shapes):
            layout[f"obs[{i}]"] = (shape, np.float32)
            layout[f"next_obs[{i}]"] = (shape, np.float32)
        layout["continuous_actions"] = ((self.continuous_size,), np.float32)
        layout["discrete_actions"] = ((len(self.discrete_branches),), np.int32)
        layout["action_masks"] = ((n_mask,), np.bool_)
        layout["next_action_masks"] = ((n_mask,), np.bool_)
        layout["dones"] = ((), np.bool_)
        layout["truncated"] = ((), np.bool_)
        for name in self.reward_signals:
            layout[f"rewards[{name}]"] = ((), np.float32)
            layout[f"discounts[{name}]"] = ((), np.float32)
        self._layout = layout
        self._storage: dict[str, Array] = {
            key: np.zeros((self._capacity, *shape), dtype) for key, (shape, dtype) in layout.items()
        }

    @property
    def capacity(self) -> int:
        """Maximum number of transitions held."""
        return self._capacity

    def __len__(self) -> int:
        """Number of transitions held, ``<= capacity``."""
        return self._size

    @property
    def spec(self) -> dict[str, Any]:
        """What a saved buffer must match to be loaded (JSON-compatible)."""
        return {
            "kind": self.kind,
            "capacity": self._capacity,
            "obs_shapes": [list(s) for s in self.obs_shapes],
            "continuous_size": self.continuous_size,
            "discrete_branches": list(self.discrete_branches),
            "reward_signals": list(self.reward_signals),
        }

    def _validate(self, batch: Transitions) -> dict[str, Array]:
        """Check a batch against the spec; return its columns as arrays ``[B, ...]``."""
        if batch.discounts is None:
            raise ValueError(
                "discounts: required (reward signal -> gamma^K [B]); "
                "NStepAccumulator computes them, for 1-step use NStepAccumulator(1, gammas)"
            )
        n_obs = len(self.obs_shapes)
        for name in ("obs", "next_obs"):
            if len(getattr(batch, name)) != n_obs:
                raise ValueError(
                    f"{name}: expected {n_obs} arrays of shapes {self.obs_shapes}, "
                    f"got {len(getattr(batch, name))}"
                )
        for name in ("rewards", "discounts"):
            given = list(getattr(batch, name))
            if sorted(given) != sorted(self.reward_signals):
                raise ValueError(
                    f"{name}: expected reward signals {self.reward_signals}, got {given}"
                )
        n = _batch_size(batch)
        columns = {key: np.asarray(value) for key, value in _columns(batch).items()}
        for key, (shape, _) in self._layout.items():
            got = columns[key].shape
            if got[1:] != shape or got[:1] != (n,):
                raise ValueError(
                    f"{key}: expected shape {[n, *shape]} ([B, ...] with B={n} from "
                    f"dones), got {list(got)}"
                )
        actions = columns["discrete_actions"]
        if actions.size:
            if actions.dtype.kind not in "iu":
                raise TypeError(f"discrete_actions: expected integers, got {actions.dtype}")
            if actions.min() < 0 or (actions >= self._branch_sizes).any():
                raise ValueError(
                    f"discrete_actions: expected branch b in [0, discrete_branches[b]) "
                    f"with discrete_branches={self.discrete_branches}"
                )
        return columns

    def add(self, batch: Transitions) -> npt.NDArray[np.int64]:
        """Insert a batch of ``B`` transitions, overwriting the oldest when full.

        :param batch: the transitions, every field ``[B, ...]`` as documented in
            :class:`Transitions`. ``B`` may be ``0`` or exceed ``capacity`` (then only the
            last ``capacity`` rows are kept).
        :return: the ring slots written, int64 ``[min(B, capacity)]``.
        """
        columns = self._validate(batch)
        n = len(columns["dones"])
        kept = min(n, self._capacity)
        # Rows dropped from the front of an oversized batch would be overwritten anyway.
        self._position = (self._position + n - kept) % self._capacity
        start, head = self._reserve(kept)
        for key, array in self._storage.items():
            rows = columns[key] if kept == n else columns[key][n - kept :]
            if head == kept:
                array[start : start + kept] = rows
            else:
                array[start : start + head] = rows[:head]
                array[: kept - head] = rows[head:]
        return (start + np.arange(kept)) % self._capacity

    def _reserve(self, count: int) -> tuple[int, int]:
        """Claim the next ``count <= capacity`` ring slots for rows about to be written.

        :return: ``(start, head)``: the slots are ``[start, start + head)`` then
            ``[0, count - head)`` (the ring wraps after ``head`` rows).
        """
        start = self._position
        self._position = (start + count) % self._capacity
        self._size = min(self._size + count, self._capacity)
        return start, min(count, self._capacity - start)

    def _gather(
        self, indices: npt.NDArray[np.int64], weights: npt.NDArray[np.float32]
    ) -> ReplaySample:
        columns = {key: array[indices] for key, array in self._storage.items()}
        fields = _fields(columns, len(self.obs_shapes), self.reward_signals)
        return ReplaySample(**fields, indices=indices, weights=weights)

    def _check_can_sample(self, batch_size: int) -> None:
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")

    def sample(self, batch_size: int) -> ReplaySample:
        """Draw ``batch_size`` transitions uniformly, with replacement.

        :return: a :class:`ReplaySample` with every field ``[batch_size, ...]`` and
            ``weights`` all ones.
        """
        self._check_can_sample(batch_size)
        indices = self._rng.integers(0, self._size, size=batch_size, dtype=np.int64)
        return self._gather(indices, np.ones(batch_size, np.float32))

    # --- persistence -------------------------------------------------------------------

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """Metadata and arrays beyond the transitions; subclasses extend."""
        return {}, {}

    def _restore_extra(self, meta: Mapping[str, Any], data: Mapping[str, Array]) -> None:
        """Inverse of :meth:`_extra_state`."""

    def save(self, path: str | os.PathLike, info: Mapping[str, Any] | None = None) -> None:
        """Write the buffer to ``path`` (an uncompressed ``.npz``) atomically.

        The file holds the format version, :attr:`spec`, the ring position, the sampling
        generator state and the filled part of every array (and, for prioritized replay,
        the priorities). The data goes to a temporary file in the same directory that then
        replaces ``path``, so a crash mid-save leaves any previous file intact.

        :param info: JSON-serialisable facts kept with the buffer and returned by
            :meth:`load` (the trainer stores the step of the checkpoint it goes with).
        """
        extra_meta, extra_arrays = self._extra_state()
        meta = {
            "format_version": FORMAT_VERSION,
            "spec": self.spec,
            "position": self._position,
            "size": self._size,
            "rng_state": self._rng.bit_generator.state,
            "info": dict(info or {}),
            **extra_meta,
        }
        arrays = {key: array[: self._size] for key, array in self._storage.items()}
        arrays.update(extra_arrays)
        arrays["meta"] = np.array(json.dumps(meta))
        with atomic_write(path) as file:
            np.savez(file, **arrays)

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Replace this buffer's content with the one saved at ``path``.

        Sampling afterwards continues exactly as it would have from the saved buffer.

        :return: the ``info`` given to :meth:`save` (``{}`` for files written without).

        :raises ValueError: if the format version or any field of :attr:`spec` (capacity
            included) differs; the message names the field.
        """
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"{path}: format_version {meta.get('format_version')} is not the "
                    f"supported {FORMAT_VERSION}"
                )
            for field, ours in self.spec.items():
                saved = meta["spec"].get(field)
                if saved != ours:
                    raise ValueError(
                        f"{path}: saved replay buffer has {field}={saved!r}, "
                        f"this buffer has {field}={ours!r}"
                    )
            size = int(meta["size"])
            for key, array in self._storage.items():
                array[:size] = data[key]
            self._size = size
            self._position = int(meta["position"])
            self._rng.bit_generator.state = meta["rng_state"]
            self._restore_extra(meta, data)
        return dict(meta.get("info", {}))


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952).

    Transition ``i`` is drawn with ``P(i) = p_i^alpha / sum_k p_k^alpha`` where
    ``p_i = |delta_i| + eps``; new transitions get the largest priority seen so far. Each
    sample is corrected by ``w_i = (N * P(i))^-beta / max_j w_j``, the maximum over the whole
    buffer (the smallest ``P(j)``). ``beta`` is given to each :meth:`sample`: its schedule
    belongs to the caller (the off-policy trainer anneals it over environment steps).

    :param alpha: priority exponent in ``[0, 1]``; ``0`` is uniform. Paper: 0.6.
    :param eps: added to ``|td_error|`` so no transition has zero probability (``> 0``).

    The other parameters (positional or keyword) are those of :class:`ReplayBuffer`.
    """

    kind = "prioritized"

    def __init__(self, *args: Any, alpha: float = 0.6, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha: expected in [0, 1], got {alpha}")
        if eps <= 0.0:
            raise ValueError(f"eps: expected > 0, got {eps}")
        self.alpha = float(alpha)
        self.eps = float(eps)
        self._sum_tree = SumTree(self._capacity)  # leaves hold p_i^alpha
        self._min_tree = MinTree(self._capacity)
        self._max_priority = 1.0  # largest p_i so far, given to new transitions

    @property
    def spec(self) -> dict[str, Any]:
        """As :attr:`ReplayBuffer.spec`, plus ``alpha`` (the stored priorities depend on it)."""
        return {**super().spec, "alpha": self.alpha}

    def priorities(self, indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The stored ``p_i^alpha`` of ring slots ``indices`` (int ``[B]``), float64 ``[B]``."""
        return self._sum_tree[indices]

    def _reserve(self, count: int) -> tuple[int, int]:
        """As :meth:`ReplayBuffer._reserve`; the new transitions get the maximum priority."""
        start, head = super()._reserve(count)
        indices = (start + np.arange(count)) % self._capacity
        self._set_priorities(indices, np.full(count, self._max_priority))
        return start, head

    def _set_priorities(self, indices: Array, priorities: npt.NDArray[np.float64]) -> None:
        scaled = priorities**self.alpha  # p_i^alpha
        self._sum_tree.update(indices, scaled)
        self._min_tree.update(indices, scaled)

    def update_priorities(self, indices: npt.ArrayLike, td_errors: npt.ArrayLike) -> None:
        """Set ``p_i = |td_error_i| + eps`` for the sampled ring slots.

        A slot overwritten since it was sampled takes the priority too (as in OpenAI
        baselines); with a capacity much larger than the updates per insert this is rare.

        :param indices: :attr:`ReplaySample.indices`, int ``[B]``.
        :param td_errors: TD errors of those samples, float ``[B]``, finite.
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        td_errors = np.asarray(td_errors, dtype=np.float64).reshape(-1)
        if indices.shape != td_errors.shape:
            raise ValueError(
                f"td_errors: expected shape {list(indices.shape)} like indices, "
                f"got {list(td_errors.shape)}"
            )
        if indices.size and (indices.min() < 0 or indices.max() >= self._size):
            raise IndexError(f"indices: expected ring slots in [0, {self._size})")
        if not np.isfinite(td_errors).all():
            raise ValueError("td_errors: expected finite values, got NaN or inf")
        priorities = np.abs(td_errors) + self.eps
        self._set_priorities(indices, priorities)
        if priorities.size:
            self._max_priority = max(self._max_priority, float(priorities.max()))

    def sample(self, batch_size: int, beta: float) -> ReplaySample:  # type: ignore[override]
        """Draw ``batch_size`` transitions with probability ``P(i)``, stratified.

        The priority mass is cut into ``batch_size`` equal segments and one transition is
        drawn from each (Schaul et al. 2016, Appendix B.2.1).

        :param beta: importance-sampling exponent in ``[0, 1]`` (``1`` corrects fully).
        :return: a :class:`ReplaySample` with ``weights`` ``w_i / max_j w_j`` in ``(0, 1]``.
        """
        self._check_can_sample(batch_size)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: expected in [0, 1], got {beta}")
        total = self._sum_tree.total
        segment = total / batch_size
        # one uniform draw inside each of the batch_size segments of the priority mass
        prefix_sums = (np.arange(batch_size) + self._rng.random(batch_size)) * segment
        indices = self._sum_tree.find_prefix_sum(prefix_sums)
        probs = self._sum_tree[indices] / total  # P(i)
        weights = (self._size * probs) ** -beta  # w_i = (N * P(i))^-beta
        max_weight = (self._size * self._min_tree.min / total) ** -beta  # from min P(j)
        return self._gather(indices, (weights / max_weight).astype(np.float32))

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, Array]]:
        meta = {"max_priority": self._max_priority}
        return meta, {"priorities": self._sum_tree.leaves[: self._size]}

    def _restore_extra(self, meta: Mapping[str, Any], data: Mapping[str, Array]) -> None:
        self._sum_tree = SumTree(self._capacity)
        self._min_tree = MinTree(self._capacity)
        scaled = data["priorities"]
        self._sum_tree.update(np.arange(len(scaled)), scaled)
        self._min_tree.update(np.arange(len(scaled)), scaled)
        self._max_priority = float(meta["max_priority"])
        # Files saved before beta left the buffer also hold "sample_steps", the counter of
        # its own beta schedule: the trainer's schedule replaces it, so it is ignored.


# Columns of an n-step transition taken from its last step; the others from its first.
_FROM_LAST_STEP = ("next_obs[", "next_action_masks", "dones", "truncated")
_OUTPUT_DTYPES: dict[str, Any] = {"rewards": np.float32, "dones": bool, "truncated": bool}
# Transitions of one agent up to this size come as one chunk, copied, rather than as views
# in several: one more ReplayBuffer.add costs about as much as copying this much.
_COPY_RATHER_THAN_SPLIT_BYTES = 64 * 1024
# add_to(): rows [start, stop) of columns at an offset of the run; a checked batch's
# columns, number of rows and rows that end an episode
# (source, start, stop, offset, lists): rows [start, stop) of a batch or of copied pending
# steps at an offset of the run, their column lists (NStepAccumulator._column_lists);
# a checked batch's number of rows, rows that end an episode, column lists and dones
_Lists = tuple[Sequence[Array], Sequence[Array], Sequence[Array]]
_Segment = tuple[Any, int, int, int, _Lists]
_Checked = tuple[int, list[int], _Lists, Array]
# add_to(): the columns of Transitions listed by _check_batch between the observations
# and the rewards, in that order
_FIELD_COLUMNS = (
    "continuous_actions",
    "discrete_actions",
    "action_masks",
    "next_action_masks",
    "dones",
    "truncated",
)


class _Waiting(NamedTuple):
    """Pending steps kept by :meth:`NStepAccumulator.add_to`: rows ``[start, stop)`` of
    ``batch``, whose checked columns are ``checked``."""

    batch: Transitions
    checked: _Checked
    start: int
    stop: int


class NStepAccumulator:
    """Turns interleaved per-agent steps into n-step transitions.

    For each agent, step ``t`` becomes a transition once ``n`` steps from ``t`` are known::

        rewards[s]   = sum_{k<K} gamma_s^k * r_s[t+k]
        next_obs     = next_obs[t+K-1]          (= obs[t+K])
        discounts[s] = gamma_s^K

    with ``K = n``. When a step ends the episode, every pending step of that agent is
    emitted with its shorter ``K``: on ``dones`` the bootstrap is cut (``dones=True``), on
    ``truncated`` it stays, from the real last ``next_obs``. A step both done and truncated
    counts as done. ``n = 1`` gives the plain transitions with ``discounts = gamma``.

    Work is done per agent on whole arrays, with no Python loop over rows: the steps of one
    agent in a call are a contiguous run after its pending ones, the transitions they
    complete are a prefix of that run, and their sums take ``n`` array operations.
    Transitions come out in the order they are completed (by the row that completes them,
    then by step), as if the rows were fed one at a time.

    :param n_steps: ``n >= 1``, the number of rewards summed before bootstrapping.
    :param gammas: reward signal name -> discount factor in ``[0, 1]``.
    """

    def __init__(self, n_steps: int, gammas: Mapping[str, float]) -> None:
        if n_steps < 1:
            raise ValueError(f"n_steps: expected >= 1, got {n_steps}")
        if not gammas:
            raise ValueError("gammas: expected at least one reward signal")
        if not all(0.0 <= g <= 1.0 for g in gammas.values()):
            raise ValueError(f"gammas: expected values in [0, 1], got {dict(gammas)}")
        self.n_steps = int(n_steps)
        self.signals = list(gammas)
        self._reward_keys = [f"rewards[{s}]" for s in self.signals]
        self._gammas = np.array([gammas[s] for s in self.signals], np.float64)  # [S]
        # per signal gamma^k for k < n, float64 [n], for _n_step_sums
        self._kernels = [g ** np.arange(self.n_steps, dtype=np.float64) for g in self._gammas]
        # agent -> columns of its steps still waiting for rewards, [P, ...] with P < n; all
        # in one running episode (flags False), rewards as one float64 [P, S] "rewards"
        # (add_to() keeps them as _Waiting views of its last batch instead; any other
        # method copies those first, with _copied_pending)
        self._pending: dict[Hashable, dict[str, Array] | _Waiting] = {}
        # Set by the first add(): the zero-row output, and per column (but rewards) whether
        # it comes from the last step of a transition and its output dtype.
        self._empty: Transitions | None = None
        self._plan: list[tuple[str, bool, np.dtype]] = []
        self._n_obs = 0
        self._row_bytes = 0  # bytes of one step, all columns
        self._signal_set = set(self.signals)
        # gamma_s^K for K <= n as stored, float32 [n + 1, S]
        self._discount_table = (
            self._gammas[None, :] ** np.arange(self.n_steps + 1)[:, None]
        ).astype(np.float32)
        # add_to(): the buffer last checked (None: check the next one), what it checked
        self._fast_buffer: ReplayBuffer | None = None
        self._fast_branches = np.zeros(0, np.uint64)  # the buffer's branch sizes
        # _check_batch(): the columns' shapes without the batch axis (in its order), and
        # per number of rows the full shapes; the rows whose dtype is fixed, and those
        self._fast_suffixes: list[tuple[int, ...]] = []
        self._fast_shapes: dict[int, tuple[tuple[int, ...], ...]] = {}
        self._fast_dtype_rows: Callable[[Sequence[Array]], tuple[Array, ...]] = _picker([])
        self._fast_dtypes: tuple[np.dtype, ...] = ()
        self._fast_ndarrays: tuple[type, ...] = ()
        self._fast_rows = (_picker([]), _picker([]))  # the arrays of _fast_keys
        self._fast_keys: tuple[list[str], list[str]] = ([], [])  # first-step, last-step
        # the buffer's arrays: first-step, last-step columns, flags, rewards, discounts
        self._fast_targets: tuple[list[Array], ...] = ([], [], [], [], [])
        self._fast_discounts = [self._discount_table[:, i] for i in range(len(self.signals))]
        self._reward_pad = np.zeros(self.n_steps - 1)  # the run's rewards past its end
        self._obs_keys: list[str] = []  # "obs[0]", ... and "next_obs[0]", ..., set by add()
        self._next_obs_keys: list[str] = []

    def __len__(self) -> int:
        """Number of steps waiting for more rewards, over all agents."""
        return sum(len(pending["dones"]) for pending in self._copied_pending().values())

    def add(self, agent_ids: Sequence[Hashable], steps: Transitions) -> Transitions:
        """Take a batch of ``B`` steps of any agents, in time order per agent.

        :param agent_ids: the agent of each row, ``[B]``.
        :param steps: 1-step transitions, fields ``[B, ...]``, ``discounts=None``.
        :return: the n-step transitions completed by these steps (possibly ``0`` rows),
            ready for :meth:`ReplayBuffer.add`.
        """
        return concatenate_transitions(self.add_chunks(agent_ids, steps))

    def add_chunks(
        self, agent_ids: Sequence[Hashable], steps: Transitions | Sequence[Transitions]
    ) -> list[Transitions]:
        """As :meth:`add`, the transitions as one or more consecutive batches, to give to
        :meth:`ReplayBuffer.add` one by one.

        For the steps of one agent this saves a copy: the transitions that start in the
        batch come as views of ``steps`` (their next observations too, but for the last
        ``n - 1`` before an episode end), the others as small batches of their own.

        :param steps: one batch, or consecutive batches that are read as their
            concatenation (``agent_ids`` covers all of their rows). For one agent only the
            last is not copied: the others are meant to be a few rows, such as the
            off-policy trainer's held step.
        """
        self._copied_pending()
        batches = [steps] if isinstance(steps, Transitions) else list(steps)
        parts = [self._normalise(batch) for batch in batches]
        n = sum(len(ends) for _, ends in parts)
        if len(agent_ids) != n:
            raise ValueError(f"agent_ids: expected {n} ids (B from dones), got {len(agent_ids)}")
        agents = dict.fromkeys(agent_ids)  # distinct agents, in order of first row
        if len(agents) == 0:
            return [self._empty_output()]
        if len(agents) == 1:  # earlier batches join the pending steps, the last one is the run
            (agent,) = agents
            *before, (columns, ends) = parts
            return self._advance(agent, columns, ends, before)[0] or [self._empty_output()]
        columns = {key: np.concatenate([c[key] for c, _ in parts]) for key in parts[0][0]}
        ends = np.concatenate([e for _, e in parts])
        # Several agents: each one's rows, in order, then the outputs merged back in the
        # order of the rows that completed them (ties: one agent's steps, already in order).
        number = {agent: i for i, agent in enumerate(agents)}
        codes = np.fromiter(map(number.__getitem__, agent_ids), np.intp, n)
        by_agent = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[by_agent], np.arange(len(agents) + 1))
        chunks, completed_by = [self._empty_output()], []
        for i, agent in enumerate(agents):
            rows = by_agent[bounds[i] : bounds[i + 1]]
            agent_chunks, at = self._advance(
                agent, {k: c[rows] for k, c in columns.items()}, ends[rows]
            )
            chunks += agent_chunks
            completed_by.append(rows[at])
        order = np.argsort(np.concatenate(completed_by), kind="stable")
        return [select_rows(concatenate_transitions(chunks), order)]

    def _normalise(self, steps: Transitions) -> tuple[dict[str, Array], npt.NDArray[np.bool_]]:
        """Check a batch of steps; its columns (flags as bool, done winning over truncated,
        rewards as one float64 ``[B, S]`` column ``rewards``) and where episodes end."""
        if steps.discounts is not None:
            raise ValueError("discounts: expected None, the accumulator computes them")
        if sorted(steps.rewards) != sorted(self.signals):
            raise ValueError(
                f"rewards: expected reward signals {self.signals}, got {list(steps.rewards)}"
            )
        n = _batch_size(steps)
        columns = {key: np.asarray(value) for key, value in _columns(steps).items()}
        for key, column in columns.items():
            if column.shape[:1] != (n,):
                raise ValueError(f"{key}: expected shape [B={n}, ...], got {list(column.shape)}")
        dones = columns["dones"].astype(bool)
        ends = dones | columns["truncated"].astype(bool)
        columns["dones"] = dones
        columns["truncated"] = ends & ~dones  # done wins over truncated
        columns["rewards"] = np.stack(
            [columns.pop(key) for key in self._reward_keys], axis=1
        ).astype(np.float64)  # [B, S]
        if self._empty is None:
            self._plan = [
                (key, key.startswith(_FROM_LAST_STEP), _output_dtype(key, column.dtype))
                for key, column in columns.items()
                if key != "rewards"
            ]
            self._n_obs = len(steps.obs)
            self._obs_keys = [f"obs[{i}]" for i in range(self._n_obs)]
            self._next_obs_keys = [f"next_obs[{i}]" for i in range(self._n_obs)]
            self._row_bytes = sum(c.itemsize * int(np.prod(c.shape[1:])) for c in columns.values())
            empty = {key: column[:0].copy() for key, column in columns.items()}
            self._empty = self._output(None, empty, np.zeros(0, np.intp), 0)
        elif len(steps.obs) != self._n_obs or len(steps.next_obs) != self._n_obs:
            raise ValueError(
                f"obs, next_obs: expected {self._n_obs} arrays each, as in the first batch, "
                f"got {len(steps.obs)} and {len(steps.next_obs)}"
            )
        return columns, ends

    def add_to(
        self,
        buffer: ReplayBuffer,
        agent: Hashable,
        parts: Sequence[tuple[Transitions, int, int]],
    ) -> int:
        """Store one agent's steps: as :meth:`add_chunks` then :meth:`ReplayBuffer.add` of
        each chunk, with the same result, but written straight into the buffer's ring.

        The insert path of a trainer. When the episode ends at most at the run's last step
        (as in a trajectory), each column is written with one slice copy per batch the run
        crosses and each reward signal's n-step sums take one call (:func:`_n_step_sums`); no
        intermediate batch is built. Each batch is checked against the buffer once, with
        shape tuples, however many calls read it. Otherwise (an episode end inside, more
        than ``capacity`` transitions, anything a check would refuse) it runs
        :meth:`add_chunks` and :meth:`ReplayBuffer.add`, which also give the errors.

        The last steps of the running episode that wait for more rewards are kept as
        views of the last batch, not copied: do not change that batch but for the rows
        given in the next call (as the off-policy trainer sets its held step's next mask).
        Any other method of the accumulator copies them first.

        :param buffer: the replay buffer to insert into; its observation shapes and reward
            signals those of the steps.
        :param agent: the agent all steps belong to.
        :param parts: consecutive steps of ``agent`` in time order, as ``(batch, start,
            stop)``: rows ``[start, stop)`` of ``batch`` (1-step transitions as for
            :meth:`add`).
        :return: the number of transitions stored.
        """
        run = self._fast_run(buffer, agent, parts)
        if run is None:
            parts = [(batch, start, stop) for batch, start, stop in parts if stop > start]
            if not parts:
                return 0
            steps = [select_rows(batch, slice(start, stop)) for batch, start, stop in parts]
            size = sum(stop - start for _, start, stop in parts)
            stored = 0
            for chunk in self.add_chunks([agent] * size, steps):
                if len(np.asarray(chunk.dones)):
                    stored += len(buffer.add(chunk))
            return stored
        segments, length, ended, last_flags, checked = run
        n = self.n_steps
        completed = length if ended else max(length - n + 1, 0)  # M
        full = max(length - n + 1, 0)  # transitions j < full sum n rewards
        # each signal's rewards of the run, float64 [L + n - 1], zero past its end (K < n)
        rewards = []
        for i in range(len(self.signals)):
            pieces = []
            for _, begin, end, _, lists in segments:
                pieces.append(lists[2][i][begin:end])
            pieces.append(self._reward_pad)
            rewards.append(_concatenate(pieces))
        if completed:
            ring_start, head = buffer._reserve(completed)
            if head == completed:  # output row r goes to ring slot ring_start + r
                targets, base = self._fast_targets, ring_start
            else:  # the ring wraps: write to rows of their own, then copy those over
                targets = tuple(
                    [np.empty_like(a[:completed]) for a in t] for t in self._fast_targets
                )
                base = 0
            first_targets, last_targets, flag_targets, reward_targets, discount_targets = targets
            for _, begin, end, offset, lists in segments:
                size = end - begin
                # first-step columns: run rows [0, M) are output rows [0, M)
                hi = min(size, completed - offset)
                if hi > 0:
                    slot = base + offset
                    for array, column in zip(first_targets, lists[0], strict=True):
                        array[slot : slot + hi] = column[begin : begin + hi]
                # last-step columns: run rows [n - 1, n - 1 + full) are output rows [0, full)
                lo = max(0, n - 1 - offset)
                hi = min(size, n - 1 + full - offset)
                if lo < hi:
                    slot = base + offset + lo - n + 1
                    for array, column in zip(last_targets, lists[1], strict=True):
                        array[slot : slot + hi - lo] = column[begin + lo : begin + hi]
            if completed > full:  # cut short by the episode end: next_* of its last step
                _, _, end, _, lists = segments[-1]
                for array, column in zip(last_targets, lists[1], strict=True):
                    array[base + full : base + completed] = column[end - 1 : end]
            # the run has no end but at its last step: transitions j >= L - n end there
            flagged = base + (max(length - n, 0) if ended else completed)
            for array, flag in zip(flag_targets, last_flags, strict=True):
                if flagged > base:
                    array[base:flagged] = False
                if flagged < base + completed:
                    array[flagged : base + completed] = flag
            for run_rewards, kernel, discounts, reward_array, discount_array in zip(
                rewards,
                self._kernels,
                self._fast_discounts,
                reward_targets,
                discount_targets,
                strict=True,
            ):
                # sum_{k<K} gamma^k r[j+k], the rewards past the run's end zero
                reward_array[base : base + completed] = _n_step_sums(run_rewards, kernel)[
                    :completed
                ]
                discount_array[base : base + full] = discounts[n]
                if completed > full:  # gamma^K with K = L - j for j in [full, M), descending
                    discount_array[base + full : base + completed] = discounts[
                        length - full : 0 : -1
                    ]
            if head != completed:
                for written, ring in zip(targets, self._fast_targets, strict=True):
                    for rows, array in zip(written, ring, strict=True):
                        array[ring_start:] = rows[:head]
                        array[: completed - head] = rows[head:]
        if ended or completed >= length:  # a new episode goes last, as in _advance
            self._pending.pop(agent, None)
        if completed < length:  # the last n - 1 steps, in the running episode, stay
            source, start, stop, offset, _ = segments[-1]
            if completed >= offset and type(source) is not dict:  # in the last batch: views
                waiting = (source, checked, start + completed - offset, stop)
                self._pending[agent] = _new_tuple(_Waiting, waiting)  # _Waiting(*waiting)
            else:
                pending = {
                    key: _run_rows_copy(segments, key, completed, length)
                    for key, _, _ in self._plan
                    if key not in ("dones", "truncated")
                }
                pending["dones"] = np.zeros(length - completed, bool)
                pending["truncated"] = np.zeros(length - completed, bool)
                pending["rewards"] = np.stack([r[completed:length] for r in rewards], axis=1)
                self._pending[agent] = pending
        return completed

    def _fast_run(
        self, buffer: ReplayBuffer, agent: Hashable, parts: Sequence[tuple[Transitions, int, int]]
    ) -> tuple[list[_Segment], int, bool, tuple[bool, bool], _Checked] | None:
        """For :meth:`add_to`: the run ``pending + parts`` as segments ``(source, start,
        stop, offset in the run, column lists)`` (source: a batch or copied pending steps;
        lists as :meth:`_column_lists` gives them), its length, whether it ends an
        episode, the (done, truncated) of its last step and the checks of the last part's
        batch; ``None`` when the general path must take it."""
        if self._empty is None:
            return None  # the first batch sets the plan
        if buffer is not self._fast_buffer and not self._check_buffer(buffer):
            return None
        segments: list[_Segment] = []
        length = 0
        checked: _Checked | None = None
        pending = self._pending.get(agent)
        waiting = None
        if isinstance(pending, _Waiting):
            waiting = pending
            segments.append((waiting.batch, waiting.start, waiting.stop, 0, waiting.checked[2]))
            length = waiting.stop - waiting.start
        elif pending is not None:
            length = len(pending["dones"])
            segments.append((pending, 0, length, 0, self._column_lists(pending)))
        pending_length = length
        flags = (False, False)
        last_part = len(parts) - 1
        for index, (batch, start, stop) in enumerate(parts):
            if stop <= start:  # no rows (an episode end before them goes the general path)
                continue
            if waiting is not None and batch is waiting.batch:
                checked = waiting.checked
            else:
                checked = self._check_batch(batch)
                if checked is None:
                    return None
            size, ends, lists, dones = checked
            if not 0 <= start < stop <= size:
                return None
            for end in ends:
                if start <= end < stop:
                    if end != stop - 1 or index != last_part:
                        return None  # an episode ends inside the run
                    done = bool(dones[end])
                    flags = (done, not done)
            if segments and segments[-1][4] is lists and segments[-1][2] == start:
                previous = segments[-1]  # rows that follow: one segment
                segments[-1] = (batch, previous[1], stop, previous[3], lists)
            else:
                segments.append((batch, start, stop, length, lists))
            length += stop - start
        if checked is None or length == pending_length:
            return None  # no rows given: nothing to do, the general path says so
        ended = flags != (False, False)
        if (length if ended else length - self.n_steps + 1) > buffer.capacity:
            return None
        return segments, length, ended, flags, checked

    def _column_lists(self, pending: Mapping[str, Array]) -> _Lists:
        """The arrays of copied pending steps as :meth:`add_to` reads them: the columns
        taken from a transition's first step and from its last step, in the order of
        ``_fast_targets``, and each reward signal's ``[P]``."""
        return (
            [pending[key] for key in self._fast_keys[0]],
            [pending[key] for key in self._fast_keys[1]],
            [pending["rewards"][:, i] for i in range(len(self.signals))],
        )

    def _check_buffer(self, buffer: ReplayBuffer) -> bool:
        """Whether :meth:`add_to` may write into ``buffer`` directly; if so remember its
        columns' shapes and the dtypes the steps must have (those the plan casts to)."""
        self._copied_pending()  # the checks of views were against the buffer before
        self._fast_buffer = None  # until every check passed
        if len(buffer.obs_shapes) != self._n_obs:
            return False
        if sorted(buffer.reward_signals) != sorted(self.signals):
            return False
        layout: dict[str, tuple[tuple[int, ...], np.dtype | None]] = {
            key: (shape, None)
            for key, (shape, _) in buffer._layout.items()
            if not key.startswith("discounts[")
        }
        for key, _, dtype in self._plan:  # flags may be any type, as in _normalise
            if key not in layout:
                return False
            layout[key] = (layout[key][0], None if key in _OUTPUT_DTYPES else dtype)
        actions = layout["discrete_actions"][1]
        if actions is None or actions.kind not in "iu":
            return False  # the checks of ReplayBuffer.add refuse them
        # the branch sizes as the unsigned integers of the actions' width
        self._fast_branches = buffer._branch_sizes.astype(f"u{actions.itemsize}")
        # the columns in the order _check_batch lists them
        keys = [*self._obs_keys, *self._next_obs_keys, *_FIELD_COLUMNS, *self._reward_keys]
        if sorted(keys) != sorted(layout):
            return False
        self._fast_suffixes = [layout[key][0] for key in keys]
        self._fast_shapes = {}
        fixed = [i for i, key in enumerate(keys) if layout[key][1] is not None]
        self._fast_dtype_rows = _picker(fixed)
        self._fast_dtypes = tuple(cast(np.dtype, layout[keys[i]][1]) for i in fixed)
        self._fast_ndarrays = (np.ndarray,) * len(keys)
        plan = [  # columns of zero width (no continuous actions) hold nothing
            (key, from_last)
            for key, from_last, _ in self._plan
            if key not in _OUTPUT_DTYPES and 0 not in layout[key][0]
        ]
        self._fast_keys = (
            [key for key, from_last in plan if not from_last],
            [key for key, from_last in plan if from_last],
        )
        self._fast_rows = (
            _picker([keys.index(key) for key in self._fast_keys[0]]),
            _picker([keys.index(key) for key in self._fast_keys[1]]),
        )
        storage = buffer._storage
        self._fast_targets = (
            [storage[key] for key in self._fast_keys[0]],
            [storage[key] for key in self._fast_keys[1]],
            [storage["dones"], storage["truncated"]],
            [storage[f"rewards[{signal}]"] for signal in self.signals],
            [storage[f"discounts[{signal}]"] for signal in self.signals],
        )
        self._fast_buffer = buffer
        return True

    def _check_batch(self, batch: Transitions) -> _Checked | None:
        """``batch``'s number of rows, the rows that end an episode, its columns as
        :meth:`_column_lists` and its dones, if every row passes the checks of :meth:`add`
        and :meth:`ReplayBuffer.add` with the dtypes of the first batch; else ``None``."""
        if batch.discounts is not None or batch.rewards.keys() != self._signal_set:
            return None
        obs, next_obs, rewards = batch.obs, batch.next_obs, batch.rewards
        if len(obs) != self._n_obs or len(next_obs) != self._n_obs:
            return None
        # the columns of _FIELD_COLUMNS in its order, between the observations and rewards
        arrays: list[Any] = [
            *obs,
            *next_obs,
            batch.continuous_actions,
            batch.discrete_actions,
            batch.action_masks,
            batch.next_action_masks,
            batch.dones,
            batch.truncated,
            *[rewards[signal] for signal in self.signals],
        ]
        if tuple(map(type, arrays)) != self._fast_ndarrays:  # array-likes: as arrays
            arrays = list(map(np.asarray, arrays))
        dones = arrays[2 * self._n_obs + 4]
        rows = dones.shape
        if len(rows) != 1:
            return None
        expected = self._fast_shapes.get(rows[0])
        if expected is None:
            if len(self._fast_shapes) > 1024:  # one per batch size seen: bounded
                self._fast_shapes.clear()
            expected = tuple([(*rows, *suffix) for suffix in self._fast_suffixes])
            self._fast_shapes[rows[0]] = expected
        if tuple(map(_shape_of, arrays)) != expected:
            return None
        if tuple(map(_dtype_of, self._fast_dtype_rows(arrays))) != self._fast_dtypes:
            return None
        actions = arrays[2 * self._n_obs + 1]
        if actions.size:  # negative actions wrap around to large unsigned values
            if _count_nonzero(actions.view(self._fast_branches.dtype) >= self._fast_branches):
                return None
        truncated = arrays[2 * self._n_obs + 5]
        ends: list[int] = []  # most batches have none: two counts, cheaper than a nonzero
        if _count_nonzero(dones) or _count_nonzero(truncated):
            ends = np.logical_or(dones, truncated).nonzero()[0].tolist()
        lists = (
            self._fast_rows[0](arrays),
            self._fast_rows[1](arrays),
            arrays[2 * self._n_obs + 6 :],
        )
        return rows[0], ends, lists, dones

    def _copied_pending(self) -> dict[Hashable, dict[str, Array]]:
        """The pending steps, those :meth:`add_to` keeps as views copied first."""
        for agent, waiting in list(self._pending.items()):
            if not isinstance(waiting, _Waiting):
                continue
            start, stop = waiting.start, waiting.stop
            run = [(waiting.batch, start, stop, 0, None)]
            pending = {
                key: _run_rows_copy(run, key, 0, stop - start)
                for key, _, _ in self._plan
                if key not in ("dones", "truncated")
            }
            pending["dones"] = np.zeros(stop - start, bool)
            pending["truncated"] = np.zeros(stop - start, bool)
            pending["rewards"] = np.stack(
                [np.asarray(r)[start:stop] for r in waiting.checked[2][2]], axis=1
            ).astype(np.float64)
            self._pending[agent] = pending
        return cast(dict[Hashable, dict[str, Array]], self._pending)

    def _empty_output(self) -> Transitions:
        if self._empty is None:
            raise ValueError("nothing was added yet")
        return self._empty

    def flush(self) -> Transitions:
        """Emit every pending step as if its agent's episode were truncated now.

        For the end of training; the bootstrap from the last known ``next_obs`` stays.

        :raises ValueError: if :meth:`add` was never called (no shapes to build a batch).
        """
        chunks = [self._empty_output()]
        for pending in self._copied_pending().values():
            size = len(pending["dones"])
            truncated = pending["truncated"].copy()
            truncated[-1] = True  # a pending step is never done: those are emitted
            run = {**pending, "truncated": truncated}
            chunks.append(self._output(None, run, np.full(size, size - 1), 0))
        self._pending.clear()
        return concatenate_transitions(chunks)

    def _advance(
        self,
        agent: Hashable,
        new: dict[str, Array],
        ends: npt.NDArray[np.bool_],
        before: Sequence[tuple[dict[str, Array], npt.NDArray[np.bool_]]] = (),
    ) -> tuple[list[Transitions], npt.NDArray[np.intp]]:
        """Append one agent's ``m`` new steps (columns ``[m, ...]``) to its ``P`` pending
        ones (and to the few steps ``before``, normalised batches, copied to them).

        In the run ``pending + new`` the transitions completed are the first ``M``: every
        step up to the last episode end and, after it, those with ``n`` steps known. Step
        ``j`` ends at step ``last_j``, the earlier of ``j + n - 1`` and the end of ``j``'s
        episode; ``last_j`` is also the step that completes it.

        :return: the transitions ``[M, ...]`` as consecutive chunks: those starting in the
            pending steps, then those of ``new`` whose ``n`` steps are a slice (views),
            then the rest from the first one cut short by an episode end (or a single
            chunk when that is small); and for each transition the row of ``new`` that
            completed it, int ``[M]`` (negative for those completed in ``before``).
        """
        n = self.n_steps
        pending = cast("dict[str, Array] | None", self._pending.get(agent))
        sources = ([] if pending is None else [(pending, None)]) + [*before, (new, ends)]
        sizes = [len(columns["dones"]) for columns, _ in sources]
        shift = sum(sizes[:-1])  # steps of the run before ``new``
        length = shift + len(ends)
        offsets = np.cumsum([0, *sizes])
        end_at = np.concatenate(  # episode ends in the run, ascending
            [
                np.flatnonzero(e) + o
                for (_, e), o in zip(sources, offsets, strict=False)
                if e is not None
            ]
        )
        if len(sources) > 1 and length * self._row_bytes <= _COPY_RATHER_THAN_SPLIT_BYTES:
            # small: one copy of the whole run, then only views of it
            new = {key: np.concatenate([c[key] for c, _ in sources]) for key in new}
            pending = None
        elif before:  # the few steps before join the pending ones
            pending = {key: np.concatenate([c[key] for c, _ in sources[:-1]]) for key in new}
        p = length - len(new["dones"])
        last_end = int(end_at[-1]) if end_at.size else -1
        completed = max(last_end + 1, length - n + 1, 0)  # M
        last = np.arange(n - 1, completed + n - 1)  # j + n - 1 for j < M
        cut = completed  # the first j cut short by an episode end
        if end_at.size:  # the end of j's episode; past the run for the running episode
            episode_end = np.append(end_at, length + n)[np.searchsorted(end_at, last - n + 1)]
            short = np.flatnonzero(episode_end < last)
            if short.size:
                cut = int(short[0])
                last = np.minimum(last, episode_end)
        split = min(p, completed)
        bounds = [0, split, max(split, cut), completed]
        if pending is None and completed * self._row_bytes <= _COPY_RATHER_THAN_SPLIT_BYTES:
            bounds = [0, completed]  # one chunk: copying costs less than another insert
        chunks = [
            self._output(pending, new, last[start:stop], start)
            for start, stop in zip(bounds, bounds[1:], strict=False)
            if stop > start
        ]
        # The steps after the first M stay; all of them are in the running episode.
        if end_at.size or completed >= length:  # a new episode goes last, as a new agent
            self._pending.pop(agent, None)
        if completed < length:
            self._pending[agent] = {
                key: np.array(_run_rows(pending, p, new, key, completed, length)) for key in new
            }
        return chunks, last - shift

    def _output(
        self,
        pending: Mapping[str, Array] | None,
        new: Mapping[str, Array],
        last: npt.NDArray[np.intp],
        start: int,
    ) -> Transitions:
        """The transitions of steps ``j = start, start + 1, ...`` of the run
        ``pending + new`` whose last steps are ``last`` (``>= j``, in ``j``'s episode)."""
        count = len(last)
        p = 0 if pending is None else len(pending["dones"])
        j = np.arange(start, start + count)
        k = last - j + 1  # K_j, the number of rewards summed, in [1, n]
        full = bool((k == self.n_steps).all())  # then last = j + n - 1, a slice
        offset = start + self.n_steps - 1
        columns: dict[str, Array] = {}
        for key, from_last, dtype in self._plan:
            if not from_last:
                picked = _run_rows(pending, p, new, key, start, start + count)
            elif full:
                picked = _run_rows(pending, p, new, key, offset, offset + count)
            else:
                picked = _run_take(pending, p, new, key, last)
            columns[key] = picked if picked.dtype == dtype else picked.astype(dtype)
        length = p + len(new["dones"])
        rewards = _run_rows(pending, p, new, "rewards", 0, length)  # [P + m, S] float64
        total = np.zeros((count, len(self.signals)))
        if count:
            n = self.n_steps
            steps = np.arange(n)
            rows = np.minimum(j[:, None] + steps, length - 1)  # [count, n]
            summed = steps < k[:, None]  # r[j + k] for k < K_j, zero after
            for i, kernel in enumerate(self._kernels):
                if full:
                    total[:, i] = _n_step_sums(rewards[start : start + count + n - 1, i], kernel)
                else:  # the windows one after the other: every n-th full window is a row
                    flat = np.where(summed, rewards[rows, i], 0.0).ravel()
                    total[:, i] = _n_step_sums(flat, kernel)[::n]
        discounts = (self._gammas[None, :] ** k[:, None]).astype(np.float32)  # gamma_s^K
        total = total.astype(np.float32)
        for i, signal in enumerate(self.signals):
            columns[f"rewards[{signal}]"] = total[:, i]
            columns[f"discounts[{signal}]"] = discounts[:, i]
        return Transitions(**_fields(columns, self._n_obs, self.signals))


def _output_dtype(key: str, dtype: np.dtype) -> np.dtype:
    """The dtype of column ``key`` in the accumulator's output, given its input dtype."""
    return np.dtype(_OUTPUT_DTYPES.get(key.split("[")[0], dtype))


_shape_of = operator.attrgetter("shape")
_dtype_of = operator.attrgetter("dtype")
_new_tuple = tuple.__new__  # a NamedTuple from a tuple without its __new__ (Python code)


def _picker(indices: Sequence[int]) -> Callable[[Sequence[Array]], tuple[Array, ...]]:
    """A function of a sequence returning its items ``indices`` as a tuple."""
    if len(indices) == 1:
        (index,) = indices
        return lambda items: (items[index],)
    if not indices:
        return lambda items: ()
    return operator.itemgetter(*indices)


def _n_step_sums(rewards: Array, kernel: Array) -> Array:
    """``sum_k kernel[k] * rewards[j + k]`` for every ``j`` whose window lies in
    ``rewards``: float64 ``[len(rewards) - len(kernel) + 1]`` (numpy's correlate, "valid").

    Both insert paths of :class:`NStepAccumulator` sum through this, on the same window
    values, so that they agree to the bit (a window's sum depends on its values only)."""
    return _correlate(rewards, kernel, 0)


def _run_rows(
    pending: Mapping[str, Array] | None,
    p: int,
    new: Mapping[str, Array],
    key: str,
    start: int,
    stop: int,
) -> Array:
    """Rows ``[start, stop)`` of column ``key`` of the run ``pending + new`` (``p`` rows
    pending); a view when they lie in one of the two."""
    if start >= p:
        return new[key][start - p : stop - p]
    assert pending is not None
    if stop <= p:
        return pending[key][start:stop]
    return np.concatenate([pending[key][start:], new[key][: stop - p]])


def _run_rows_copy(
    segments: Sequence[tuple[Any, int, int, int, Any]], key: str, first: int, stop: int
) -> Array:
    """A copy of run rows ``[first, stop)`` of column ``key`` over the segments ``(source,
    start, stop, offset, ...)``, each source a batch or a dict of columns."""
    pieces = [
        np.asarray(source[key] if isinstance(source, dict) else _columns(source)[key])[
            start + max(first, offset) - offset : start + min(stop, offset + end - start) - offset
        ]
        for source, start, end, offset, _ in segments
        if max(first, offset) < min(stop, offset + end - start)
    ]
    return pieces[0].copy() if len(pieces) == 1 else np.concatenate(pieces)


def _run_take(
    pending: Mapping[str, Array] | None, p: int, new: Mapping[str, Array], key: str, rows: Array
) -> Array:
    """Rows ``rows`` of column ``key`` of the run ``pending + new`` (``p`` rows pending)."""
    if not len(rows) or rows.min() >= p:
        return new[key][rows - p]
    assert pending is not None
    return np.concatenate([pending[key], new[key]])[rows]


def _like(batch: Transitions, columns: Mapping[str, Any]) -> Transitions:
    """A :class:`Transitions` of ``columns`` (as :func:`_columns` names them) with the
    observations and reward signals of ``batch``."""
    return Transitions(**_fields(columns, len(batch.obs), list(batch.rewards)))


def select_rows(batch: Transitions, rows: slice | npt.NDArray[np.integer]) -> Transitions:
    """Rows ``rows`` (a slice, which gives views, or an integer index array) of every field."""
    return _like(batch, {key: np.asarray(value)[rows] for key, value in _columns(batch).items()})


def concatenate_transitions(batches: Sequence[Transitions]) -> Transitions:
    """The rows of ``batches`` (at least one, all alike) one after the other; a single
    batch is returned as it is."""
    if len(batches) == 1:
        return batches[0]
    columns = [_columns(batch) for batch in batches]
    return _like(
        batches[0],
        {key: np.concatenate([np.asarray(c[key]) for c in columns]) for key in columns[0]},
    )
