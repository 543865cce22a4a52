"""N-step accumulation: :class:`NStepAccumulator` turns interleaved per-agent steps into
n-step transitions (Sutton & Barto 2018, section 7.1; Rainbow, Hessel et al. 2018,
https://arxiv.org/abs/1710.02298), exact at episode ends and truncations.

A transition ``t`` holds everything a TD target needs::

    target = rewards[s] + discounts[s] * (1 - dones) * V_s(next_obs)

with ``rewards[s] = sum_{k<K} gamma_s^k r_{t+k}``, ``discounts[s] = gamma_s^K`` and ``K`` the
number of steps actually summed (``n`` or fewer at an episode end). Which step each field
comes from is declared in :data:`~mla_plugin_core.replay.transitions.FIELDS`.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from mla_plugin_core.replay.transitions import (
    ARRAY_FIELDS,
    FIELDS,
    Transitions,
    column_name,
    concatenate_transitions,
    select_rows,
)
from mla_plugin_core.replay.transitions import batch_size as _batch_size
from mla_plugin_core.replay.transitions import columns as _columns
from mla_plugin_core.replay.transitions import fields as _fields

if TYPE_CHECKING:
    from mla_plugin_core.replay.buffer import ReplayBuffer

# numpy's C functions, without the dispatch of np.concatenate, np.count_nonzero and
# np.correlate (in numpy 1 Python code that costs more than their work on a trajectory)
try:
    _umath: Any = importlib.import_module("numpy._core._multiarray_umath")  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1
    _umath = importlib.import_module("numpy.core._multiarray_umath")
_concatenate = _umath.concatenate
_correlate = _umath.correlate2
_count_nonzero = _umath.count_nonzero

Array = npt.NDArray[Any]

# Columns of an n-step transition taken from its last step (prefixes); the others from its
# first, but the rewards and discounts the accumulator computes.
_FROM_LAST_STEP = tuple(
    f.name if f.kind == "array" else f"{f.name}[" for f in FIELDS if f.step == "last"
)
# The fields the accumulator casts (flags and rewards); the others keep their input dtype.
_OUTPUT_DTYPES: dict[str, Any] = {f.name: f.dtype for f in FIELDS if f.fixed_dtype}
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
# add_to(): _check_batch lists a batch's columns as its per-observation fields (in FIELDS'
# order, each per observation), its array fields, then its rewards per signal.
_PER_OBS_FIELDS = [f for f in FIELDS if f.kind == "per_obs"]


def _attributes(names: Sequence[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function of an object returning its attributes ``names`` as a tuple."""
    if len(names) == 1:
        (name,) = names
        return lambda item: (getattr(item, name),)
    return operator.attrgetter(*names)


_per_obs_of = _attributes([f.name for f in _PER_OBS_FIELDS])
_arrays_of = _attributes(ARRAY_FIELDS)


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
        # set by add(): "obs[0]", ..., "next_obs[0]", ... and where _check_batch's list has
        # the discrete actions, dones, truncated and the first reward
        self._per_obs_keys: list[str] = []
        self._obs_counts: tuple[int, ...] = ()
        self._actions_at = self._dones_at = self._truncated_at = self._rewards_at = 0

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
            self._per_obs_keys = [
                column_name(f, i) for f in _PER_OBS_FIELDS for i in range(self._n_obs)
            ]
            self._obs_counts = (self._n_obs,) * len(_PER_OBS_FIELDS)
            first = len(self._per_obs_keys)  # the array fields follow the observations
            self._actions_at = first + ARRAY_FIELDS.index("discrete_actions")
            self._dones_at = first + ARRAY_FIELDS.index("dones")
            self._truncated_at = first + ARRAY_FIELDS.index("truncated")
            self._rewards_at = first + len(ARRAY_FIELDS)
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
        keys = [*self._per_obs_keys, *ARRAY_FIELDS, *self._reward_keys]
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
        per_obs, rewards = _per_obs_of(batch), batch.rewards
        if tuple(map(len, per_obs)) != self._obs_counts:
            return None
        # the columns as _check_buffer's keys list them
        arrays: list[Any] = [
            *[array for field in per_obs for array in field],
            *_arrays_of(batch),
            *[rewards[signal] for signal in self.signals],
        ]
        if tuple(map(type, arrays)) != self._fast_ndarrays:  # array-likes: as arrays
            arrays = list(map(np.asarray, arrays))
        dones = arrays[self._dones_at]
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
        actions = arrays[self._actions_at]
        if actions.size:  # negative actions wrap around to large unsigned values
            if _count_nonzero(actions.view(self._fast_branches.dtype) >= self._fast_branches):
                return None
        truncated = arrays[self._truncated_at]
        ends: list[int] = []  # most batches have none: two counts, cheaper than a nonzero
        if _count_nonzero(dones) or _count_nonzero(truncated):
            ends = np.logical_or(dones, truncated).nonzero()[0].tolist()
        lists = (
            self._fast_rows[0](arrays),
            self._fast_rows[1](arrays),
            arrays[self._rewards_at :],
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
