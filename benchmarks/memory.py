"""Benchmark: recurrent DQN (R2D2) on mla-envs' Memory corridor, with and without memory.

The rewarding end of the corridor is shown only at an episode's first step
(``mla_envs.envs.memory``): the optimum remembers it (return 0.94); without memory the best is
a guess (-0.06 on average). Both arms run ``mla_dqn``'s ``dqn_memory.yaml`` through the real
``mlagents-learn`` with the same seed; the ``no-memory`` arm drops ``network_settings.memory``
(and so replays n-step transitions instead of sequences). The mean episode return per summary
(every 1,000 steps) is printed per seed and arm; results: mla-dqn's README.

Usage: ``nice -n 10 python benchmarks/memory.py [--seeds 1 2 3] [--arms memory no-memory]
[--steps 20000] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from importlib import resources
from pathlib import Path

import yaml
from curves import record

from mla_plugin_core.testing import run_mlagents_learn
from mla_plugin_core.testing.learn import free_base_port

CONFIG = resources.files("mla_dqn") / "configs" / "dqn_memory.yaml"


def config(arm: str, steps: int | None) -> dict:
    settings = yaml.safe_load(CONFIG.read_text())
    behavior = settings["behaviors"]["Memory"]
    if steps is not None:
        behavior["max_steps"] = steps
    if arm == "no-memory":
        behavior["network_settings"].pop("memory")
        behavior["hyperparameters"]["batch_size"] = 64  # transitions instead of 16 x 16 steps
    return copy.deepcopy(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--arms", nargs="+", default=["memory", "no-memory"])
    parser.add_argument("--steps", type=int, default=None, help="max_steps (default: the YAML's)")
    parser.add_argument("--out", type=Path, default=None, help="write the curves as JSON")
    args = parser.parse_args()
    results: dict[str, list[tuple[int, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mla-memory-bench-") as folder:
        for seed in args.seeds:
            for arm in args.arms:
                run = run_mlagents_learn(
                    config(arm, args.steps),
                    env="memory",
                    results_dir=Path(folder),
                    run_id=f"{arm}-{seed}",
                    seed=seed,
                    extra_args=["--base-port", str(free_base_port())],
                    timeout=3600,
                )
                if run.returncode != 0:
                    raise SystemExit(f"{arm} seed {seed} failed:\n{run.summary()}")
                record(results, arm, seed, run.curve("Memory"), args.out)


if __name__ == "__main__":
    main()
