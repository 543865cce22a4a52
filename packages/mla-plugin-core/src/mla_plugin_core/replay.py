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

import json
import os
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from mla_plugin_core.atomic_file import atomic_write
from mla_plugin_core.sum_tree import MinTree, SumTree

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
    """Inverse of :func:`_columns`: the keyword arguments of a Transitions/ReplaySample."""
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
        discounts={k: columns[f"discounts[{k}]"] for k in signals},
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
            if columns[key].shape != (n, *shape):
                raise ValueError(
                    f"{key}: expected shape {[n, *shape]} ([B, ...] with B={n} from "
                    f"dones), got {list(columns[key].shape)}"
                )
        actions = columns["discrete_actions"]
        if actions.size:
            if not np.issubdtype(actions.dtype, np.integer):
                raise TypeError(f"discrete_actions: expected integers, got {actions.dtype}")
            if actions.min() < 0 or (actions >= self.discrete_branches).any():
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
        n = _batch_size(batch)
        kept = min(n, self._capacity)
        # Rows dropped from the front of an oversized batch would be overwritten anyway.
        start = (self._position + n - kept) % self._capacity
        # The ring slots [start, start + kept) as at most two slices: to the end, then from 0.
        head = min(kept, self._capacity - start)
        for key, array in self._storage.items():
            rows = columns[key][n - kept :]
            array[start : start + head] = rows[:head]
            array[: kept - head] = rows[head:]
        self._position = (self._position + n) % self._capacity
        self._size = min(self._size + n, self._capacity)
        return (start + np.arange(kept)) % self._capacity

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
    buffer (the smallest ``P(j)``), with ``beta`` annealed linearly to ``1``.

    :param alpha: priority exponent in ``[0, 1]``; ``0`` is uniform. Paper: 0.6.
    :param beta: initial importance-sampling exponent in ``[0, 1]``. Paper: 0.4.
    :param beta_annealing_steps: number of :meth:`sample` calls over which ``beta`` grows
        linearly to ``1.0`` (``>= 1``).
    :param eps: added to ``|td_error|`` so no transition has zero probability (``> 0``).

    The other parameters are those of :class:`ReplayBuffer`.
    """

    kind = "prioritized"

    def __init__(
        self,
        capacity: int,
        obs_shapes: Sequence[Sequence[int] | int],
        continuous_size: int = 0,
        discrete_branches: Sequence[int] = (),
        reward_signals: Sequence[str] = ("extrinsic",),
        seed: int | None = None,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_annealing_steps: int = 100_000,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(
            capacity, obs_shapes, continuous_size, discrete_branches, reward_signals, seed
        )
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha: expected in [0, 1], got {alpha}")
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: expected in [0, 1], got {beta}")
        if beta_annealing_steps < 1:
            raise ValueError(f"beta_annealing_steps: expected >= 1, got {beta_annealing_steps}")
        if eps <= 0.0:
            raise ValueError(f"eps: expected > 0, got {eps}")
        self.alpha = float(alpha)
        self.beta_start = float(beta)
        self.beta_annealing_steps = int(beta_annealing_steps)
        self.eps = float(eps)
        self._sum_tree = SumTree(self._capacity)  # leaves hold p_i^alpha
        self._min_tree = MinTree(self._capacity)
        self._max_priority = 1.0  # largest p_i so far, given to new transitions
        self._sample_steps = 0  # sample() calls so far, drives the beta schedule

    @property
    def spec(self) -> dict[str, Any]:
        """As :attr:`ReplayBuffer.spec`, plus ``alpha`` (the stored priorities depend on it)."""
        return {**super().spec, "alpha": self.alpha}

    @property
    def beta(self) -> float:
        """The ``beta`` the next :meth:`sample` uses: linear from ``beta_start`` to ``1``."""
        progress = min(1.0, self._sample_steps / self.beta_annealing_steps)
        return self.beta_start + progress * (1.0 - self.beta_start)

    def priorities(self, indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The stored ``p_i^alpha`` of ring slots ``indices`` (int ``[B]``), float64 ``[B]``."""
        return self._sum_tree[indices]

    def add(self, batch: Transitions) -> npt.NDArray[np.int64]:
        """As :meth:`ReplayBuffer.add`; the new transitions get the maximum priority."""
        indices = super().add(batch)
        self._set_priorities(indices, np.full(len(indices), self._max_priority))
        return indices

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
        """Draw ``batch_size`` transitions with probability ``P(i)``, stratified.

        The priority mass is cut into ``batch_size`` equal segments and one transition is
        drawn from each (Schaul et al. 2016, Appendix B.2.1).

        :param beta: importance-sampling exponent; ``None`` uses :attr:`beta` and advances
            its schedule by one step.
        :return: a :class:`ReplaySample` with ``weights`` ``w_i / max_j w_j`` in ``(0, 1]``.
        """
        self._check_can_sample(batch_size)
        if beta is None:
            beta = self.beta
            self._sample_steps += 1
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
        meta = {"max_priority": self._max_priority, "sample_steps": self._sample_steps}
        return meta, {"priorities": self._sum_tree.leaves[: self._size]}

    def _restore_extra(self, meta: Mapping[str, Any], data: Mapping[str, Array]) -> None:
        self._sum_tree = SumTree(self._capacity)
        self._min_tree = MinTree(self._capacity)
        scaled = data["priorities"]
        self._sum_tree.update(np.arange(len(scaled)), scaled)
        self._min_tree.update(np.arange(len(scaled)), scaled)
        self._max_priority = float(meta["max_priority"])
        self._sample_steps = int(meta["sample_steps"])


