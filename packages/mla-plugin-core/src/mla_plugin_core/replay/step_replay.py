"""Replay of agents' steps as they were taken, n-step returns computed when sampled.

:class:`StepReplay` keeps a ring of 1-step rows. Each row is one step of one agent:

    obs, actions, action mask, one reward per signal, done, truncated, next_obs, next mask

and the row number of the same agent's next step in the same episode (``-1`` at an episode
end, or while that step has not come). Rows are numbered from 0 in the order they are
written, for ever; row ``r`` lives in ring slot ``r % capacity``. Because the ring drops
its oldest rows first and a successor is always written after its predecessor, a link from
a row still held points to a row still held.

An n-step transition (Sutton & Barto 2018, section 7.1) starting at row ``t`` follows the
links ``K - 1`` times, ``K <= n`` (fewer when an episode ends first)::

    rewards[s]   = sum_{k<K} gamma_s^k r_s[t_k]      t_0 = t, t_{k+1} = next[t_k]
    discounts[s] = gamma_s^K
    next_obs, next mask, dones, truncated          of t_{K-1}

all vectorised over the sample: ``n - 1`` gathers. A row can start a transition (it is
*complete*) once its window is known: an episode end within ``n`` steps, or the step after
its ``n``-th (whose action mask is the ``n``-th step's next mask). Until then it is never
drawn; :meth:`StepReplay.end_episodes` ends every running episode (a forced reset, the end
of a run), which completes the rows still waiting, as truncated.

A cut store leaves nothing half-written to sample or to save: :meth:`StepReplay.add` first
drops the rows it will overwrite from the held window, then writes, and makes the new
rows held in one assignment of :attr:`StepReplay._state` (rows written, rows held, every
agent's running episode); rows complete only after that. A ``KeyboardInterrupt`` at any
point leaves a consistent store: the previous one, possibly with fewer rows.

Sampling is uniform over complete rows here, proportional to priority in
:class:`PrioritizedStepReplay` (Schaul et al. 2016, https://arxiv.org/abs/1511.05952):
only :meth:`StepReplay.draw` differs. The samples are the
:class:`~mla_plugin_core.replay.transitions.ReplaySample` of :mod:`.transitions`, so an
optimizer reads n-step rows as it always did.
"""

from __future__ import annotations

import importlib
import json
import operator
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from mla_plugin_core.replay.sum_tree import MinTree, SumTree
from mla_plugin_core.replay.transitions import ReplaySample, SequenceSample, Transitions
from mla_plugin_core.util.atomic_file import atomic_write

__all__ = ["STEP_FORMAT_VERSION", "PrioritizedStepReplay", "StepReplay"]

_shape_of = operator.attrgetter("shape")
# numpy's C function, without the dispatch of np.count_nonzero (numpy 1: Python code)
try:
    _count_nonzero: Any = importlib.import_module("numpy._core._multiarray_umath").count_nonzero
except ImportError:  # pragma: no cover - numpy 1
    _count_nonzero = importlib.import_module("numpy.core._multiarray_umath").count_nonzero

#: Version of the layout :meth:`StepReplay.save` writes. Version 1 is the file of
#: :class:`~mla_plugin_core.replay.buffer.ReplayBuffer` (finished n-step transitions), which
#: :meth:`StepReplay.load` converts when its rows are 1-step and refuses otherwise.
STEP_FORMAT_VERSION = 2

_NOTHING_COMPLETE = "cannot sample from a replay with no complete transition"

Array = npt.NDArray[Any]
Rows = npt.NDArray[np.int64]
#: Rewards now of some signals for 1-step rows: sample -> signal name -> float ``[M]``.
Rescore = Callable[[ReplaySample], Mapping[str, npt.ArrayLike]]


class _Episode(NamedTuple):
    """One agent's running episode: its last row, its rows whose window is not known yet,
    and its steps so far."""

    last: int
    waiting: tuple[int, ...]
    length: int = 0


class _State(NamedTuple):
    """What is held, replaced as a whole: rows ``[written - size, written)`` and the
    running episodes of the agents (agent -> :class:`_Episode`)."""

    written: int
    size: int
    episodes: Mapping[Hashable, _Episode]


