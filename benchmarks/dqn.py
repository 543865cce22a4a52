"""Benchmark of mla-dqn through the real ``mlagents-learn`` (no Unity; mla-envs' envs).

1. Basic: environment steps to solve (first summary with mean reward >= 0.9) and
   environment steps per second, for ``trainer_type: dqn`` (``dqn_basic.yaml``) and
   mlagents' built-in SAC (discrete actions; mlagents' own Basic SAC settings) in the
   same run.
2. CartPole-v1 through the Gymnasium bridge (``mla-env-gym CartPole-v1``): the mean
   episode return at 50,000 and 100,000 steps (``dqn_cartpole.yaml``). RL Zoo's tuned
   SB3 DQN reaches 500 within 50,000 steps.

Usage: ``python benchmarks/dqn.py [--seeds 1 2] [--skip-basic] [--skip-cartpole]
[--basic-steps 20000] [--cartpole-steps 100000] [--out results.json]``.
Steps count every agent's decisions, as mlagents does. Steps per second are measured
between the first and the last summary (start-up excluded); DQN and SAC run one after the
other, so on a shared machine compare them within one invocation only.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from importlib import resources
from pathlib import Path

import yaml

from mla_plugin_core.testing import TrainingRun, run_mlagents_learn

SOLVED = 0.9
BASIC_STEPS = 20_000
CARTPOLE_STEPS = 100_000
CARTPOLE_CHECKPOINTS = (50_000, 100_000)
CONFIGS = resources.files("mla_dqn") / "configs"

#: mlagents' own config/sac/Basic.yaml (release 21), with max_steps set by the benchmark.
SAC_BASIC = {
    "behaviors": {
        "Basic": {
            "trainer_type": "sac",
            "hyperparameters": {
                "learning_rate": 3.0e-4,
                "learning_rate_schedule": "constant",
                "batch_size": 64,
                "buffer_size": 50000,
                "buffer_init_steps": 0,
                "tau": 0.005,
                "steps_per_update": 10.0,
                "save_replay_buffer": False,
                "init_entcoef": 0.01,
                "reward_signal_steps_per_update": 10.0,
            },
            "network_settings": {"normalize": False, "hidden_units": 20, "num_layers": 2},
            "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
            "max_steps": BASIC_STEPS,  # replaced by --basic-steps
            "time_horizon": 10,
            "summary_freq": 1000,
        }
    }
}


def steps_per_second(run: TrainingRun) -> float | None:
    """Environment steps per second between the first and the last summary mlagents logged
    ("Step: N. Time Elapsed: T s"): start-up (imports, env launch) is left out."""
    found = [
        (int(s), float(t))
        for s, t in re.findall(r"Step: (\d+)\. Time Elapsed: ([\d.]+) s", run.output)
    ]
    if len(found) < 2 or found[-1][1] <= found[0][1]:
        return None
    (first_step, first_time), (last_step, last_time) = found[0], found[-1]
    return (last_step - first_step) / (last_time - first_time)


def reward_at(run: TrainingRun, step: int) -> float | None:
    """Mean return at the last summary at or before ``step``."""
    values = [reward for s, reward in run.curve() if s <= step]
    return values[-1] if values else None


def learn(config, env: str, work: Path, run_id: str, seed: int, **kwargs) -> TrainingRun:
    run = run_mlagents_learn(
        config,
        env=env,
        results_dir=work,
        run_id=run_id,
        seed=seed,
        timeout=3600,
        **kwargs,
    )
    if run.returncode != 0:
        raise RuntimeError(f"{run_id} failed:\n{run.summary()}")
    return run


def basic(work: Path, seed: int, steps: int) -> dict:
    """DQN and SAC on Basic with the same seed, one after the other."""
    results = {}
    dqn_config = yaml.safe_load((CONFIGS / "dqn_basic.yaml").read_text())
    for name, config in (("dqn", dqn_config), ("sac", SAC_BASIC)):
        run = learn(config, "Basic", work, f"basic-{name}-{seed}", seed, max_steps=steps)
        results[name] = {
            "steps_to_solve": run.first_step_reaching(SOLVED),
            "steps_per_second": steps_per_second(run),
            "final_reward": run.final_reward,
            "curve": run.curve(),
        }
    print(f"Basic, seed {seed}, {steps} steps (solved: first summary >= {SOLVED})", flush=True)
    print(f"  {'':<22}{'DQN':>10}{'SAC':>10}")
    for key in ("steps_to_solve", "steps_per_second", "final_reward"):
        cells = "".join(f"{_cell(results[name][key]):>10}" for name in ("dqn", "sac"))
        print(f"  {key:<22}{cells}", flush=True)
    return results


def _cell(value) -> str:
    if value is None:
        return "never"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def cartpole(work: Path, seed: int, steps: int) -> dict:
    config = yaml.safe_load((CONFIGS / "dqn_cartpole.yaml").read_text())
    run = learn(
        config, "gym", work, f"cartpole-{seed}", seed,
        max_steps=steps, env_args=["CartPole-v1"],
    )  # fmt: skip
    result = {
        **{
            f"return_at_{step}": reward_at(run, step)
            for step in CARTPOLE_CHECKPOINTS
            if step <= steps
        },
        "first_step_500": run.first_step_reaching(500.0),
        "steps_per_second": steps_per_second(run),
        "curve": run.curve(),
    }
    print(
        f"CartPole-v1 seed {seed}: {json.dumps({k: v for k, v in result.items() if k != 'curve'})}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--skip-basic", action="store_true")
    parser.add_argument("--skip-cartpole", action="store_true")
    parser.add_argument("--basic-steps", type=int, default=BASIC_STEPS)
    parser.add_argument("--cartpole-steps", type=int, default=CARTPOLE_STEPS)
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON")
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="mla-dqn-bench-") as folder:
        work = Path(folder)
        for seed in args.seeds:
            if not args.skip_basic:
                results[f"basic-{seed}"] = basic(work, seed, args.basic_steps)
            if not args.skip_cartpole:
                results[f"cartpole-{seed}"] = cartpole(work, seed, args.cartpole_steps)
            if args.out:  # after every run, so that a long benchmark leaves partial results
                args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
