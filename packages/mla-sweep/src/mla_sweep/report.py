"""Summarise sweeps from their trials' own results folders: markdown, CSV, PNG curves.

Every trial folder holds ``sweep_trial.json`` (its configuration and seed) beside the
TensorBoard events ``mlagents-learn`` wrote; nothing else is needed, so a report can be made
from a copied folder, after a crash, or while the sweep still runs.
"""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mla_sweep.metrics import TRIAL_FILE, MetricReader, Point, steps_per_second, windowed

CSV_FIELDS = [
    "sweep", "configuration", "metric", "seeds", "final_mean", "final_std", "final_min",
    "threshold", "steps_to_threshold", "reached_threshold", "held_threshold",
    "lowest_after_threshold", "steps_per_second", "final_steps", "stopped_early", "failed",
]  # fmt: skip


def _beyond(value: float, threshold: float, mode: str) -> bool:
    """Whether ``value`` is at ``threshold`` or better for ``mode`` (``max``: ``>=``)."""
    return value >= threshold if mode == "max" else value <= threshold


def _worst(values: Sequence[float], mode: str) -> float:
    """The worst of ``values`` for ``mode`` (``max``: the smallest)."""
    return min(values) if mode == "max" else max(values)


@dataclass
class TrialRecord:
    """One trial: its description (``sweep_trial.json``) and metric curve."""

    info: dict[str, Any]
    points: list[Point]

    @property
    def final(self) -> float:
        return windowed(self.points, int(self.info.get("over_last_steps") or 0))

    @property
    def mode(self) -> str:
        return str(self.info.get("mode", "max"))

    def first_step_reaching(self, threshold: float) -> int | None:
        """First summary step whose windowed metric is at or beyond ``threshold``."""
        over = int(self.info.get("over_last_steps") or 0)
        for i in range(len(self.points)):
            if _beyond(windowed(self.points[: i + 1], over), threshold, self.mode):
                return self.points[i].step
        return None

    def worst_after_reaching(self, threshold: float) -> float | None:
        """The worst single summary from the first one at or beyond ``threshold`` on (no
        window: a summary that falls back counts); ``None`` if no summary reached it."""
        first = next(
            (i for i, p in enumerate(self.points) if _beyond(p.value, threshold, self.mode)),
            None,
        )
        if first is None:
            return None
        return _worst([p.value for p in self.points[first:]], self.mode)


@dataclass
class ConfigurationSummary:
    """All seeds of one configuration of one sweep."""

    sweep: str
    label: str
    metric: str
    mode: str
    threshold: float | None
    trials: list[TrialRecord] = field(default_factory=list)
    failed: int = 0

    @property
    def name(self) -> str:
        return self.sweep if self.label == "base" else f"{self.sweep}: {self.label}"

    @property
    def finals(self) -> list[float]:
        return [t.final for t in self.trials]

    def row(self) -> dict[str, Any]:
        finals = self.finals
        reached = [
            s for t in self.trials if self.threshold is not None
            for s in [t.first_step_reaching(self.threshold)] if s is not None
        ]  # fmt: skip
        threshold = self.threshold
        # per trial that reached the threshold (as "reached" counts it: windowed), its worst
        # single summary from the first one at the threshold on
        worst: list[float] = []
        if threshold is not None:
            worst = [
                w for t in self.trials if t.first_step_reaching(threshold) is not None
                for w in [t.worst_after_reaching(threshold)] if w is not None
            ]  # fmt: skip
        held = [w for w in worst if threshold is not None and _beyond(w, threshold, self.mode)]
        rates = [r for r in (steps_per_second(t.points) for t in self.trials) if r]
        return {
            "sweep": self.sweep,
            "configuration": self.label,
            "metric": self.metric,
            "seeds": " ".join(str(t.info["seed"]) for t in self.trials),
            "final_mean": statistics.fmean(finals) if finals else math.nan,
            "final_std": statistics.pstdev(finals) if len(finals) > 1 else 0.0,
            "final_min": min(finals) if finals else math.nan,
            "threshold": self.threshold,
            "steps_to_threshold": statistics.fmean(reached) if reached else None,
            "reached_threshold": f"{len(reached)}/{len(self.trials)}",
            "held_threshold": f"{len(held)}/{len(self.trials)}",
            "lowest_after_threshold": _worst(worst, self.mode) if worst else None,
            "steps_per_second": statistics.fmean(rates) if rates else None,
            "final_steps": " ".join(str(t.points[-1].step) for t in self.trials),
            # as the trial recorded it: a finished run's last summary may lie below max_steps
            # (the last multiple of summary_freq), so the steps do not tell
            "stopped_early": sum(1 for t in self.trials if t.info.get("status") == "stopped"),
            "failed": self.failed,
        }


