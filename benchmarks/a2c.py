"""Benchmark A2C (trainer_type: a2c) through the real ``mlagents-learn``.

Runs, one after the other (2 cores: parallel runs would slow each other down):

1. 3DBall with mla-a2c's shipped ``a2c_3DBall.yaml``;
2. 3DBall with mlagents' built-in PPO and Unity's own 3DBall hyperparameters;
3. CartPole-v1 through mla-envs' Gymnasium bridge, A2C with Stable-Baselines3's tuned
   CartPole hyperparameters (rl-zoo ``a2c.yml``: 8 envs, n_steps 5, RMSprop, lr 7e-4).

and prints, per run, the mean episode reward (``Environment/Cumulative Reward``) at each
checkpoint step (the mean of the summaries of the last ``--window`` steps before it) and the environment steps per second (steps counted as mlagents counts
them: one per agent decision, all agents added up; wall time of the whole run).

    python benchmarks/a2c.py                                  # the full budget
    python benchmarks/a2c.py --ball-steps 100000 --cartpole-steps 100000 --runs a2c-3dball
    python benchmarks/a2c.py --runs ppo-3dball --json ppo.json   # one run per process
    python benchmarks/a2c.py --json results.json

Goals (issue 5): 3DBall >= 90 within 500k steps at a throughput >= PPO's; CartPole-v1
near 500 within 500k (what SB3's tuned A2C reaches).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

import mla_a2c
from mla_plugin_core.testing import run_mlagents_learn

#: Seconds before a run is killed: a hung run, not a slow one (500k steps take minutes).
RUN_TIMEOUT = 4 * 3600.0
RUNS = ("a2c-3dball", "ppo-3dball", "a2c-cartpole")
A2C_3DBALL = Path(mla_a2c.__file__).parent / "configs" / "a2c_3DBall.yaml"

#: mlagents' built-in PPO with Unity's ``config/ppo/3DBall.yaml`` hyperparameters.
PPO_3DBALL = {
    "trainer_type": "ppo",
    "hyperparameters": {
        "batch_size": 64,
        "buffer_size": 12000,
        "learning_rate": 3.0e-4,
        "beta": 1.0e-3,
        "epsilon": 0.2,
        "lambd": 0.99,
        "num_epoch": 3,
        "learning_rate_schedule": "linear",
    },
    "network_settings": {"normalize": True, "hidden_units": 128, "num_layers": 2},
    "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
    "time_horizon": 1000,
}

#: SB3 rl-zoo's A2C for CartPole-v1 (n_envs 8, n_steps 5, ent_coef 0, gae_lambda 1,
#: RMSprop, lr 7e-4 constant, 64x64 tanh network), in mlagents' terms.
A2C_CARTPOLE = {
    "trainer_type": "a2c",
    "hyperparameters": {
        "buffer_size": 40,
        "batch_size": 40,
        "learning_rate": 7.0e-4,
        "learning_rate_schedule": "constant",
        "beta": 0.0,
        "lambd": 1.0,
        "value_loss_coef": 0.5,
        "max_grad_norm": 0.5,
        "normalize_advantage": False,
        "optimizer": "rmsprop",
        "activation": "tanh",
    },
    "network_settings": {"normalize": False, "hidden_units": 64, "num_layers": 2},
    "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
    "time_horizon": 5,
}


def run(
    name: str,
    behavior: str,
    settings: dict,
    env: str,
    max_steps: int,
    summary_freq: int,
    workdir: Path,
    env_args: tuple[str, ...] = (),
    seed: int = 1,
) -> dict:
    """One mlagents-learn run (the testing kit's runner); returns its reward curve and
    throughput."""
    settings = {**settings, "max_steps": max_steps, "summary_freq": summary_freq}
    settings["checkpoint_interval"] = max_steps
    print(f"[{name}] {max_steps} steps ...", flush=True)
    start = time.monotonic()
    result = run_mlagents_learn(
        {"behaviors": {behavior: settings}},
        env=env,
        results_dir=workdir,
        run_id=name,
        seed=seed,
        env_args=env_args,
        timeout=RUN_TIMEOUT,
    )
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        print(result.output[-3000:], file=sys.stderr)
    return {
        "run": name,
        "exit_code": result.returncode,
        "seconds": round(elapsed, 1),
        "steps_per_second": round(max_steps / elapsed, 1),
        "curve": sorted(result.rewards.get(behavior, [])),
    }


def reward_at(curve: list[tuple[int, float]], step: int, window: int) -> float | None:
    """Mean of the summaries in (step - window, step]: one summary is noisy on 3DBall,
    where a few long episodes end per summary (None if the run never got there)."""
    values = [value for summary_step, value in curve if step - window < summary_step <= step]
    return round(sum(values) / len(values), 2) if values else None


def report(result: dict, checkpoints: list[int], window: int) -> dict:
    rewards = {str(step): reward_at(result["curve"], step, window) for step in checkpoints}
    line = ", ".join(f"{int(s) // 1000}k: {r}" for s, r in rewards.items())
    print(
        f"[{result['run']}] exit {result['exit_code']}; reward {line}; "
        f"{result['steps_per_second']} steps/s ({result['seconds']} s)",
        flush=True,
    )
    return {**result, "rewards": rewards}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ball-steps", type=int, default=500_000, help="3DBall budget")
    parser.add_argument("--cartpole-steps", type=int, default=500_000, help="CartPole budget")
    parser.add_argument(
        "--runs",
        nargs="+",
        choices=RUNS,
        default=list(RUNS),
        help="which runs, in this order (default: all)",
    )
    parser.add_argument(
        "--window", type=int, default=20_000, help="steps averaged before each checkpoint"
    )
    parser.add_argument("--seed", type=int, default=1, help="mlagents-learn --seed")
    parser.add_argument(
        "--a2c-3dball-config",
        type=Path,
        default=A2C_3DBALL,
        help="YAML of the a2c-3dball run (default: the shipped a2c_3DBall.yaml)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="results folder (default: a temp dir)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="a2c-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ball_checkpoints = [s for s in (100_000, 250_000, 500_000) if s <= args.ball_steps]
    cart_checkpoints = [s for s in (100_000, 500_000) if s <= args.cartpole_steps]
    summary = max(args.ball_steps // 50, 1000)
    runs = {
        "a2c-3dball": lambda: run(
            "a2c-3dball",
            "3DBall",
            yaml.safe_load(args.a2c_3dball_config.read_text())["behaviors"]["3DBall"],
            "mla-env-3dball",
            args.ball_steps,
            summary,
            workdir,
            seed=args.seed,
        ),
        "ppo-3dball": lambda: run(
            "ppo-3dball",
            "3DBall",
            PPO_3DBALL,
            "mla-env-3dball",
            args.ball_steps,
            summary,
            workdir,
            seed=args.seed,
        ),
        "a2c-cartpole": lambda: run(
            "a2c-cartpole",
            "CartPole-v1",
            A2C_CARTPOLE,
            "mla-env-gym",
            args.cartpole_steps,
            max(args.cartpole_steps // 50, 1000),
            workdir,
            env_args=("CartPole-v1",),
            seed=args.seed,
        ),
    }
    results = []
    for name in args.runs:
        checkpoints = cart_checkpoints if name == "a2c-cartpole" else ball_checkpoints
        results.append(report(runs[name](), checkpoints, args.window))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
