"""Acceptance check of mla-sweep: two trials in parallel vs the same two trials one by one.

Two DQN runs on Basic (``dqn_basic.yaml``, seeds 1 and 2) as one mla-sweep on embedded Ray
with 2 CPUs and ``resources: {cpu: 1}``: first with ``max_concurrent: 1`` (the same trials,
each confined to its one core, one after the other), then both at the same time. Prints both
wall times and their ratio (goal: <= 0.65 on a 2-core machine). For reference it also times
the two runs as plain, unconfined ``mlagents-learn`` runs one after the other (the testing
kit). Ray's own start-up is left out of both sweep times (it is paid once per sweep, not per
trial); each trial's mlagents-learn start-up is in every time.

    nice -n 10 python benchmarks/sweep_parallel.py [--max-steps 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mla_plugin_core.cli.shipped_configs import config_path
from mla_plugin_core.testing import run_mlagents_learn
from mla_sweep.config import load_sweep
from mla_sweep.runner import init_ray, run_sweep

SEEDS = (1, 2)


def sweep_seconds(folder: Path, name: str, trainer: dict[str, Any], concurrent: int) -> float:
    """Wall time of the two seeds as one sweep with ``concurrent`` trials at once."""
    path = folder / f"{name}.yaml"
    sweep = {"env": "mla-env-basic", "seeds": list(SEEDS), "resources": {"cpu": 1},
             "max_concurrent": concurrent}  # fmt: skip
    path.write_text(yaml.safe_dump({**trainer, "sweep": sweep}))
    init_ray(None, num_cpus=2)
    start = time.perf_counter()
    results = run_sweep(load_sweep(path), folder / "storage")
    seconds = time.perf_counter() - start
    assert all(r.error is None for r in results), [r.error for r in results]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-steps", type=int, default=10_000)
    args = parser.parse_args()
    trainer = yaml.safe_load(config_path("dqn_basic.yaml").read_text())
    for behavior in trainer["behaviors"].values():
        behavior["max_steps"] = args.max_steps
    with tempfile.TemporaryDirectory(prefix="sweep-parallel-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        for seed in SEEDS:
            run = run_mlagents_learn(trainer, env="basic", results_dir=folder / "plain",
                                     run_id=f"seed{seed}", seed=seed)  # fmt: skip
            assert run.returncode == 0, run.summary()
        plain = time.perf_counter() - start
        print(f"plain mlagents-learn, unconfined, one after the other: {plain:.1f} s", flush=True)
        serial = sweep_seconds(folder, "serial", trainer, concurrent=1)
        print(f"mla-sweep, 1 CPU per trial, one after the other: {serial:.1f} s", flush=True)
        parallel = sweep_seconds(folder, "parallel", trainer, concurrent=2)
        print(f"mla-sweep, 1 CPU per trial, in parallel: {parallel:.1f} s", flush=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\n| runs ({len(SEEDS)} x {args.max_steps} steps) | wall time |")
    print("| --- | --- |")
    print(f"| plain mlagents-learn, unconfined, one after the other | {plain:.1f} s |")
    print(f"| mla-sweep, resources cpu 1, max_concurrent 1 | {serial:.1f} s |")
    print(f"| mla-sweep, resources cpu 1, both at once | {parallel:.1f} s |")
    print(f"\nratio parallel / one after the other (same trials): {parallel / serial:.3f} "
          "(goal <= 0.65)")  # fmt: skip
    print(f"ratio parallel / plain mlagents-learn one after the other: {parallel / plain:.3f}")
    print(f"load average at the end (1, 5, 15 min): {load}")


if __name__ == "__main__":
    main()