def find_trials(folders: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Every trial run folder (one with ``sweep_trial.json``) under ``folders``."""
    found: list[Path] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"mla-sweep report: {root} is not a folder")
        found.extend(sorted(p.parent for p in root.rglob(TRIAL_FILE)))
    return found


def collect(folders: Sequence[str | os.PathLike[str]]) -> list[ConfigurationSummary]:
    """The configurations of the sweeps under ``folders``, best first (by mean final metric)."""
    groups: dict[tuple[str, str], ConfigurationSummary] = {}
    for run_dir in find_trials(folders):
        info = json.loads((run_dir / TRIAL_FILE).read_text())
        key = (info["sweep"], json.dumps(info["overrides"], sort_keys=True))
        summary = groups.setdefault(
            key,
            ConfigurationSummary(
                info["sweep"], info["label"], info["metric"], info.get("mode", "max"),
                info.get("threshold"),
            ),
        )  # fmt: skip
        reader = MetricReader(run_dir, info["behavior"], info["metric"])
        reader.poll()
        if info.get("status") == "failed":
            summary.failed += 1
            continue
        if not reader.points:  # running, or stopped, before its first summary: no data yet
            continue
        summary.trials.append(TrialRecord(info, reader.points))
    summaries = [s for s in groups.values() if s.trials or s.failed]
    for s in summaries:
        s.trials.sort(key=lambda t: t.info["seed"])

    def rank(s: ConfigurationSummary) -> float:
        if not s.trials:
            return math.inf
        mean = statistics.fmean(s.finals)
        return -mean if s.mode == "max" else mean

    return sorted(summaries, key=rank)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _final_window(summaries: Sequence[ConfigurationSummary]) -> str:
    """How "final" is taken: ``mean of the last N steps`` (each trial's ``over_last_steps``)."""
    windows = {int(t.info.get("over_last_steps") or 0) for s in summaries for t in s.trials}
    if windows == {0}:
        return "last summary"
    if len(windows) == 1:
        return f"mean of the summaries in the last {next(iter(windows)):,} steps"
    return "mean of the summaries in each run's metric.over_last_steps"


def markdown_table(summaries: Sequence[ConfigurationSummary]) -> str:
    """One row per configuration, best first, then a line naming the best. "held": the seeds
    whose every summary, from the first one at the threshold on, stayed at it (single
    summaries, no window). The threshold columns are there only when a threshold is set."""
    thresholds = {s.threshold for s in summaries if s.threshold is not None}
    to_threshold = (
        f"steps to {_fmt(next(iter(thresholds)))}" if len(thresholds) == 1 else "steps to threshold"
    )
    metrics = sorted({s.metric for s in summaries})
    columns = ["configuration", "seeds", f"final {' / '.join(metrics)} (mean ± std)", "min"]
    if thresholds:
        columns += [f"{to_threshold} (reached)", "held (worst summary after)"]
    columns += ["env steps/s", "stopped early", "failed"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for s in summaries:
        row = s.row()
        final = f"{_fmt(row['final_mean'])} ± {_fmt(row['final_std'], 2)}" if s.trials else "—"
        cells = [s.name, row["seeds"] or "—", final, _fmt(row["final_min"])]
        if thresholds:
            steps = row["steps_to_threshold"]
            cells += [
                f"{'—' if steps is None else f'{steps:,.0f}'} ({row['reached_threshold']})",
                f"{row['held_threshold']} ({_fmt(row['lowest_after_threshold'])})",
            ]
        cells += [_fmt(row["steps_per_second"], 3), str(row["stopped_early"]), str(row["failed"])]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    lines.append(f"final: {_final_window(summaries)} of each seed's run.")
    best = next((s for s in summaries if s.trials), None)
    if best is not None and len(summaries) > 1:
        row = best.row()
        lines.append(
            f"Best: **{best.name}** (final {_fmt(row['final_mean'])} over seeds {row['seeds']})."
        )
    return "\n".join(lines) + "\n"


def write_csv(summaries: Sequence[ConfigurationSummary], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for s in summaries:
            writer.writerow(s.row())


def plot_curves(summaries: Sequence[ConfigurationSummary], path: Path, title: str) -> None:
    """Metric vs environment steps: per configuration the mean over seeds and its min-max band.

    Seeds are put on a common step axis (the union of their summary steps) by linear
    interpolation, each up to its own last step.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    figure, axes = plt.subplots(figsize=(7.5, 4.5))
    for s in summaries:
        if not s.trials:
            continue
        steps = np.array(sorted({p.step for t in s.trials for p in t.points}), dtype=float)
        curves = []
        for t in s.trials:
            x = np.array([p.step for p in t.points], dtype=float)
            y = np.array([p.value for p in t.points], dtype=float)
            curves.append(np.where(steps <= x[-1], np.interp(steps, x, y), np.nan))
        stack = np.vstack(curves)
        with np.errstate(all="ignore"):
            mean = np.nanmean(stack, axis=0)
            low, high = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
        (line,) = axes.plot(steps, mean, label=f"{s.name} ({len(s.trials)} seeds)")
        axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.2)
    from matplotlib.patches import Patch

    handles, _ = axes.get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.2, label="shaded: min-max over the seeds"))
    axes.set_xlabel("environment steps")
    axes.set_ylabel(" / ".join(sorted({s.metric for s in summaries})) + " (each summary)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(handles=handles, fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(
    folders: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], title: str = ""
) -> tuple[str, list[Path]]:
    """Write ``report.md``, ``report.csv`` and ``curves.png`` to ``out``; return the table."""
    summaries = collect(folders)
    if not summaries:
        raise FileNotFoundError(
            f"mla-sweep report: no trials ({TRIAL_FILE}) under {', '.join(map(str, folders))}"
        )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = title or ", ".join(sorted({s.sweep for s in summaries}))
    table = markdown_table(summaries)
    files = [out_dir / "report.md", out_dir / "report.csv", out_dir / "curves.png"]
    files[0].write_text(f"# {title}\n\n{table}\n![learning curves](curves.png)\n")
    write_csv(summaries, files[1])
    plot_curves(summaries, files[2], title)
    return table, files