class StepReplay:
    """Uniform replay of 1-step rows with n-step transitions made at sample time.

    :param capacity: rows held (steps, over all agents); the oldest go first.
    :param obs_shapes: the shape of each observation without the batch axis.
    :param continuous_size: number of continuous actions (``0`` for none).
    :param discrete_branches: the size of each discrete action branch (empty for none).
    :param gammas: reward signal name -> discount factor in ``[0, 1]``, in the order of the
        sample's columns.
    :param n_step: rewards summed per sampled transition, ``>= 1``; not part of what is
        stored, so a saved replay resumes with another ``n_step``.
    :param seed: seed of the sampling generator; ``None`` for fresh entropy.
    :param sequence_length: ``L > 0``: what is sampled are sequences of ``L`` steps
        (:meth:`sample_sequences`, R2D2) instead of n-step transitions; a row is then
        complete when it starts a sequence (its step in the episode a multiple of
        ``L - sequence_overlap``) and the ``L`` steps (or the episode's end) are known.
    :param sequence_overlap: steps two consecutive sequences of an episode share,
        ``0 <= overlap < L``.
    :param memory_size: floats of recurrent state stored with each step (``0``: none).
    """

    kind = "uniform"

    def __init__(
        self,
        capacity: int,
        obs_shapes: Sequence[Sequence[int] | int],
        continuous_size: int,
        discrete_branches: Sequence[int],
        gammas: Mapping[str, float],
        n_step: int = 1,
        seed: int | None = None,
        sequence_length: int = 0,
        sequence_overlap: int = 0,
        memory_size: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: expected >= 1, got {capacity}")
        if sequence_length < 0 or memory_size < 0:
            raise ValueError(
                f"sequence_length, memory_size: expected >= 0, got {sequence_length}, {memory_size}"
            )
        if sequence_length and not 0 <= sequence_overlap < sequence_length:
            raise ValueError(
                f"sequence_overlap: expected in [0, sequence_length={sequence_length}), got "
                f"{sequence_overlap}"
            )
        if n_step < 1:
            raise ValueError(f"n_step: expected >= 1, got {n_step}")
        if continuous_size < 0:
            raise ValueError(f"continuous_size: expected >= 0, got {continuous_size}")
        if any(b < 1 for b in discrete_branches):
            raise ValueError(f"discrete_branches: expected sizes >= 1, got {discrete_branches}")
        if not gammas or not all(0.0 <= g <= 1.0 for g in gammas.values()):
            raise ValueError(f"gammas: expected signal -> gamma in [0, 1], got {dict(gammas)}")
        self._capacity = int(capacity)
        self.n_step = int(n_step)
        self.sequence_length = int(sequence_length)
        self.sequence_period = int(sequence_length) - int(sequence_overlap)
        self.memory_size = int(memory_size)
        self.obs_shapes = [tuple(int(d) for d in np.atleast_1d(s)) for s in obs_shapes]
        self.continuous_size = int(continuous_size)
        self.discrete_branches = [int(b) for b in discrete_branches]
        self._branch_sizes = np.array(self.discrete_branches, np.int64)
        self.reward_signals = [str(s) for s in gammas]
        self._gammas = np.array([gammas[s] for s in self.reward_signals], np.float64)  # [S]
        self._rng = np.random.default_rng(seed)
        c, width = self._capacity, int(sum(self.discrete_branches))
        self._obs = [np.zeros((c, *shape), np.float32) for shape in self.obs_shapes]
        self._next_obs = [np.zeros((c, *shape), np.float32) for shape in self.obs_shapes]
        self._continuous = np.zeros((c, self.continuous_size), np.float32)
        self._discrete = np.zeros((c, len(self.discrete_branches)), np.int32)
        self._masks = np.zeros((c, width), bool)
        self._next_masks = np.zeros((c, width), bool)
        self._rewards = np.zeros((c, len(self.reward_signals)), np.float32)  # 1-step, [C, S]
        self._dones = np.zeros(c, bool)
        self._truncated = np.zeros(c, bool)  # never together with done
        self._next = np.full(c, -1, np.int64)  # the successor's ring slot, -1: none (yet)
        self._complete = np.zeros(c, bool)  # the row can start a sampled unit
        # the row's step in its episode (kept up to date for sequence replay, which draws
        # sequences at every (L - overlap)-th step)
        self._episode_step = np.zeros(c, np.int64)
        self._memories = np.zeros((c, self.memory_size), np.float32)  # state before acting
        self._state = _State(0, 0, {})
        # gamma_s^K for K <= n, float32 [n + 1, S]
        powers = np.arange(self.n_step + 1)[:, None]
        self._discount_table = (self._gammas[None, :] ** powers).astype(np.float32)
        self._gamma_powers32 = (self._gammas[None, :] ** powers[:-1]).astype(np.float32)  # k < n
        # add()'s fast path: where each column goes, the types and shapes it takes
        self._signal_set = set(self.reward_signals)
        self._fast_targets: list[Array] = [
            *self._obs,
            *self._next_obs,
            self._continuous,
            self._discrete,
            self._masks,
            self._next_masks,
            *[self._rewards[:, i] for i in range(len(self.reward_signals))],
            self._dones,
            self._truncated,
        ]
        self._fast_types = (np.ndarray,) * len(self._fast_targets)
        self._fast_shapes: dict[int, tuple[tuple[int, ...], ...]] = {}
        self._fast_limits: dict[np.dtype[Any], Array] = {}  # branch sizes, unsigned
        self._ones_cache: dict[int, npt.NDArray[np.float32]] = {}
        self._fast_actions_at = 2 * len(self._obs) + 1
        self._fast_masks_at = self._fast_actions_at + 1
        # completion is a slice of True (uniform transitions), or goes through the hooks
        self._plain_completion = (
            type(self)._make_complete is StepReplay._make_complete
            and type(self)._forget is StepReplay._forget
            and not self.sequence_length
        )

    # -- what is held --------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Rows held at most."""
        return self._capacity

    @property
    def rows_held(self) -> int:
        """Rows held, complete or not."""
        return self._state.size

    def __len__(self) -> int:
        """Transitions that can be sampled: the complete rows."""
        return int(np.count_nonzero(self._complete))

    @property
    def spec(self) -> dict[str, Any]:
        """What a saved replay must match to be loaded (JSON-compatible). Neither ``n_step``
        nor the discounts: rows hold 1-step rewards."""
        return {
            "kind": self.kind,
            "capacity": self._capacity,
            "obs_shapes": [list(s) for s in self.obs_shapes],
            "continuous_size": self.continuous_size,
            "discrete_branches": list(self.discrete_branches),
            "reward_signals": list(self.reward_signals),
            "memory_size": self.memory_size,
        }

    def waiting(self, agent: Hashable) -> int:
        """Rows of ``agent``'s running episode not complete yet (``0`` if none runs)."""
        episode = self._state.episodes.get(agent)
        return 0 if episode is None else len(episode.waiting)

    # -- writing -------------------------------------------------------------------------

    def _columns(
        self, steps: Transitions, memories: npt.ArrayLike | None = None
    ) -> tuple[int, list[tuple[Array, Array]]]:
        """Check ``steps`` (and ``memories``) against the spec: ``(rows, [(target array,
        column), ...])``, the columns as arrays ``[B, ...]``; a ``ValueError`` names the
        field that does not fit."""
        dones = np.asarray(steps.dones)
        if dones.ndim != 1:
            raise ValueError(f"dones: expected shape [B], got {list(dones.shape)}")
        n = len(dones)
        if len(steps.obs) != len(self._obs) or len(steps.next_obs) != len(self._obs):
            raise ValueError(
                f"obs, next_obs: expected {len(self._obs)} arrays each, "
                f"got {len(steps.obs)} and {len(steps.next_obs)}"
            )
        if sorted(steps.rewards) != sorted(self.reward_signals):
            raise ValueError(
                f"rewards: expected reward signals {self.reward_signals}, got {list(steps.rewards)}"
            )
        pairs: list[tuple[str, Array, Any]] = [
            *[
                (f"obs[{i}]", a, v)
                for i, (a, v) in enumerate(zip(self._obs, steps.obs, strict=True))
            ],
            *[
                (f"next_obs[{i}]", a, v)
                for i, (a, v) in enumerate(zip(self._next_obs, steps.next_obs, strict=True))
            ],
            ("continuous_actions", self._continuous, steps.continuous_actions),
            ("discrete_actions", self._discrete, steps.discrete_actions),
            ("action_masks", self._masks, steps.action_masks),
            ("next_action_masks", self._next_masks, steps.next_action_masks),
        ]
        checked = []
        for name, target, value in pairs:
            column = np.asarray(value)
            if column.shape != (n, *target.shape[1:]):
                raise ValueError(
                    f"{name}: expected shape {[n, *target.shape[1:]]} ([B, ...] with B={n} "
                    f"from dones), got {list(column.shape)}"
                )
            checked.append((target, column))
        actions = checked[2 * len(self._obs) + 1][1]
        if actions.size:
            if actions.dtype.kind not in "iu":
                raise TypeError(f"discrete_actions: expected integers, got {actions.dtype}")
            if actions.min() < 0 or (actions >= self._branch_sizes).any():
                raise ValueError(
                    f"discrete_actions: expected branch b in [0, discrete_branches[b]) with "
                    f"discrete_branches={self.discrete_branches}"
                )
        rewards = [np.asarray(steps.rewards[s]) for s in self.reward_signals]
        for signal, column in zip(self.reward_signals, rewards, strict=True):
            if column.shape != (n,):
                raise ValueError(
                    f"rewards[{signal}]: expected shape [{n}], got {list(column.shape)}"
                )
        truncated = np.asarray(steps.truncated)
        if truncated.shape != (n,):
            raise ValueError(f"truncated: expected shape [{n}], got {list(truncated.shape)}")
        done = dones.astype(bool)
        checked += [
            (self._rewards, np.stack(rewards, axis=1) if n else np.zeros((0, len(rewards)))),
            (self._dones, done),
            (self._truncated, truncated.astype(bool) & ~done),  # done wins over truncated
        ]
        if self.memory_size:
            given = None if memories is None else np.asarray(memories, np.float32)
            if given is None or given.shape != (n, self.memory_size):
                got = None if given is None else list(given.shape)
                raise ValueError(f"memories: expected shape {[n, self.memory_size]}, got {got}")
            checked.append((self._memories, given))
        return n, checked

    def add(
        self, agent: Hashable, steps: Transitions, memories: npt.ArrayLike | None = None
    ) -> Rows:
        """Append ``agent``'s next steps, in time order, and return their row numbers.

        :param agent: who took them; its steps link to its previous ones until an episode
            end (``dones`` or ``truncated``).
        :param steps: 1-step rows ``[B, ...]`` (``discounts`` is ignored). The next mask of a
            row whose successor is not in ``steps`` is replaced by the successor's action
            mask when that comes, so a placeholder is fine there; at an episode end it is
            kept.
        :param memories: the recurrent state before each step, float ``[B, memory_size]``
            (required when ``memory_size > 0``).
        """
        rows = self._add_fast(((agent, steps, memories),))
        if rows is not None:
            return rows
        n, columns = self._columns(steps, memories)
        return self._add_columns(agent, n, columns)

    def add_many(self, batch: Sequence[tuple[Hashable, Transitions, npt.ArrayLike | None]]) -> Rows:
        """:meth:`add` of each ``(agent, steps, memories)`` of ``batch`` in turn (an agent
        may come more than once), in one write when it can: the trajectories a trainer
        drains at once. Returns the row numbers of all their rows, in order.

        The same rows, links and completions as one :meth:`add` after the other. Every
        trajectory is checked before anything is written: a bad one is refused (a
        ``ValueError`` naming the field) with nothing stored. A batch the one write does not
        fit (recurrent state, an episode end before a trajectory's last step, the ring
        wrapping) is stored one trajectory after the other.
        """
        fast = self._add_fast(batch)
        if fast is not None:
            return fast
        checked = [self._columns(steps, memories) for _, steps, memories in batch]
        rows = [
            self._add_columns(agent, n, columns)
            for (agent, _, _), (n, columns) in zip(batch, checked, strict=True)
        ]
        return np.concatenate(rows) if rows else np.zeros(0, np.int64)

    def _add_columns(self, agent: Hashable, n: int, columns: list[tuple[Array, Array]]) -> Rows:
        """:meth:`add` of one trajectory of ``n`` rows, checked by :meth:`_columns`: any
        episode ends, a wrap of the ring, recurrent state."""
        state = self._state
        c = self._capacity
        kept = min(n, c)  # of an oversized batch only the last rows could be held
        first = state.written + n - kept  # row number of the first row kept
        episode = state.episodes.get(agent)
        if kept < n:
            episode = None  # the rows it waited for are not held
        overflow = max(0, state.size + kept - c)
        oldest = state.written + n - min(state.size + kept, c)  # held once these rows are in
        slots = (first + np.arange(kept)) % c
        # 1. the slots to be written are never drawn again, and their rows stop being held
        self._forget(slots)
        if overflow:
            self._state = state = state._replace(size=state.size - overflow)
        # 2. write the rows, their links and the predecessor's link
        start, head = first % c, min(kept, c - first % c)
        for target, column in columns:
            rows = column[n - kept :]
            target[start : start + head] = rows[:head]
            if head < kept:
                target[: kept - head] = rows[head:]
        ends = self._dones[slots] | self._truncated[slots]
        self._next[slots] = np.where(ends, -1, (first + np.arange(1, kept + 1)) % c)
        if kept:
            self._next[slots[-1]] = -1
        waiting: tuple[int, ...] = ()
        begun = 0  # steps of the agent's episode before these rows
        if episode is not None and episode.last >= oldest and kept:
            self._next[episode.last % c] = first % c
            self._next_masks[episode.last % c] = self._masks[slots[0]]
            waiting = tuple(r for r in episode.waiting if r >= oldest)
            begun = episode.length
        # each row's step in its episode: counted on from ``begun``, from 0 after an end
        begins = np.zeros(kept, np.int64)  # per row, the row its episode begins at
        begins[1:][ends[:-1]] = np.flatnonzero(ends[:-1]) + 1
        np.maximum.accumulate(begins, out=begins)
        self._episode_step[slots] = np.arange(kept) - begins + np.where(begins == 0, begun, 0)
        # 3. hold them: one assignment
        episodes = dict(state.episodes)
        complete, still = self._completed(waiting, first, kept, ends)
        if kept and not ends[-1]:
            length = int(self._episode_step[slots[-1]]) + 1
            episodes[agent] = _Episode(first + kept - 1, still, length)
        elif kept:
            episodes.pop(agent, None)
        self._state = _State(state.written + n, min(state.size + kept, c), episodes)
        # 4. the rows whose windows are known now can be drawn
        self._make_complete(complete)
        return first + np.arange(kept, dtype=np.int64)

    def _fast_columns(self, steps: Transitions) -> list[Array] | None:
        """``steps``' columns in the order of :attr:`_fast_targets`, when they are arrays of
        the shapes :meth:`add` expects (any other input: ``None``, and the checked path names
        what is wrong). The actions' range is checked by :meth:`_fast_actions_fit`."""
        rewards = steps.rewards
        if rewards.keys() != self._signal_set:
            return None
        arrays: list[Any] = [  # their types and shapes (so their number) are checked below
            *steps.obs,
            *steps.next_obs,
            steps.continuous_actions,
            steps.discrete_actions,
            steps.action_masks,
            steps.next_action_masks,
            *[rewards[signal] for signal in self.reward_signals],
            steps.dones,
            steps.truncated,
        ]
        if tuple(map(type, arrays)) != self._fast_types:
            return None
        dones = arrays[-2]
        if dones.ndim != 1:
            return None
        n = dones.shape[0]
        expected = self._fast_shapes.get(n)
        if expected is None:
            if len(self._fast_shapes) > 1024:  # one entry per batch size seen: bounded
                self._fast_shapes.clear()
            expected = self._fast_shapes[n] = tuple((n, *a.shape[1:]) for a in self._fast_targets)
        if tuple(map(_shape_of, arrays)) != expected:
            return None
        return arrays

    def _fast_actions_fit(self, actions: Array) -> bool:
        """Whether discrete ``actions`` ``[B, branches]`` are integers within their branch."""
        if not actions.size:
            return True
        limits = self._fast_limits.get(actions.dtype)
        if limits is None:
            if actions.dtype.kind not in "iu":
                return False
            limits = self._branch_sizes.astype(f"u{actions.itemsize}")
            self._fast_limits[actions.dtype] = limits
        # one comparison: negative actions wrap around to large unsigned values
        return not _count_nonzero(actions.view(limits.dtype) >= limits)

    def _add_fast(
        self, batch: Sequence[tuple[Hashable, Transitions, npt.ArrayLike | None]]
    ) -> Rows | None:
        """:meth:`add_many` for the common case, in whole slices: well-formed arrays, an
        episode end at a trajectory's last row only (as mlagents cuts trajectories), no wrap
        of the ring, no recurrent state, and no row the batch refers to (a running
        episode's last or waiting rows) overwritten by it. ``None`` when it does not apply
        (then nothing was changed)."""
        if self.memory_size or not batch:
            return None
        checked = []
        total = 0
        for agent, steps, memories in batch:
            arrays = None if memories is not None else self._fast_columns(steps)
            if arrays is None:
                return None
            dones, truncated = arrays[-2], arrays[-1]
            n = dones.shape[0]
            ends = _count_nonzero(dones) + _count_nonzero(truncated)
            if not n or ends and (ends > 1 or not (dones[-1] or truncated[-1])):
                return None  # ends elsewhere than the last row, or done and truncated together
            checked.append((agent, arrays, n, ends))
            total += n
        actions_at = self._fast_actions_at
        actions = [item[1][actions_at] for item in checked]
        if not self._fast_actions_fit(actions[0] if len(actions) == 1 else np.concatenate(actions)):
            return None
        state = self._state
        c, first = self._capacity, state.written
        start = first % c
        stop = start + total
        if stop > c:
            return None
        oldest = first + total - min(state.size + total, c)  # held once the batch is in
        for item in checked:
            episode = state.episodes.get(item[0])
            if episode is not None and (
                episode.last < oldest or (episode.waiting and episode.waiting[0] < oldest)
            ):
                return None  # its rows go during the batch: one add after the other
        # 1. the slots to be written are never drawn again, and their rows stop being held
        self._forget_slice(start, stop)
        overflow = max(0, state.size + total - c)
        if overflow:
            self._state = state = _State(first, state.size - overflow, state.episodes)
        # 2. the rows, their links, the predecessors' links
        self._next[start : stop - 1] = np.arange(start + 1, stop)
        episodes = dict(state.episodes)
        window = self.sequence_length or self.n_step
        known_runs: list[tuple[int, int]] = []  # (slot, rows) known in the batch's rows
        known_before: list[int] = []  # rows written before that are known now
        at = start
        for agent, arrays, n, ended in checked:
            end = at + n
            for target, array in zip(self._fast_targets, arrays, strict=True):
                target[at:end] = array
            self._next[end - 1] = -1  # no successor yet
            row = first + at - start
            episode = episodes.get(agent)
            waiting: tuple[int, ...] = ()
            begun = 0
            if episode is not None:
                self._next[episode.last % c] = at
                self._next_masks[episode.last % c] = arrays[self._fast_masks_at][0]
                waiting, begun = episode.waiting, episode.length
            if self.sequence_length:  # only sequence starts read it
                self._episode_step[at:end] = np.arange(begun, begun + n)
            # the rows with a known window: all at an episode end, else the run's first
            # (its length - the window)
            w = len(waiting)
            if ended:
                known, new_known = w + n, n
                episodes.pop(agent, None)
            else:
                known = max(w + n - window, 0)
                new_known = max(known - w, 0)
                still = waiting[known:] + tuple(range(row + new_known, row + n))
                episodes[agent] = _Episode(row + n - 1, still, begun + n)
            known_before += waiting[:known]
            if new_known:
                known_runs.append((at, new_known))
            at = end
        # 3. hold them: one assignment
        self._state = _State(first + total, min(state.size + total, c), episodes)
        # 4. the rows whose windows are known now can be drawn
        if self._plain_completion:
            for slot, count in known_runs:
                self._complete[slot : slot + count] = True
            if known_before:  # distinct rows: a slice when they are consecutive slots
                low, high = min(known_before), max(known_before)
                if high - low == len(known_before) - 1 and low % c <= high % c:
                    self._complete[low % c : high % c + 1] = True
                else:
                    self._complete[[r % c for r in known_before]] = True
        else:
            rows = [np.array(known_before, np.int64)]
            rows += [
                np.arange(first + slot - start, first + slot - start + k) for slot, k in known_runs
            ]
            self._make_complete(self._starts(np.concatenate(rows)))
        return np.arange(first, first + total, dtype=np.int64)

    def _forget_slice(self, start: int, stop: int) -> None:
        """:meth:`_forget` of slots ``[start, stop)``."""
        if self._plain_completion:
            self._complete[start:stop] = False
        else:
            self._forget(np.arange(start, stop))

    def _completed(
        self, waiting: tuple[int, ...], first: int, count: int, ends: npt.NDArray[np.bool_]
    ) -> tuple[Rows, tuple[int, ...]]:
        """Of the run ``waiting + rows [first, first + count)`` (ends ``ends`` in the new
        rows): the rows complete now and those still waiting (after the last end)."""
        known, still = self._known(waiting, first, count, ends)
        return self._starts(known), still

    def _starts(self, rows: Rows) -> Rows:
        """Of rows whose window is known, those that start a sampled unit: all for
        transitions, every ``L - overlap``-th step of an episode for sequences."""
        if not self.sequence_length or not len(rows):
            return rows
        return rows[self._episode_step[rows % self._capacity] % self.sequence_period == 0]

    def _known(
        self, waiting: tuple[int, ...], first: int, count: int, ends: npt.NDArray[np.bool_]
    ) -> tuple[Rows, tuple[int, ...]]:
        """The rows of the run whose window (``n`` steps, or ``L`` for sequences, and the
        step after) is known now, and those still waiting."""
        n, w = self.sequence_length or self.n_step, len(waiting)
        length = w + count
        if not ends.any():  # the common case: rows with n steps after them are complete
            done = max(length - n, 0)
            run_first = np.arange(first, first + max(done - w, 0), dtype=np.int64)
            complete = np.concatenate([np.array(waiting[:done], np.int64), run_first])
            still = tuple(waiting[done:]) + tuple(range(first + max(done - w, 0), first + count))
            return complete, still
        run = np.concatenate([np.array(waiting, np.int64), np.arange(first, first + count)])
        end_at = w + np.flatnonzero(ends)  # episode ends in the run, ascending
        index = np.arange(length)
        next_end = np.append(end_at, length + n)[np.searchsorted(end_at, index)]
        ready = (next_end - index <= n - 1) | (index + n <= length - 1)
        return run[ready], tuple(run[~ready].tolist())

    def _forget(self, slots: Array) -> None:
        """Slots about to be overwritten: never drawn again."""
        self._complete[slots] = False

    def _make_complete(self, rows: Rows) -> None:
        """Rows whose window is known: they can be drawn from now on."""
        if len(rows):
            self._complete[rows % self._capacity] = True

    def end_episodes(self) -> int:
        """End every agent's running episode at its last row, as truncated (its next
        observation is real, so the bootstrap from it stays): for a forced reset and the end
        of a run. The rows that waited become complete.

        :return: the number of rows that became complete.
        """
        state = self._state
        oldest = state.written - state.size
        rows = []
        for episode in state.episodes.values():
            if episode.last >= oldest:
                slot = episode.last % self._capacity
                self._truncated[slot] = not self._dones[slot]
                self._next[slot] = -1
            rows += [r for r in episode.waiting if r >= oldest]
        self._state = state._replace(episodes={})
        complete = self._starts(np.array(rows, np.int64))
        self._make_complete(complete)
        return len(complete)

    # -- sampling ------------------------------------------------------------------------

    def _draw_uniform(self, batch_size: int) -> tuple[Rows, npt.NDArray[np.float32]]:
        """``batch_size`` complete slots uniformly with replacement, weights all ones."""
        written, size = self._state.written, self._state.size
        slots = self._uniform_rows(written - size, size, batch_size) % self._capacity
        if not self._complete[slots].all():  # rows still waiting for steps: drawn again
            bad = np.flatnonzero(~self._complete[slots])
            rounds = 0
            while bad.size:
                rounds += 1
                if rounds == 8 and not self._complete.any():  # a full scan, rarely
                    raise ValueError(_NOTHING_COMPLETE)
                fresh = self._uniform_rows(written - size, size, bad.size) % self._capacity
                slots[bad] = fresh
                bad = bad[~self._complete[fresh]]
        return slots, self._ones(batch_size)

    def _uniform_rows(self, low: int, count: int, size: int) -> Rows:
        """``size`` integers uniform in ``[low, low + count)`` (scaled uniform floats: the
        same law as ``Generator.integers`` for ``count`` far below 2**53, in a third of
        its time)."""
        return low + (self._rng.random(size) * count).astype(np.int64)

    def _ones(self, size: int) -> npt.NDArray[np.float32]:
        """Importance weights of a uniform draw: a fresh array of ``size`` ones."""
        ones = self._ones_cache.get(size)
        if ones is None:
            ones = self._ones_cache[size] = np.ones(size, np.float32)
            if len(self._ones_cache) > 64:  # bounded: one entry per batch size seen
                self._ones_cache.clear()
        return ones.copy()

    def draw(self, batch_size: int) -> tuple[Rows, npt.NDArray[np.float32]]:
        """The sampling strategy: ``batch_size`` slots of complete rows and their importance
        weights. Uniform here; :class:`PrioritizedStepReplay` overrides it."""
        return self._draw_uniform(batch_size)

    def _check_can_sample(self, batch_size: int) -> None:
        """Cheap checks before a draw (which itself refuses a replay of rows none of which
        is complete: no scan of the ring on every sample)."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        if not self._state.size:
            raise ValueError(_NOTHING_COMPLETE)

    def sample(self, batch_size: int, rescore: Rescore | None = None) -> ReplaySample:
        """``batch_size`` n-step transitions drawn by :meth:`draw`; ``indices`` are the ring
        slots of their first rows (for :meth:`update_priorities`).

        :param rescore: rewards of some signals now, from the 1-step rows of the sampled
            windows (see :meth:`transitions`); default: the rewards stored.
        """
        self._check_can_sample(batch_size)
        return self.transitions(*self.draw(batch_size), rescore=rescore)

    def sample_uniform(self, batch_size: int, rescore: Rescore | None = None) -> ReplaySample:
        """As :meth:`sample`, uniformly whatever the strategy (weights all ones)."""
        self._check_can_sample(batch_size)
        return self.transitions(*self._draw_uniform(batch_size), rescore=rescore)

    def sample_steps(self, batch_size: int) -> ReplaySample:
        """``batch_size`` 1-step rows uniformly over every row held (complete or not), as
        written: for learners of the 1-step dynamics (curiosity, GAIL with actions)."""
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        written, size = self._state.written, self._state.size
        if size == 0:
            raise ValueError("cannot sample from an empty replay")
        slots = (written - size + self._rng.integers(0, size, batch_size)) % self._capacity
        return self.transitions(slots, np.ones(batch_size, np.float32), n_step=1)

    def sample_sequences(self, batch_size: int) -> SequenceSample:
        """``batch_size`` sequences of ``sequence_length`` steps drawn by :meth:`draw`
        (uniform, or by priority with :class:`PrioritizedStepReplay`)."""
        if not self.sequence_length:
            raise ValueError("sample_sequences: this replay has no sequence_length")
        self._check_can_sample(batch_size)
        return self.sequences(*self.draw(batch_size))

    def sequences(self, slots: Rows, weights: npt.NDArray[np.float32]) -> SequenceSample:
        """The sequences starting at ring slots ``slots``, as a :class:`SequenceSample`."""
        window, valid = self.windows(slots, self.sequence_length)
        rewards = self._rewards[window]  # [B, L, S]
        return SequenceSample(
            obs=[o[window] for o in self._obs],
            continuous_actions=self._continuous[window],
            discrete_actions=self._discrete[window],
            action_masks=self._masks[window],
            rewards={s: rewards[..., i] for i, s in enumerate(self.reward_signals)},
            dones=self._dones[window] & valid,
            truncated=self._truncated[window] & valid,
            next_obs=[o[window] for o in self._next_obs],
            next_action_masks=self._next_masks[window],
            valid=valid,
            memories=self._memories[slots],
            indices=np.asarray(slots, np.int64),
            weights=weights,
        )

    def windows(self, slots: Rows, n_step: int | None = None) -> tuple[Rows, npt.NDArray[np.bool_]]:
        """The rows of the n-step windows starting at ``slots``: their slots ``[B, n]`` and
        which are in the window ``[B, n]`` (the first ``K`` of each row; past them the
        last row's slot repeats)."""
        n = self.n_step if n_step is None else n_step
        window = np.empty((len(slots), n), np.int64)
        inside = np.zeros((len(slots), n), bool)
        window[:, 0], inside[:, 0] = slots, True
        last = slots
        alive = ~(self._dones[slots] | self._truncated[slots])
        for step in range(1, n):
            successor = self._next[last]
            alive = alive & (successor >= 0)
            last = np.where(alive, successor, last)
            window[:, step], inside[:, step] = last, alive
            alive = alive & ~(self._dones[last] | self._truncated[last])
        return window, inside

    def _n_step_returns(
        self, slots: Rows, n_step: int | None
    ) -> tuple[Rows, npt.NDArray[np.int64], npt.NDArray[np.floating[Any]]]:
        """Following the links from ``slots``: the last row of each window, ``K`` and the
        returns ``sum_{k<K} gamma^k r[t_k]`` ``[B, S]`` of the stored rewards."""
        n = self.n_step if n_step is None else n_step
        next_slot, rewards = self._next, self._rewards
        last = slots
        returns = rewards[slots]  # [B, S], float32 (a new array)
        steps_after = None  # K - 1
        # Inside a complete row's window a step has a link exactly when it ends no episode
        # (its n steps are known, or an end comes first), so the links say where to stop.
        successor = next_slot[slots]
        alive = successor >= 0
        powers = self._gamma_powers32 if n <= len(self._gamma_powers32) else None
        for step in range(1, n):
            last = np.where(alive, successor, last)
            gamma_k = powers[step] if powers is not None else self._gammas**step
            returns += rewards[last] * (gamma_k * alive[:, None])
            steps_after = alive.astype(np.int64) if steps_after is None else steps_after + alive
            successor = next_slot[last]
            alive &= successor >= 0
        k = 1 + steps_after if steps_after is not None else np.ones(len(slots), np.int64)
        return last, k, returns

    def transitions(
        self,
        slots: Rows,
        weights: npt.NDArray[np.float32],
        n_step: int | None = None,
        rescore: Rescore | None = None,
    ) -> ReplaySample:
        """The n-step transitions starting at ring slots ``slots`` (complete rows, or any
        row with ``n_step=1``), as a :class:`ReplaySample` with ``weights``::

            rewards[s] = sum_{k<K} gamma_s^k r_s[window[k]],  discounts[s] = gamma_s^K

        :param rescore: given the 1-step rows of every window (a :class:`ReplaySample`,
            ``n_step=1``), signal name -> their rewards now, float ``[M]``; those replace the
            stored rewards of these signals in the sums (learning reward signals).
        """
        if rescore is None:
            last, k, returns = self._n_step_returns(slots, n_step)
        else:
            window, inside = self.windows(slots, n_step)
            k = inside.sum(axis=1)  # K
            last = window[np.arange(len(slots)), k - 1]
            rewards = self._rewards[window].astype(np.float64)  # [B, n, S]
            unique, position = np.unique(window[inside], return_inverse=True)
            steps = self.transitions(unique, np.ones(len(unique), np.float32), n_step=1)
            for signal, values in rescore(steps).items():
                i = self.reward_signals.index(signal)
                rewards[..., i][inside] = np.asarray(values, np.float64)[position]
            rewards[~inside] = 0.0
            returns = rewards[:, 0]
            for step in range(1, rewards.shape[1]):
                returns = returns + self._gammas**step * rewards[:, step]
        if (self.n_step if n_step is None else n_step) < len(self._discount_table):
            discounts = self._discount_table[k]  # gamma_s^K, K <= n, [B, S]
        else:
            discounts = (self._gammas[None, :] ** k[:, None]).astype(np.float32)
        returns32 = np.asarray(returns, np.float32)
        return ReplaySample(
            obs=[o[slots] for o in self._obs],
            continuous_actions=self._continuous[slots],
            discrete_actions=self._discrete[slots],
            action_masks=self._masks[slots],
            rewards={s: returns32[:, i] for i, s in enumerate(self.reward_signals)},
            dones=self._dones[last],
            truncated=self._truncated[last],
            next_obs=[o[last] for o in self._next_obs],
            next_action_masks=self._next_masks[last],
            discounts={s: discounts[:, i] for i, s in enumerate(self.reward_signals)},
            indices=np.asarray(slots, np.int64),
            weights=weights,
        )

    def all_transitions(self) -> ReplaySample:
        """The n-step transition of every complete row, oldest first (weights all ones)."""
        slots = self.complete_slots()
        return self.transitions(slots, np.ones(len(slots), np.float32))

    def complete_slots(self) -> Rows:
        """Ring slots of every complete row, oldest first."""
        written, size = self._state.written, self._state.size
        slots = np.arange(written - size, written, dtype=np.int64) % self._capacity
        return slots[self._complete[slots]]

    def update_priorities(self, indices: npt.ArrayLike, td_errors: npt.ArrayLike) -> None:
        """What the learner found of the transitions it was given (their TD errors), for
        strategies that use it; uniform sampling does not."""

    # -- saving and loading --------------------------------------------------------------

    def _arrays(self) -> dict[str, Array]:
        """Every stored array by its name in the file."""
        arrays = {
            "continuous_actions": self._continuous,
            "discrete_actions": self._discrete,
            "action_masks": self._masks,
            "next_action_masks": self._next_masks,
            "rewards": self._rewards,
            "dones": self._dones,
            "truncated": self._truncated,
            "next": self._next,
            "complete": self._complete,
            "episode_step": self._episode_step,
            "memories": self._memories,
        }
        for i, (obs, next_obs) in enumerate(zip(self._obs, self._next_obs, strict=True)):
            arrays[f"obs[{i}]"], arrays[f"next_obs[{i}]"] = obs, next_obs
        return arrays

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """Metadata and arrays beyond the rows; subclasses extend."""
        return {}, {}

    def _restore_extra(self, meta: Mapping[str, Any], data: Mapping[str, Array]) -> None:
        """Inverse of :meth:`_extra_state`, after the rows are in place."""

    def save(self, path: str | os.PathLike, info: Mapping[str, Any] | None = None) -> None:
        """Write the held rows to ``path`` (an uncompressed ``.npz``) atomically: a crash
        mid-save leaves any previous file as it was.

        The file holds :data:`STEP_FORMAT_VERSION`, :attr:`spec`, the rows held oldest
        first with their links, the running episodes (agents as strings), the sampling
        generator's state and ``info`` (JSON; :meth:`load` returns it).
        """
        state = self._state
        slots = np.arange(state.written - state.size, state.written, dtype=np.int64)
        slots %= self._capacity
        extra_meta, extra_arrays = self._extra_state()
        meta = {
            "format_version": STEP_FORMAT_VERSION,
            "spec": self.spec,
            "written": state.written,
            "size": state.size,
            "episodes": [
                [str(a), e.last, list(e.waiting), e.length] for a, e in state.episodes.items()
            ],
            "rng_state": self._rng.bit_generator.state,
            "info": dict(info or {}),
            **extra_meta,
        }
        arrays = {key: array[slots] for key, array in self._arrays().items()}
        # links as row numbers (slots are this ring's); one to a slot not held is none
        links = arrays["next"]
        oldest = state.written - state.size
        rows = oldest + (links - oldest) % self._capacity
        arrays["next"] = np.where((links >= 0) & (rows < state.written), rows, -1)
        arrays.update(extra_arrays)
        arrays["meta"] = np.array(json.dumps(meta))
        with atomic_write(path) as file:
            np.savez(file, **arrays)

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Replace what is held with the file at ``path``; sampling then goes on as it
        would have from the saved replay. A file of format 1 (0.1's
        :class:`~mla_plugin_core.replay.buffer.ReplayBuffer`) is converted when its rows are
        1-step transitions: each becomes a one-step episode, ended as truncated unless done.

        :return: the ``info`` given to :meth:`save`.
        :raises ValueError: one line naming what does not fit (format, a field of
            :attr:`spec`, n-step rows of format 1); nothing of this replay is changed then.
        """
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            version = meta.get("format_version")
            if version == 1:
                return self._load_format_1(path, meta, data)
            if version != STEP_FORMAT_VERSION:
                raise ValueError(
                    f"{path}: format_version {version} is not one this replay reads "
                    f"(1 or {STEP_FORMAT_VERSION})"
                )
            self._check_spec(path, meta["spec"])
            size, written = int(meta["size"]), int(meta["written"])
            rows = {key: data[key] for key in self._arrays()}
            extra = {key: data[key] for key in data.files if key not in rows}
        self._place(rows, written, size)
        self._state = _State(
            written,
            size,
            {
                agent: _Episode(int(last), tuple(waiting), int(length))
                for agent, last, waiting, length in meta["episodes"]
            },
        )
        self._rng.bit_generator.state = meta["rng_state"]
        self._restore_extra(meta, extra)
        return dict(meta.get("info", {}))

    def _check_spec(self, path: str | os.PathLike, saved: Mapping[str, Any]) -> None:
        saved = {"memory_size": 0, **saved}  # format 1 stored no recurrent state
        for field, ours in self.spec.items():
            if field == "kind" and saved.get(field) in ("uniform", "prioritized"):
                continue  # either strategy reads the rows of the other
            if field == "alpha" and saved.get("kind") != "prioritized":
                continue  # rows of a uniform replay start with equal priorities
            if saved.get(field) != ours:
                raise ValueError(
                    f"{path}: saved replay has {field}={saved.get(field)!r}, this replay has "
                    f"{field}={ours!r}"
                )

    def _place(self, rows: Mapping[str, Array], written: int, size: int) -> None:
        """Put ``rows`` (oldest first, ``size`` of them) in the slots of row numbers
        ``[written - size, written)``; every other slot empty."""
        slots = np.arange(written - size, written, dtype=np.int64) % self._capacity
        # links: row numbers in the file, ring slots here; one to a row not held is none
        links = np.asarray(rows["next"], np.int64)
        held = (links >= written - size) & (links < written)
        rows = {**rows, "next": np.where(held, links % self._capacity, -1)}
        arrays = self._arrays()
        self._complete[:] = False
        self._next[:] = -1
        for key, array in arrays.items():
            array[slots] = rows[key]

    def _load_format_1(
        self, path: str | os.PathLike, meta: Mapping[str, Any], data: Mapping[str, Array]
    ) -> dict[str, Any]:
        """Rows of a 0.1 :class:`ReplayBuffer` file, when they are 1-step transitions."""
        spec = {**meta["spec"], "kind": meta["spec"].get("kind")}
        self._check_spec(path, spec)
        size = int(meta["size"])
        for i, signal in enumerate(self.reward_signals):
            discounts = data[f"discounts[{signal}]"]
            if not np.all(discounts == np.float32(self._gammas[i])):
                raise ValueError(
                    f"{path}: a replay file of mla-plugin-core 0.1 (format 1) with n-step "
                    f"rows (discounts of {signal} other than gamma={self._gammas[i]:g}) cannot "
                    "be split into steps; resume with the 0.1 release, move the file away, "
                    "or set save_replay_buffer: false to start with an empty buffer"
                )
        # 0.1 kept the ring as it lay: slot order from the oldest (its position when full)
        position = int(meta["position"]) if size == self._capacity else 0
        order = (position + np.arange(size)) % max(size, 1)
        dones = data["dones"][order].astype(bool)
        rows = {
            "continuous_actions": data["continuous_actions"][order],
            "discrete_actions": data["discrete_actions"][order],
            "action_masks": data["action_masks"][order],
            "next_action_masks": data["next_action_masks"][order],
            "rewards": np.stack([data[f"rewards[{s}]"][order] for s in self.reward_signals], 1),
            "dones": dones,
            "truncated": ~dones,  # each row its own episode, the bootstrap from next_obs kept
            "next": np.full(size, -1, np.int64),
            "complete": np.ones(size, bool),
            "episode_step": np.zeros(size, np.int64),
            "memories": np.zeros((size, self.memory_size), np.float32),
        }
        for i in range(len(self._obs)):
            rows[f"obs[{i}]"] = data[f"obs[{i}]"][order]
            rows[f"next_obs[{i}]"] = data[f"next_obs[{i}]"][order]
        self._place(rows, size, size)
        self._state = _State(size, size, {})
        self._restore_extra({}, {})
        return dict(meta.get("info", {}))


class PrioritizedStepReplay(StepReplay):
    """Proportional prioritized replay over the complete rows.

    Row ``i`` is drawn with ``P(i) = p_i^alpha / sum_k p_k^alpha``, ``p_i = |delta_i| + eps``,
    where ``delta_i`` is the TD error of the n-step transition starting at ``i``; a row gets
    the largest priority seen so far when it becomes complete (rows not complete have
    none). Samples are weighted by ``w_i = (N * P(i))^-beta / max_j w_j``.

    :param alpha: priority exponent in ``[0, 1]``. Paper: 0.6.
    :param eps: added to ``|td_error|`` (``> 0``).
    :param beta: importance-sampling exponent in ``[0, 1]``, or a function without
        arguments giving it at each draw.

    The other parameters are those of :class:`StepReplay`.
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
        self.alpha, self.eps, self.beta = float(alpha), float(eps), beta
        self._sum_tree = SumTree(self._capacity)  # p_i^alpha, 0 for rows not complete
        self._min_tree = MinTree(self._capacity)  # the same, inf for rows not complete
        self._max_priority = 1.0

    @property
    def spec(self) -> dict[str, Any]:
        return {**super().spec, "alpha": self.alpha}

    def current_beta(self) -> float:
        """``beta`` now (called if it is a function), checked to be in ``[0, 1]``."""
        beta = float(self.beta() if callable(self.beta) else self.beta)
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta: expected in [0, 1], got {beta}")
        return beta

    def priorities(self, indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The stored ``p_i^alpha`` of ring slots ``indices``."""
        return self._sum_tree[indices]

    def _forget(self, slots: Array) -> None:
        super()._forget(slots)
        self._sum_tree.update(slots, np.zeros(len(slots)))
        self._min_tree.update(slots, np.full(len(slots), np.inf))

    def _make_complete(self, rows: Rows) -> None:
        super()._make_complete(rows)
        if len(rows):
            self._set_priorities(rows % self._capacity, np.full(len(rows), self._max_priority))

    def _set_priorities(self, slots: Array, priorities: npt.NDArray[np.float64]) -> None:
        scaled = priorities**self.alpha
        self._sum_tree.update(slots, scaled)
        self._min_tree.update(slots, scaled)

    def update_priorities(self, indices: npt.ArrayLike, td_errors: npt.ArrayLike) -> None:
        """Set ``p_i = |td_error_i| + eps`` for the sampled slots still complete (a slot
        overwritten since it was sampled keeps what its new row has)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        td_errors = np.asarray(td_errors, dtype=np.float64).reshape(-1)
        if indices.shape != td_errors.shape:
            raise ValueError(
                f"td_errors: expected shape {list(indices.shape)} like indices, "
                f"got {list(td_errors.shape)}"
            )
        if indices.size and (indices.min() < 0 or indices.max() >= self._capacity):
            raise IndexError(f"indices: expected ring slots in [0, {self._capacity})")
        if not np.isfinite(td_errors).all():
            raise ValueError("td_errors: expected finite values, got NaN or inf")
        priorities = np.abs(td_errors) + self.eps
        keep = self._complete[indices]
        self._set_priorities(indices[keep], priorities[keep])
        if priorities.size:
            self._max_priority = max(self._max_priority, float(priorities.max()))

    def draw(self, batch_size: int) -> tuple[Rows, npt.NDArray[np.float32]]:
        """Stratified proportional draw (Schaul et al. 2016, Appendix B.2.1): one slot from
        each of ``batch_size`` equal segments of the priority mass."""
        beta = self.current_beta()
        total = self._sum_tree.total
        if total <= 0.0:
            raise ValueError(_NOTHING_COMPLETE)
        segment = total / batch_size
        prefix_sums = (np.arange(batch_size) + self._rng.random(batch_size)) * segment
        slots = self._sum_tree.find_prefix_sum(prefix_sums)
        count = len(self)
        probs = self._sum_tree[slots] / total
        weights = (count * probs) ** -beta
        max_weight = (count * self._min_tree.min / total) ** -beta
        return slots, (weights / max_weight).astype(np.float32)

    def _extra_state(self) -> tuple[dict[str, Any], dict[str, Array]]:
        state = self._state
        slots = np.arange(state.written - state.size, state.written, dtype=np.int64)
        return {"max_priority": self._max_priority}, {
            "priorities": self._sum_tree[slots % self._capacity]
        }

    def _restore_extra(self, meta: Mapping[str, Any], data: Mapping[str, Array]) -> None:
        self._sum_tree = SumTree(self._capacity)
        self._min_tree = MinTree(self._capacity)
        slots = self.complete_slots()
        state = self._state
        held = np.arange(state.written - state.size, state.written, dtype=np.int64)
        if "priorities" in data:  # saved by a prioritized replay: its priorities
            scaled = np.zeros(self._capacity)
            scaled[held % self._capacity] = data["priorities"]
            scaled = scaled[slots]
        else:  # rows of a uniform replay: all equal
            scaled = np.full(len(slots), 1.0)
        self._sum_tree.update(slots, scaled)
        self._min_tree.update(slots, scaled)
        self._max_priority = float(meta.get("max_priority", 1.0))
