"""Acceptance check of mla-sweep: two trials in parallel vs the same two runs one by one.

Two DQN runs on Basic (``dqn_basic.yaml``, seeds 1 and 2) with ``resources: {cpu: 1}``:
first one after the other as plain ``mlagents-learn`` runs (the testing kit), then as one
mla-sweep on embedded Ray with 2 CPUs, both at the same time. Prints both wall times and
their ratio (goal: <= 0.65 on a 2-core machine). Ray's own start-up is left out of the
parallel time (it is paid once per sweep, not per trial); each trial's mlagents-learn
start-up is in both.

    nice -n 10 python benchmarks/sweep_parallel.py [--max-steps 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from mla_plugin_core.shipped_configs import config_path
from mla_plugin_core.testing import run_mlagents_learn
from mla_sweep.config import load_sweep
from mla_sweep.runner import init_ray, run_sweep

SEEDS = (1, 2)


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
            run = run_mlagents_learn(trainer, env="basic", results_dir=folder / "serial",
                                     run_id=f"seed{seed}", seed=seed)  # fmt: skip
            assert run.returncode == 0, run.summary()
        serial = time.perf_counter() - start
        print(f"one after the other: {serial:.1f} s", flush=True)

        sweep_path = folder / "parallel.yaml"
        sweep_path.write_text(yaml.safe_dump({**trainer, "sweep": {
            "env": "mla-env-basic", "seeds": list(SEEDS), "resources": {"cpu": 1}}}))  # fmt: skip
        init_ray(None, num_cpus=2)
        start = time.perf_counter()
        results = run_sweep(load_sweep(sweep_path), folder / "storage")
        parallel = time.perf_counter() - start
        assert all(r.error is None for r in results), [r.error for r in results]
        print(f"in parallel (mla-sweep, embedded Ray, 2 CPUs): {parallel:.1f} s")
        print(f"ratio parallel / one after the other: {parallel / serial:.3f} (goal <= 0.65)")


if __name__ == "__main__":
    main()