# Columns of an n-step transition taken from its last step; the others from its first.
_FROM_LAST_STEP = ("next_obs[", "next_action_masks", "dones", "truncated")
_OUTPUT_DTYPES: dict[str, Any] = {"rewards": np.float32, "dones": bool, "truncated": bool}


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
        self._gammas = np.array([gammas[s] for s in self.signals], np.float64)  # [S]
        # gamma_s^k for k < n, [n, S]
        self._gamma_powers = self._gammas[None, :] ** np.arange(self.n_steps)[:, None]
        self._pending: dict[Hashable, deque[dict[str, Any]]] = {}
        self._empty: dict[str, Array] | None = None  # zero-row columns, for empty outputs

    def __len__(self) -> int:
        """Number of steps waiting for more rewards, over all agents."""
        return sum(len(queue) for queue in self._pending.values())

    def add(self, agent_ids: Sequence[Hashable], steps: Transitions) -> Transitions:
        """Take a batch of ``B`` steps of any agents, in time order per agent.

        :param agent_ids: the agent of each row, ``[B]``.
        :param steps: 1-step transitions, fields ``[B, ...]``, ``discounts=None``.
        :return: the n-step transitions completed by these steps (possibly ``0`` rows),
            ready for :meth:`ReplayBuffer.add`.
        """
        if steps.discounts is not None:
            raise ValueError("discounts: expected None, the accumulator computes them")
        if sorted(steps.rewards) != sorted(self.signals):
            raise ValueError(
                f"rewards: expected reward signals {self.signals}, got {list(steps.rewards)}"
            )
        n = _batch_size(steps)
        if len(agent_ids) != n:
            raise ValueError(f"agent_ids: expected {n} ids (B from dones), got {len(agent_ids)}")
        columns = {key: np.asarray(value) for key, value in _columns(steps).items()}
        for key, column in columns.items():
            if column.shape[:1] != (n,):
                raise ValueError(f"{key}: expected shape [B={n}, ...], got {list(column.shape)}")
        self._empty = {key: column[:0] for key, column in columns.items()}
        dones = columns["dones"].astype(bool)
        episode_ends = dones | columns["truncated"].astype(bool)

        emitted: list[dict[str, Any]] = []
        for row, agent in enumerate(agent_ids):
            queue = self._pending.setdefault(agent, deque())
            step = {key: column[row].copy() for key, column in columns.items()}
            step["dones"] = bool(dones[row])  # done wins over truncated
            step["truncated"] = bool(episode_ends[row] and not dones[row])
            queue.append(step)
            if episode_ends[row]:
                while queue:
                    emitted.append(self._emit(queue))
                    queue.popleft()
                del self._pending[agent]
            elif len(queue) == self.n_steps:
                emitted.append(self._emit(queue))
                queue.popleft()
                if not queue:  # n = 1
                    del self._pending[agent]
        return self._stack(emitted)

    def flush(self) -> Transitions:
        """Emit every pending step as if its agent's episode were truncated now.

        For the end of training; the bootstrap from the last known ``next_obs`` stays.

        :raises ValueError: if :meth:`add` was never called (no shapes to build a batch).
        """
        emitted: list[dict[str, Any]] = []
        for queue in self._pending.values():
            queue[-1]["truncated"] = True  # a pending step is never done: those are emitted
            while queue:
                emitted.append(self._emit(queue))
                queue.popleft()
        self._pending.clear()
        return self._stack(emitted)

    def _emit(self, queue: deque[dict[str, Any]]) -> dict[str, Any]:
        """The transition of ``queue[0]`` over the ``K = len(queue)`` steps queued."""
        first, last, k = queue[0], queue[-1], len(queue)
        transition = {
            key: (last if key.startswith(_FROM_LAST_STEP) else first)[key]
            for key in first
            if not key.startswith("rewards[")
        }
        rewards = np.array([[step[f"rewards[{s}]"] for s in self.signals] for step in queue])
        n_step_rewards = (self._gamma_powers[:k] * rewards).sum(axis=0)  # [S]
        discounts = self._gammas**k  # gamma_s^K, [S]
        for i, s in enumerate(self.signals):
            transition[f"rewards[{s}]"] = n_step_rewards[i]
            transition[f"discounts[{s}]"] = discounts[i]
        return transition

    def _stack(self, emitted: list[dict[str, Any]]) -> Transitions:
        """Stack emitted transitions into one batch (rewards/discounts float32, flags bool)."""
        if self._empty is None:
            raise ValueError("nothing was added yet")
        columns: dict[str, Any] = {}
        for key, empty in self._empty.items():
            dtype = _OUTPUT_DTYPES.get(key.split("[")[0], empty.dtype)
            stacked = np.stack([t[key] for t in emitted]) if emitted else empty
            columns[key] = stacked.astype(dtype, copy=False)
        for s in self.signals:
            columns[f"discounts[{s}]"] = np.array(
                [t[f"discounts[{s}]"] for t in emitted], np.float32
            )
        n_obs = sum(key.startswith("obs[") for key in columns)
        return Transitions(**_fields(columns, n_obs, self.signals))
