"""Seeds and grid searches of A2C's shipped configs with mla-sweep, for configs that hold.

Runs a shipped config (one home for its hyperparameters: ``a2c_3DBall.yaml`` or
``a2c_basic.yaml``) at a step budget over ``--seeds``, optionally over a grid of
``--grid KEY=V1,V2,...`` overrides, and reports with ``mla-sweep report``. The report's
"held" column counts the seeds whose every summary from the first one at the threshold on
stayed there (3DBall 90, Basic 0.9).

    python benchmarks/a2c_search.py --seeds 11 12 13 14 15 --name a2c-3dball-heldout
    python benchmarks/a2c_search.py --task basic --seeds 11 12 13 14 15 --name a2c-basic-heldout
    python benchmarks/a2c_search.py --name a2c-3dball-search \\
        --grid behaviors.3DBall.hyperparameters.beta=0.001,0 \\
        --grid behaviors.3DBall.hyperparameters.learning_rate=0.001,0.0003   # 12 trials, 46 min
    python benchmarks/a2c_search.py --steps 20000    # the pipeline, minutes

Two trials run at a time on a 2-core machine: a 500k-step 3DBall trial takes ~9 minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import shipped, sweep_file  # noqa: E402

#: task -> (the shipped config, its behavior)
TASKS = {"3dball": ("a2c_3DBall.yaml", "3DBall"), "basic": ("a2c_basic.yaml", "Basic")}


def grid_value(text: str) -> tuple[str, list[float | int | str]]:
    key, _, values = text.partition("=")
    if not key or not values:
        raise argparse.ArgumentTypeError(f"--grid {text!r}: expected KEY=V1,V2,...")
    return key, [yaml.safe_load(v) for v in values.split(",")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="3dball")
    parser.add_argument(
        "--steps", type=int, help="max_steps of every trial (default: the config's)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--grid", type=grid_value, action="append", help="KEY=V1,V2,...")
    parser.add_argument("--name", help="the sweep's name (its folder); default a2c-TASK-seeds")
    parser.add_argument("--storage", type=Path, default=ROOT / ".bench-storage")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/NAME")
    args = parser.parse_args()
    name = args.name or f"a2c-{args.task}-seeds"
    out = args.out or ROOT / "benchmarks" / "results" / name

    config_name, behavior = TASKS[args.task]
    config = shipped(config_name)
    steps = args.steps or int(config["behaviors"][behavior]["max_steps"])
    document = sweep_file(args.task, config, steps, args.seeds)
    if args.grid:
        document["sweep"]["grid"] = dict(args.grid)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    code = subprocess.call(
        [sys.executable, "-m", "mla_sweep.cli", "run", str(path), "--storage", str(args.storage)]
    )
    title = f"A2C {behavior} ({config_name}): {steps:,} steps"
    report = [sys.executable, "-m", "mla_sweep.cli", "report", str(args.storage / name),
              "--out", str(out), "--title", title]  # fmt: skip
    return code or subprocess.call(report)


if __name__ == "__main__":
    sys.exit(main())
