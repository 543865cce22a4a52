"""Schedules: a value that moves from ``initial`` to ``final`` over a number of steps.

YAML names follow mlagents (``learning_rate_schedule: linear``): ``constant`` and
``linear``, plus ``exponential`` (geometric interpolation, for exploration rates that
should spend longer near their small final value).
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

from mlagents.trainers.settings import ScheduleType

#: Where ``learning_rate_schedule: linear`` ends at ``max_steps`` (mlagents' own floor: a
#: learning rate of exactly 0 would make the last updates no-ops).
FINAL_LEARNING_RATE = 1.0e-10


class Schedule(enum.Enum):
    """How a scheduled value moves from its initial to its final value."""

    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


def scheduled_value(
    schedule: Schedule | ScheduleType | str,
    initial: float,
    final: float,
    step: int,
    total_steps: int,
) -> float:
    """The value of a schedule at ``step``.

    :param schedule: ``constant``, ``linear`` or ``exponential`` (mlagents' ``ScheduleType``
        is accepted too).
    :param initial: value at step 0.
    :param final: value at ``total_steps`` and after; must be > 0 for ``exponential``.
    :param step: current step (environment steps, as mlagents counts them), >= 0.
    :param total_steps: steps over which the value moves, > 0.
    :return: ``initial`` for ``constant``; otherwise the interpolation at
        ``fraction = min(step / total_steps, 1)``: ``initial + fraction * (final - initial)``
        (linear) or ``initial * (final / initial) ** fraction`` (exponential).
    """
    kind = Schedule(schedule.value if isinstance(schedule, enum.Enum) else schedule)
    if kind is Schedule.CONSTANT:
        return initial
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0 for a {kind.value} schedule, got {total_steps}")
    fraction = min(max(step, 0) / total_steps, 1.0)
    if kind is Schedule.LINEAR:
        return initial + fraction * (final - initial)
    if initial <= 0 or final <= 0:
        raise ValueError(
            f"an exponential schedule needs initial and final > 0, got {initial} and {final}"
        )
    return initial * math.exp(fraction * math.log(final / initial))


class ScheduledValue(NamedTuple):
    """A hyperparameter that follows a schedule over environment steps, e.g. epsilon.

    A function of the step only, so ``--resume`` continues where the run stopped.

    :param schedule: ``constant``, ``linear`` or ``exponential``.
    :param initial: value at step 0.
    :param final: value at ``total_steps`` and after.
    :param total_steps: steps over which the value moves, > 0.
    """

    schedule: Schedule | ScheduleType | str
    initial: float
    final: float
    total_steps: int

    def __call__(self, step: int) -> float:
        """The value at environment step ``step`` (:func:`scheduled_value`)."""
        return scheduled_value(self.schedule, self.initial, self.final, step, self.total_steps)
