"""Benchmark: experience collection of ``mla-learn`` (mla-ray) against ``mlagents-learn``.

Both commands run the same trainer YAML in the same invocation, interleaved (mlagents,
mla, mlagents, mla, ...), each at its own free ports:

a. **same machine**: mla-envs' Basic (8 agents), ``--num-envs`` N = 1, 2, 4, mlagents' PPO
   (``ppo_basic.yaml``) and mla-dqn (``dqn_basic.yaml``). Environment steps per second
   while training, and CPU seconds per 1,000 agent steps of the main process (the trainer)
   and of the whole process tree (environments, worker processes, Ray's own daemons).
b. **scaling** (``--scaling``): a Ray cluster of 3 nodes started on this machine
   (``mla_ray.local_ray``), Basic paced by ``--time-scale`` so that each step costs a fixed
   wall time without using the CPU (mla-envs paces a step to ``0.02 s / time scale``, as
   Unity does; a stand-in for a heavy scene on its own hardware), N = 1, 2, 4, 8, 16:
   steps per second against N, next to the ideal N x (one worker's rate) and to
   ``mlagents-learn`` with the same N.

Every rate is measured between the first and the last summary of a run (start-up left
out); CPU is read from ``/proc`` at the same moments. Usage (repository root)::

    python benchmarks/collection.py [--repeats 2] [--steps 12000] [--out DIR]
    python benchmarks/collection.py --scaling [--time-scale 0.4] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench import shipped  # noqa: E402  (one home for reading shipped configs)

SUMMARY = re.compile(r"\] (\w+)\. Step: (\d+)\. Time Elapsed")
CLOCK = os.sysconf("SC_CLK_TCK")
CONFIGS = {"ppo": "ppo_basic.yaml", "dqn": "dqn_basic.yaml"}


#: The commands compared: mla-learn's extra arguments (mlagents-learn's own module for the first).
TOOLS: dict[str, list[str]] = {
    "mlagents-learn": [],
    "mla-learn": [],  # the default without --address: worker processes of this machine
    "mla-learn --backend ray": ["--backend", "ray"],  # Ray started on this machine
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root`` and every live descendant."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        total += cpu_seconds(pid)
        pending += children.get(pid, [])
    return total


def timer_total(node: dict[str, Any], name: str) -> float:
    """Total seconds of the first timer called ``name`` under ``node`` (timers.json)."""
    for child_name, child in node.get("children", {}).items():
        if child_name == name:
            return float(child.get("total", 0.0))
        found = timer_total(child, name)
        if found:
            return found
    return 0.0


def trainer_figures(run_dir: Path, steps: int) -> dict[str, float]:
    """From the run's ``timers.json``: the trainers' own seconds per 1,000 steps (mlagents'
    ``trainer_advance``: trajectory processing and updates, the same code for both
    commands) and the rate no environment manager could pass with that much trainer work
    (``steps / trainer_advance``: the main loop doing nothing else)."""
    timers = json.loads((run_dir / "run_logs" / "timers.json").read_text())
    trainer = timer_total(timers, "trainer_advance")  # the whole run's, start-up included
    if trainer <= 0:
        raise RuntimeError(f"no trainer_advance timer in {run_dir}/run_logs/timers.json")
    return {
        "trainer_s_per_1k": 1000 * trainer / steps,
        "trainer_ceiling_steps_per_s": steps / trainer,
    }


def measure(command: list[str], run_dir: Path, log_path: Path,
            timeout: float = 900.0) -> dict[str, float]:  # fmt: skip
    """Run ``command`` (its results folder: ``run_dir``); at each summary it logs, note steps,
    time and CPU; the rates between the first and the last summary, and the trainers' own
    figures (:func:`trainer_figures`)."""
    marks: list[tuple[int, float, float, float]] = []
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            found = SUMMARY.findall(log_path.read_text(errors="replace"))
            if len(found) > seen:
                seen = len(found)
                marks.append(
                    (int(found[-1][1]), time.monotonic(), cpu_seconds(process.pid),
                     tree_cpu_seconds(process.pid))
                )  # fmt: skip
    finally:
        if process.poll() is None:
            process.kill()
    if process.wait() != 0 or len(marks) < 3:
        raise RuntimeError(f"{command[2]} failed or too short: see {log_path}")
    # the last summary can coincide with the final export: leave it out
    (s0, t0, c0, k0), (s1, t1, c1, k1) = marks[0], marks[-2]
    steps = s1 - s0
    return {
        "steps_per_s": steps / (t1 - t0),
        "main_cpu_per_1k": 1000 * (c1 - c0) / steps,
        "tree_cpu_per_1k": 1000 * (k1 - k0) / steps,
        **trainer_figures(run_dir, marks[-1][0]),
    }


def run_command(tool: str, config: Path, folder: Path, run_id: str, num_envs: int,
                extra: list[str]) -> list[str]:  # fmt: skip
    from mla_plugin_core.testing.learn import environment_executable, free_base_port

    module = "mlagents.trainers.learn" if tool == "mlagents-learn" else "mla_ray.cli"
    extra = [*TOOLS[tool], *extra]
    return [
        sys.executable, "-m", module, str(config), "--run-id", run_id,
        "--results-dir", str(folder), "--force", "--seed", "1", "--no-graphics",
        "--num-envs", str(num_envs), "--base-port", str(free_base_port(num_envs)),
        "--env", environment_executable("Basic"), *extra,
    ]  # fmt: skip


def write_config(folder: Path, name: str, steps: int) -> Path:
    document = shipped(CONFIGS[name])
    for behavior in document["behaviors"].values():
        behavior["max_steps"] = steps
        behavior["summary_freq"] = max(steps // 12, 200)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def same_machine(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    rows = []
    for algo in ("ppo", "dqn"):
        config = write_config(folder, algo, args.steps)
        for num_envs in args.num_envs:
            for repeat in range(args.repeats):
                for tool in TOOLS:
                    run_id = f"{algo}-{num_envs}-{tool}-{repeat}"
                    figures = measure(
                        run_command(tool, config, folder, run_id, num_envs, []),
                        folder / run_id,
                        folder / f"{run_id}.log",
                    )
                    rows.append({"algo": algo, "num_envs": num_envs, "tool": tool,
                                 "repeat": repeat, **figures})  # fmt: skip
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def scaling(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    from mla_ray.local_ray import start_cluster, stop_cluster

    config = write_config(folder, "ppo", args.steps)
    pace = ["--time-scale", str(args.time_scale)]
    cluster = start_cluster(num_cpus=6, worker_cpus=(5, 5))
    rows = []
    try:
        for num_envs in (1, 2, 4, 8, 16):
            for tool in ("mlagents-learn", "mla-learn"):
                extra = pace + (["--address", cluster.address] if tool == "mla-learn" else [])
                run_id = f"scaling-{num_envs}-{tool}"
                figures = measure(
                    run_command(tool, config, folder, run_id, num_envs, extra),
                    folder / run_id,
                    folder / f"{run_id}.log",
                )
                rows.append({"num_envs": num_envs, "tool": tool, "time_scale": args.time_scale,
                             **figures})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    finally:
        stop_cluster(cluster)
    return rows


def table_same_machine(rows: list[dict[str, Any]]) -> str:
    """Medians over the repeats; each mla-learn backend against mlagents-learn of the run."""
    lines = [
        "| trainer | N | tool | steps/s | vs mlagents-learn | main CPU s / 1k steps | "
        "vs mlagents-learn | whole tree CPU s / 1k steps | trainer's own s / 1k steps | "
        "trainer-bound ceiling steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("steps_per_s", "main_cpu_per_1k", "tree_cpu_per_1k", "trainer_s_per_1k",
            "trainer_ceiling_steps_per_s")  # fmt: skip
    for algo in ("ppo", "dqn"):
        for n in sorted({r["num_envs"] for r in rows}):
            cell = {}
            for tool in TOOLS:
                runs = [r for r in rows if (r["algo"], r["num_envs"], r["tool"]) == (algo, n, tool)]
                if runs:
                    cell[tool] = {k: statistics.median(float(r[k]) for r in runs) for k in keys}
            if "mlagents-learn" not in cell:
                continue
            ref = cell["mlagents-learn"]
            for tool, got in cell.items():
                vs = (
                    ("", "")
                    if tool == "mlagents-learn"
                    else (
                        f"{got['steps_per_s'] / ref['steps_per_s']:.2f}x",
                        f"{got['main_cpu_per_1k'] / ref['main_cpu_per_1k']:.2f}x",
                    )
                )
                lines.append(
                    f"| {algo} | {n} | {tool} | {got['steps_per_s']:.0f} | {vs[0]} | "
                    f"{got['main_cpu_per_1k']:.2f} | {vs[1]} | {got['tree_cpu_per_1k']:.2f} | "
                    f"{got['trainer_s_per_1k']:.2f} | {got['trainer_ceiling_steps_per_s']:.0f} |"
                )
    return "\n".join(lines)


def table_scaling(rows: list[dict[str, Any]]) -> str:
    one = next(r["steps_per_s"] for r in rows if r["tool"] == "mla-learn" and r["num_envs"] == 1)
    lines = [
        "| N | ideal (N x one mla-learn worker) | mla-learn steps/s | of ideal | mlagents-learn steps/s |",
        "|---|---|---|---|---|",
    ]
    for n in sorted({r["num_envs"] for r in rows}):
        ours = next(
            r["steps_per_s"] for r in rows if (r["tool"], r["num_envs"]) == ("mla-learn", n)
        )
        theirs = next(
            r["steps_per_s"] for r in rows if (r["tool"], r["num_envs"]) == ("mlagents-learn", n)
        )
        lines.append(
            f"| {n} | {n * one:.0f} | {ours:.0f} | {ours / (n * one):.2f} | {theirs:.0f} |"
        )
    return "\n".join(lines)


def plot_scaling(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({r["num_envs"] for r in rows})
    rate = {(r["tool"], r["num_envs"]): r["steps_per_s"] for r in rows}
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [n * rate["mla-learn", 1] for n in ns], "k--", label="ideal: N x one worker")
    for tool in ("mla-learn", "mlagents-learn"):
        ax.plot(ns, [rate[tool, n] for n in ns], "o-", label=tool)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("environment workers N")
    ax.set_ylabel("environment steps per second")
    ax.set_title(
        f"Basic, each step >= {0.02 / rows[0]['time_scale'] * 1000:.0f} ms of wall time, no CPU"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12_000)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--time-scale", type=float, default=0.4)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "collection")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.scaling:
            rows = scaling(args, folder)
            name = "scaling"
            table = table_scaling(rows)
            plot_scaling(rows, args.out / "scaling.png")
        else:
            rows = same_machine(args, folder)
            name = "same-machine"
            table = table_same_machine(rows)
    print(table)
    (args.out / f"{name}.md").write_text(table + "\n")
    with (args.out / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
