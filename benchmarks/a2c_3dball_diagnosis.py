"""Why A2C collapsed on 3DBall: its diagnostic stats, before and after the fix, seed by seed.

Reads the TensorBoard events of mla-sweep trials (``<storage>/<sweep>/runs/*/3DBall``) of
two or more sweeps of ``a2c_3DBall.yaml`` and writes, for each sweep, every summary's reward
and A2C's diagnostics (README of mla-a2c, "Why A2C collapsed on 3DBall") to ``diagnosis.csv``
and one figure, ``diagnosis.png``: a column per sweep, a line per trial, a row per stat.
``--zoom RUN START END`` draws one ``mlagents-learn`` run's summaries in a window as well
(``zoom.png``; a run with ``summary_freq: 800`` shows a collapse update by update).

    python benchmarks/a2c_3dball_diagnosis.py \\
        .bench-storage/a2c-3dball-diagnosis .bench-storage/a2c-3dball-fixed \\
        --out benchmarks/results/a2c-3dball-diagnosis

The sweeps themselves: ``benchmarks/a2c_search.py`` (see its docstring).
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

#: TensorBoard tag -> short name, in the figure's order.
STATS = {
    "Environment/Cumulative Reward": "reward",
    "Policy/Update KL": "update KL",
    "Policy/Mean |mu|": "mean |mu|",
    "Policy/Mu Beyond Clip": "mu beyond clip",
    "Policy/Sigma": "sigma",
    "Policy/Advantage Std": "advantage std (raw)",
    "Policy/Explained Variance": "explained variance",
    "Losses/Gradient Norm": "gradient norm (before clip)",
    "Policy/Learning Rate": "learning rate",
}
#: Stats spanning orders of magnitude, drawn on a log scale.
LOG_SCALE = {"update KL", "mean |mu|", "gradient norm (before clip)"}


def read_sweep(sweep: Path) -> dict[str, dict[str, dict[int, float]]]:
    """trial ("<grid values> seed N") -> short stat name -> {step: value}, for every trial."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trials: dict[str, dict[str, dict[int, float]]] = {}
    for behavior in sorted(sweep.glob("runs/*/3DBall")):
        # mla-sweep names a trial's run "<grid values>_seed<N>_<trial id>"
        match = re.fullmatch(r"(.*?)_?seed(\d+)_[0-9a-f_]+", behavior.parent.name)
        if not match or not any(behavior.glob("events.out.tfevents.*")):
            continue
        events = EventAccumulator(str(behavior), size_guidance={"scalars": 0})
        events.Reload()
        tags = set(events.Tags()["scalars"])
        trials[f"{match.group(1)} seed {match.group(2)}".strip()] = {
            name: {e.step: e.value for e in events.Scalars(tag)}
            for tag, name in STATS.items()
            if tag in tags
        }
    return trials


def write_csv(sweeps: dict[str, dict[str, dict[str, dict[int, float]]]], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["sweep", "trial", "step", *STATS.values()])
        for sweep, trials in sweeps.items():
            for trial, series in sorted(trials.items()):
                steps = sorted(series.get("reward", {}))
                for step in steps:
                    row = [series.get(name, {}).get(step, "") for name in STATS.values()]
                    writer.writerow([sweep, trial, step, *row])


def plot(sweeps: dict[str, dict[str, dict[str, dict[int, float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(STATS.values())
    figure, axes = plt.subplots(
        len(names), len(sweeps), figsize=(6 * len(sweeps), 2.2 * len(names)), sharex=True,
        squeeze=False,
    )  # fmt: skip
    for column, (sweep, trials) in enumerate(sweeps.items()):
        for row, name in enumerate(names):
            ax = axes[row][column]
            for trial, series in sorted(trials.items()):
                points = sorted(series.get(name, {}).items())
                if points:
                    ax.plot(*zip(*points, strict=True), label=trial, linewidth=1)
            if name in LOG_SCALE:
                ax.set_yscale("log")
            if name == "reward":
                ax.axhline(90, color="grey", linestyle=":", linewidth=1)
                ax.set_title(sweep)
            if column == 0:
                ax.set_ylabel(name)
        axes[0][column].legend(fontsize="small", ncol=2)
        axes[-1][column].set_xlabel("environment steps")
    figure.tight_layout()
    figure.savefig(path, dpi=80)


#: The zoom's rows: what happens first when a run collapses.
ZOOM = {
    "Environment/Cumulative Reward": "reward",
    "Environment/Episode Length": "episode length",
    "Policy/Update KL": "update KL",
    "Losses/Value Loss": "value loss",
}


def plot_zoom(run: Path, start: int, end: int, path: Path) -> None:
    """One run's summaries from ``start`` to ``end`` (a run with a small ``summary_freq``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (behavior,) = [p.parent for p in run.glob("*/events.out.tfevents.*")][:1]
    events = EventAccumulator(str(behavior), size_guidance={"scalars": 0})
    events.Reload()
    figure, axes = plt.subplots(len(ZOOM), 1, figsize=(7, 1.8 * len(ZOOM)), sharex=True)
    for ax, (tag, name) in zip(axes, ZOOM.items(), strict=True):
        points = [(e.step, e.value) for e in events.Scalars(tag) if start <= e.step <= end]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", linewidth=1)
        ax.set_ylabel(name)
    axes[0].set_title(f"{run.name}: every summary, steps {start:,}-{end:,}")
    axes[-1].set_xlabel("environment steps")
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", type=Path, nargs="+", help="<storage>/<sweep name> folders")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--zoom", nargs=3, metavar=("RUN", "START", "END"),
                        help="also draw one run's summaries START-END (zoom.png)")  # fmt: skip
    args = parser.parse_args()
    for sweep in args.sweeps:
        if not (sweep / "runs").is_dir():
            parser.error(f"{sweep}: no runs/ folder (is it an mla-sweep storage/<name>?)")
    sweeps = {sweep.name: read_sweep(sweep) for sweep in args.sweeps}
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(sweeps, args.out / "diagnosis.csv")
    plot(sweeps, args.out / "diagnosis.png")
    print(f"wrote {args.out / 'diagnosis.csv'}, {args.out / 'diagnosis.png'}")
    if args.zoom:
        run, start, end = Path(args.zoom[0]), int(args.zoom[1]), int(args.zoom[2])
        plot_zoom(run, start, end, args.out / "zoom.png")
        print(f"wrote {args.out / 'zoom.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
