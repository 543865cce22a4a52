"""How much memory a replay buffer or an update buffer takes, and refusing one that cannot fit.

A ``buffer_size`` that cannot fit would otherwise fail deep inside numpy ("Unable to
allocate 72.8 TiB", a traceback after the environment started) or, for an on-policy
trainer, never fill. It is checked twice, with the same one-line message:

1. **Before the environment starts**, when the YAML is read (observation shapes are not
   known yet): a lower bound, ``buffer_size`` times the bytes of one transition without
   its observations and actions (rewards, discounts, done flags, and the priority trees
   of prioritized replay). If even that exceeds the machine's memory, the buffer cannot
   fit whatever the observations are.
2. **When the replay buffer is created**, once the environment has given the behavior's
   observation and action specs and before anything is allocated: the exact size of
   the preallocated ring (:func:`replay_bytes`).

On-policy trainers (A2C) get check 1 only, with ``buffer_size <= max_steps`` (a larger
update buffer would never fill, so the run would never update): their update buffer is
mlagents' ``AgentBuffer``, which grows as experiences arrive instead of being allocated.

"The machine's memory" is its physical RAM (:func:`total_memory`): numpy's storage is
only backed once written, but a ring larger than RAM fails to allocate or, once filled,
swaps or is killed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from mla_plugin_core.replay.transitions import layout
from mla_plugin_core.settings.errors import HyperparameterError

#: Bytes per leaf of prioritized replay's two trees (sum and min, ``2 * n_leaves`` float64
#: nodes each, ``n_leaves`` >= capacity): at least this much per transition.
PRIORITY_TREE_BYTES = 2 * 2 * 8

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(count: float) -> str:
    """``count`` bytes in binary units with one decimal, e.g. ``72.8 TiB``."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def total_memory() -> int | None:
    """This machine's physical memory in bytes (``os.sysconf``), ``None`` if unknown."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def transition_bytes(
    obs_shapes: Sequence[Sequence[int]],
    continuous_size: int,
    discrete_branches: Sequence[int],
    signals: Sequence[str],
) -> int:
    """Bytes of one stored transition (every column of :func:`~.transitions.layout`)."""
    return sum(
        int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        for shape, dtype in layout(
            [tuple(s) for s in obs_shapes], continuous_size, discrete_branches, signals
        ).values()
    )


def replay_bytes(
    capacity: int,
    obs_shapes: Sequence[Sequence[int]],
    continuous_size: int,
    discrete_branches: Sequence[int],
    signals: Sequence[str],
    prioritized: bool = False,
) -> int:
    """Bytes of a :class:`~.replay.ReplayBuffer` ring of ``capacity`` transitions (plus the
    priority trees of a prioritized one)."""
    per_transition = transition_bytes(obs_shapes, continuous_size, discrete_branches, signals)
    return capacity * per_transition + priority_tree_bytes(capacity, prioritized)


def priority_tree_bytes(capacity: int, prioritized: bool) -> int:
    """Bytes of prioritized replay's sum and min trees over ``capacity`` leaves (0 without)."""
    if not prioritized:
        return 0
    return PRIORITY_TREE_BYTES * (1 << max(0, math.ceil(math.log2(capacity))))


#: Bytes per row a :class:`~.replay.StepReplay` adds to a row's columns: its link (int64),
#: its step in the episode (int64) and whether it is complete (bool).
STEP_LINK_BYTES = 8 + 8 + 1


def step_row_bytes(
    obs_shapes: Sequence[Sequence[int]],
    continuous_size: int,
    discrete_branches: Sequence[int],
    signals: Sequence[str],
    memory_size: int = 0,
) -> int:
    """Bytes of one row of a :class:`~.replay.StepReplay`: a transition's columns but the
    discounts (made at sample time), plus the link, step and flag, plus its recurrent state."""
    discounts = 4 * len(signals)
    row = transition_bytes(obs_shapes, continuous_size, discrete_branches, signals)
    return row - discounts + STEP_LINK_BYTES + 4 * memory_size


def step_replay_bytes(
    capacity: int,
    obs_shapes: Sequence[Sequence[int]],
    continuous_size: int,
    discrete_branches: Sequence[int],
    signals: Sequence[str],
    prioritized: bool = False,
    memory_size: int = 0,
) -> int:
    """Bytes of a :class:`~.replay.StepReplay` of ``capacity`` rows (plus the priority trees
    of a prioritized one)."""
    row = step_row_bytes(obs_shapes, continuous_size, discrete_branches, signals, memory_size)
    return capacity * row + priority_tree_bytes(capacity, prioritized)


def lower_bound_bytes(capacity: int, signals: Sequence[str], prioritized: bool = False) -> int:
    """What ``capacity`` transitions take at least, before their observations and actions
    are known (the check before the environment starts)."""
    return capacity * lower_bound_per_transition(signals, prioritized)


def lower_bound_per_transition(signals: Sequence[str], prioritized: bool = False) -> int:
    """Bytes of one transition without its observations and actions."""
    return transition_bytes([], 0, [], signals) + (PRIORITY_TREE_BYTES if prioritized else 0)


def refuse_lower_bound(
    buffer_size: int, signals: Sequence[str], what: str, prioritized: bool = False
) -> None:
    """The check before the environment starts: :func:`refuse_if_too_big` with
    :func:`lower_bound_bytes`."""
    per = lower_bound_per_transition(signals, prioritized)
    refuse_if_too_big(
        buffer_size * per,
        buffer_size,
        what,
        detail=f"{per} B per transition before its observations and actions",
        at_least=True,
    )


def refuse_if_too_big(
    needed: int,
    buffer_size: int,
    what: str,
    *,
    detail: str = "",
    at_least: bool = False,
    behavior: str | None = None,
    available: int | None = None,
) -> None:
    """Raise :class:`HyperparameterError` for ``buffer_size`` if ``needed`` bytes exceed
    ``available`` (default: :func:`total_memory`; nothing is checked when unknown).

    :param what: what would take the memory, e.g. ``"the replay buffer"``.
    :param detail: how the size was reckoned, e.g. ``"80 B per transition"``.
    :param at_least: ``needed`` is a lower bound (the message says "at least").
    :param behavior: the behavior's name, when not called while the YAML is structured.
    """
    limit = total_memory() if available is None else available
    if limit is None or needed <= limit:
        return
    size = ("at least " if at_least else "") + format_bytes(needed)
    if detail:
        size += f" ({detail})"
    raise HyperparameterError(
        "buffer_size",
        buffer_size,
        f"{what} would take {size}, more than this machine's memory ({format_bytes(limit)})",
        behavior=behavior,
    )
