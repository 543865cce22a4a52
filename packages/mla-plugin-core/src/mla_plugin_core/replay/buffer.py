"""Replay buffers for off-policy trainers: storage, uniform and prioritized sampling.

- :class:`ReplayBuffer`: preallocated numpy ring storage, batched inserts, uniform sampling.
- :class:`PrioritizedReplayBuffer`: proportional prioritized replay (Schaul et al. 2016,
  https://arxiv.org/abs/1511.05952) on a :class:`~mla_plugin_core.replay.sum_tree.SumTree`.

The transitions stored are those of :mod:`mla_plugin_core.replay.transitions` (their fields are
declared there), made n-step by :mod:`mla_plugin_core.replay.nstep`; the package :mod:`mla_plugin_core.replay`
exports the names of all three.

Memory: next observations are stored explicitly, next to the observations, so each
transition costs twice its observation bytes. Deriving ``next_obs`` from the following slot
would halve that, but breaks when several agents interleave in one ring and at episode
ends; it is not worth it for vector observations. For visual observations it is: one
``(84, 84, 3)`` float32 observation is 84.7 kB, so 100,000 transitions take 16.9 GB. Size
the capacity accordingly. ``np.zeros`` storage is only backed by RAM once written.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mla_plugin_core.replay.sum_tree import MinTree, SumTree
from mla_plugin_core.replay.transitions import (
    PER_OBS_FIELDS,
    PER_SIGNAL_FIELDS,
    ReplaySample,
    Transitions,
    concatenate_transitions,
    layout,
    select_rows,
)
from mla_plugin_core.replay.transitions import batch_size as _batch_size
from mla_plugin_core.replay.transitions import columns as _columns
from mla_plugin_core.replay.transitions import fields as _fields
from mla_plugin_core.util.atomic_file import atomic_write

__all__ = [
    "FORMAT_VERSION",
    "PrioritizedReplayBuffer",
    "ReplayBuffer",
    "ReplaySample",
    "Transitions",
    "concatenate_transitions",
    "select_rows",
]

#: Version of the layout :meth:`ReplayBuffer.save` writes; :meth:`ReplayBuffer.load`
#: refuses any other.
FORMAT_VERSION = 1

Array = npt.NDArray[Any]


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
        self._layout = layout(
            self.obs_shapes, self.continuous_size, self.discrete_branches, self.reward_signals
        )
        self._storage: dict[str, Array] = {
            key: np.zeros((self._capacity, *shape), dtype)
            for key, (shape, dtype) in self._layout.items()
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
        for name in PER_OBS_FIELDS:
            if len(getattr(batch, name)) != n_obs:
                raise ValueError(
                    f"{name}: expected {n_obs} arrays of shapes {self.obs_shapes}, "
                    f"got {len(getattr(batch, name))}"
                )
        for name in PER_SIGNAL_FIELDS:
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
        """Draw ``batch_size`` transitions by this buffer's sampling strategy (:meth:`draw`:
        uniform here, proportional to priority in :class:`PrioritizedReplayBuffer`).

        :return: a :class:`ReplaySample` with every field ``[batch_size, ...]``, the ring
            slots drawn (``indices``) and their importance ``weights``.
        """
        self._check_can_sample(batch_size)
        return self._gather(*self.draw(batch_size))

    def sample_uniform(self, batch_size: int) -> ReplaySample:
        """Draw ``batch_size`` transitions uniformly whatever the strategy (weights all ones):
        for learners that should see the data as it is, such as reward-signal models."""
        self._check_can_sample(batch_size)
        return self._gather(*self._draw_uniform(batch_size))

    def draw(self, batch_size: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The sampling strategy: ``batch_size`` ring slots and their importance weights.
        Uniform with replacement, weights all ones; subclasses override it."""
        return self._draw_uniform(batch_size)

    def _draw_uniform(
        self, batch_size: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        indices = self._rng.integers(0, self._size, size=batch_size, dtype=np.int64)
        return indices, np.ones(batch_size, np.float32)

    def update_priorities(self, indices: npt.ArrayLike, td_errors: npt.ArrayLike) -> None:
        """What the learner found of the transitions it was given (their TD errors), for
        strategies that use it; uniform sampling does not."""

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
    buffer (the smallest ``P(j)``). Only :meth:`draw` differs from :class:`ReplayBuffer`:
    :meth:`sample` has the same signature.

    :param alpha: priority exponent in ``[0, 1]``; ``0`` is uniform. Paper: 0.6.
    :param eps: added to ``|td_error|`` so no transition has zero probability (``> 0``).
    :param beta: importance-sampling exponent in ``[0, 1]`` (``1`` corrects fully), or a
        function without arguments that gives it at each draw: its schedule belongs to the
        caller (the off-policy trainer passes one annealed over environment steps).

    The other parameters (positional or keyword) are those of :class:`ReplayBuffer`.
    """

    kind = "prioritized"

    def __init__(
        self,
        *args: Any,
        alpha: float = 0.6,
        eps: float = 1e-6,
        beta: float | Callable[[], float] = 1.0,
        **kwargs: Any,
    ) -> None:
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
        self.beta = beta

    def current_beta(self) -> float:
        """``beta`` now (called if it is a function), checked to be in ``[0, 1]``."""
        beta = float(self.beta() if callable(self.beta) else self.beta)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: expected in [0, 1], got {beta}")
        return beta

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

    def sample(self, batch_size: int, beta: float | None = None) -> ReplaySample:
        """As :meth:`ReplayBuffer.sample`, drawn by priority (:meth:`draw`).

        :param beta: deprecated (0.1's way): this draw's ``beta`` instead of the buffer's.
        """
        if beta is None:
            return super().sample(batch_size)
        warnings.warn(
            "PrioritizedReplayBuffer.sample(batch_size, beta) is deprecated since "
            "mla-plugin-core 0.2: give the buffer its beta (a number or a function) and call "
            "sample(batch_size)",
            DeprecationWarning,
            stacklevel=2,
        )
        kept, self.beta = self.beta, beta
        try:
            return super().sample(batch_size)
        finally:
            self.beta = kept

    def draw(self, batch_size: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """``batch_size`` slots with probability ``P(i)``, stratified: the priority mass is
        cut into ``batch_size`` equal segments and one transition is drawn from each
        (Schaul et al. 2016, Appendix B.2.1). Weights ``w_i / max_j w_j`` in ``(0, 1]``."""
        beta = self.current_beta()
        total = self._sum_tree.total
        segment = total / batch_size
        # one uniform draw inside each of the batch_size segments of the priority mass
        prefix_sums = (np.arange(batch_size) + self._rng.random(batch_size)) * segment
        indices = self._sum_tree.find_prefix_sum(prefix_sums)
        probs = self._sum_tree[indices] / total  # P(i)
        weights = (self._size * probs) ** -beta  # w_i = (N * P(i))^-beta
        max_weight = (self._size * self._min_tree.min / total) ** -beta  # from min P(j)
        return indices, (weights / max_weight).astype(np.float32)

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
