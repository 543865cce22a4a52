"""The benchmark suite on mla-sweep: our trainers next to mlagents' and SB3's, 3 seeds each.

- Basic: DQN (``dqn_basic.yaml``) vs mlagents' SAC (mlagents' own Basic settings);
- 3DBall: A2C (``a2c_3DBall.yaml``) vs mlagents' PPO (``ppo_3DBall.yaml`` of mla-envs);
- CartPole-v1 through the Gymnasium bridge (``mla-env-gym``): DQN (``dqn_cartpole.yaml``)
  and A2C (SB3 rl-zoo's settings, from ``benchmarks/a2c.py``), with Stable-Baselines3's DQN
  and A2C on the same budget as a reference (``benchmarks/sb3_reference.py``).

Each pair is a sweep file written from the shipped configs (one home for hyperparameters)
to ``<out>/sweeps/``, run with ``mla-sweep run``, and reported with ``mla-sweep report``
into ``<out>/<task>/`` (report.md, report.csv, curves.png). ``docs/benchmarks.md`` gathers
the tables with the machine and versions they were measured on.

    python benchmarks/bench.py            # the full budget (hours on 2 cores)
    python benchmarks/bench.py --quick    # minutes: the pipeline, not the learning
    nox -s bench [-- --quick]
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from a2c import A2C_CARTPOLE  # noqa: E402
from dqn import SAC_BASIC  # noqa: E402

from mla_plugin_core.cli.shipped_configs import config_path  # noqa: E402

SEEDS = [1, 2, 3]

#: task -> (environment command, env args, metric threshold, window, full budget, quick budget)
TASKS: dict[str, dict[str, Any]] = {
    "basic": {"env": "mla-env-basic", "threshold": 0.9, "window": 2000,
              "steps": 20_000, "quick": 3_000},
    "3dball": {"env": "mla-env-3dball", "threshold": 90.0, "window": 20_000,
               "steps": 500_000, "quick": 12_000},
    "cartpole": {"env": "mla-env-gym", "env_args": ["CartPole-v1"], "threshold": 475.0,
                 "window": 10_000, "steps": 100_000, "quick": 4_000},
}  # fmt: skip


def shipped(name: str) -> dict[str, Any]:
    """A YAML shipped by an installed package (``mla-plugin config NAME``: ours, mla-envs')."""
    return yaml.safe_load(config_path(name).read_text())


def single(behavior: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"behaviors": {behavior: copy.deepcopy(settings)}}


def trainers() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """task -> [(sweep name, trainer YAML)]."""
    return {
        "basic": [("basic-dqn", shipped("dqn_basic.yaml")), ("basic-sac", SAC_BASIC)],
        "3dball": [("3dball-a2c", shipped("a2c_3DBall.yaml")),
                   ("3dball-ppo", shipped("ppo_3DBall.yaml"))],
        "cartpole": [("cartpole-dqn", shipped("dqn_cartpole.yaml")),
                     ("cartpole-a2c", single("CartPole-v1", {**A2C_CARTPOLE,
                                                             "summary_freq": 5000}))],
    }  # fmt: skip


def sweep_file(task: str, trainer: dict[str, Any], steps: int, seeds: list[int]) -> dict:
    """The trainer YAML with ``max_steps`` = the budget and a ``sweep:`` block over seeds."""
    spec = TASKS[task]
    document = copy.deepcopy(trainer)
    for behavior in document["behaviors"].values():
        behavior["max_steps"] = steps
        # at least 5 summaries per run, for the curves
        behavior["summary_freq"] = min(int(behavior.get("summary_freq", 50_000)), steps // 5)
        behavior["checkpoint_interval"] = steps
    document["sweep"] = {
        "env": spec["env"],
        **({"env_args": spec["env_args"]} if "env_args" in spec else {}),
        "seeds": seeds,
        "metric": {"name": "Environment/Cumulative Reward", "mode": "max",
                   "over_last_steps": min(spec["window"], steps // 2),
                   "threshold": spec["threshold"]},
        "resources": {"cpu": 1},
    }  # fmt: skip
    return document


def versions() -> dict[str, str]:
    names = ["mlagents", "torch", "ray", "mla-plugin-core", "mla-dqn", "mla-a2c", "mla-envs",
             "mla-sweep", "stable-baselines3", "gymnasium"]  # fmt: skip
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model or platform.processor()}), {platform.system()}, Python {platform.python_version()}"


def run(command: list[str]) -> int:
    print("$", " ".join(command), flush=True)
    return subprocess.call(command)


def sb3_table(path: Path) -> str:
    rows = list(csv.DictReader(open(path)))
    lines = ["| SB3 reference | seeds | final return (mean ± std) | min | steps to 475 (reached) | env steps/s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        lines.append(
            f"| {row['algorithm']} | {row['seeds']} | {float(row['final_mean']):.4g} ± "
            f"{float(row['final_std']):.2g} | {float(row['final_min']):.4g} | "
            f"{row['steps_to_threshold'] or '—'} ({row['reached']}) | "
            f"{float(row['steps_per_second']):.3g} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (minutes)")
    parser.add_argument("--max-steps", type=int, help="one budget for every task (testing)")
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--storage",
        type=Path,
        default=ROOT / ".bench-storage",
        help="trial folders of the sweeps (default: .bench-storage, not in git)",
    )
    parser.add_argument("--skip-sb3", action="store_true")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    storage = args.storage.resolve()
    sweeps_dir = args.out / "sweeps"
    sweeps_dir.mkdir(exist_ok=True)
    mode = (
        f"--max-steps {args.max_steps}" if args.max_steps else ("quick" if args.quick else "full")
    )
    sections = []
    failures = 0
    for task in args.tasks:
        steps = args.max_steps or TASKS[task]["quick" if args.quick else "steps"]
        folders = []
        for name, trainer in trainers()[task]:
            path = sweeps_dir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(sweep_file(task, trainer, steps, args.seeds),
                                           sort_keys=False))  # fmt: skip
            if (storage / name).exists():
                subprocess.call(["rm", "-rf", str(storage / name)])
            failures += run([sys.executable, "-m", "mla_sweep.cli", "run", str(path),
                             "--storage", str(storage)]) != 0  # fmt: skip
            folders.append(str(storage / name))
        out = args.out / task
        # a table of an earlier run must not appear under this run's date and budget
        for stale in ("report.md", "report.csv", "curves.png", "sb3.csv"):
            (out / stale).unlink(missing_ok=True)
        failures += run([sys.executable, "-m", "mla_sweep.cli", "report", *folders,
                         "--out", str(out), "--title",
                         f"{task}: {steps:,} steps, seeds {' '.join(map(str, args.seeds))}"]) != 0  # fmt: skip
        body = (
            (out / "report.md").read_text().split("\n", 2)[2]
            if (out / "report.md").exists()
            else ""
        )
        body = body.replace("](curves.png)", f"](../benchmarks/results/{task}/curves.png)")
        if task == "cartpole" and not args.skip_sb3:
            sb3_csv = out / "sb3.csv"
            failures += run([sys.executable, str(ROOT / "benchmarks" / "sb3_reference.py"),
                             "--steps", str(steps), "--seeds", *map(str, args.seeds),
                             "--threshold", str(TASKS[task]["threshold"]),
                             "--out", str(sb3_csv)]) != 0  # fmt: skip
            if sb3_csv.exists():
                body += "\nStable-Baselines3 on the same budget (plain Gymnasium CartPole-v1; DQN on 1 env, A2C on 8, as in RL Zoo):\n\n"
                body += sb3_table(sb3_csv)
        sections.append(f"## {task} ({steps:,} environment steps per run)\n\n{body}")

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    version_text = ", ".join(f"{k} {v}" for k, v in versions().items())
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    args.docs.write_text(
        "# Benchmarks\n\n"
        f"Made by `nox -s bench{' -- --quick' if args.quick else ''}` (`benchmarks/bench.py`, "
        f"{mode} budget) on {stamp}.\n\n"
        f"- machine: {machine()}; the seeds of a sweep ran in parallel, one CPU each, the "
        "sweeps of a table one after the other, so steps/s compare within one table only\n"
        f"- versions: {version_text}\n"
        f"- seeds: {' '.join(map(str, args.seeds))}; metric: mlagents' "
        "`Environment/Cumulative Reward` (training episodes), final = mean of the summaries "
        "in the last window of each run; steps to threshold = first summary whose windowed "
        "mean reaches it (mean over the seeds that did); held = seeds whose every summary "
        "from the first one at the threshold on stayed there (worst such summary)\n"
        "- sweep files: `benchmarks/results/sweeps/`; tables, CSV and PNGs: "
        "`benchmarks/results/<task>/`\n\n" + "\n".join(sections)
    )
    print(f"wrote {args.docs} and {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
