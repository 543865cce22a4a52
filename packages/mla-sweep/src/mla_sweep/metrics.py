"""Read a metric from the TensorBoard event files ``mlagents-learn`` writes, while it runs.

mlagents' ``TensorboardWriter`` writes one folder per behavior under the run folder and
flushes after each summary (every ``summary_freq`` steps), so the events are the run's own
record of its statistics: the sweep reads them live for Tune and again for the report.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

#: A summary interval this many times slower per step than the run's median one spans a
#: stop (a sweep resumed later, a machine asleep): it is left out of the rate.
GAP_FACTOR = 5.0

#: File in each trial's run folder describing the trial (written by the trial, read by the report).
TRIAL_FILE = "sweep_trial.json"


@dataclass(frozen=True)
class Point:
    """One summary: environment step, metric value, wall-clock time (seconds since epoch)."""

    step: int
    value: float
    wall_time: float


class MetricReader:
    """The points of one TensorBoard tag of one behavior, read incrementally.

    :param run_dir: ``<results-dir>/<run-id>`` of an ``mlagents-learn`` run.
    :param behavior: behavior name (the subfolder mlagents writes its events to).
    :param tag: the tag, e.g. ``Environment/Cumulative Reward``.
    :param since: ignore summaries written before this wall-clock time (seconds since
        epoch): a trial started over with ``--force`` reads no summary of the attempt
        before it, whose events mlagents deletes only once it has started.
    """

    def __init__(
        self, run_dir: str | os.PathLike[str], behavior: str, tag: str, since: float | None = None
    ) -> None:
        self.folder = Path(run_dir) / behavior
        self.tag = tag
        self.since = since
        self.points: list[Point] = []
        self._accumulator: EventAccumulator | None = None  # made once the events exist

    def poll(self) -> list[Point]:
        """Read what was written since the last call; return the new points."""
        accumulator = self._accumulator
        if accumulator is None:
            if not self.folder.is_dir() or not any(self.folder.glob("events.out.tfevents.*")):
                return []
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

            accumulator = EventAccumulator(str(self.folder), size_guidance={"scalars": 0})
            self._accumulator = accumulator
        accumulator.Reload()
        if self.tag not in accumulator.Tags()["scalars"]:
            return []
        events = accumulator.Scalars(self.tag)
        # A resumed run appends to its events: keep one point per step, the newest.
        by_step = {p.step: p for p in self.points}
        for event in events:
            if self.since is not None and event.wall_time < self.since:
                continue
            by_step[event.step] = Point(int(event.step), float(event.value), float(event.wall_time))
        merged = sorted(by_step.values(), key=lambda p: p.step)
        new = [p for p in merged if p not in self.points]
        self.points = merged
        return new


def windowed(points: Sequence[Point], over_last_steps: int) -> float:
    """The metric at the last point: the mean over the summaries in its last ``over_last_steps``
    steps (``(s - over_last_steps, s]``); the last value alone when ``over_last_steps`` is 0."""
    last = points[-1].step
    window = [p.value for p in points if p.step > last - over_last_steps] or [points[-1].value]
    return sum(window) / len(window)


def steps_per_second(points: Sequence[Point]) -> float | None:
    """Environment steps per wall-clock second between the first and the last summary,
    leaving out the intervals that span a stop (slower per step than ``GAP_FACTOR`` times
    the median interval): the time a resumed run was down is not training time."""
    intervals = [
        (b.step - a.step, b.wall_time - a.wall_time)
        for a, b in zip(points[:-1], points[1:], strict=True)
        if b.step > a.step and b.wall_time > a.wall_time
    ]
    if not intervals:
        return None
    # the lower median: with two intervals, one of them a stop, the other one
    typical = statistics.median_low(seconds / steps for steps, seconds in intervals)
    kept = [(steps, s) for steps, s in intervals if s / steps <= GAP_FACTOR * typical]
    return sum(steps for steps, _ in kept) / sum(seconds for _, seconds in kept)
