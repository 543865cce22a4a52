"""Benchmark: is an mla-envs environment ever the bottleneck of ``mlagents-learn``?

For each environment (Basic with 8 agents, 3DBall with 12), three agent-step rates:

1. **alone**: a fast client loop (mlagents' own ``UnityEnvironment``, constant actions,
   no time-scale pacing) drives the environment process; agent steps per wall second.
   The client's own protobuf parsing is included, so this is a lower bound of what the
   environment sustains.
2. **env-side, in training**: during an ``mlagents-learn`` PPO run (the packaged
   ``ppo_basic.yaml`` / ``ppo_3DBall.yaml``), the environment times its own work per
   exchange (parse actions, simulate, build and serialize the reply) and reports agent
   steps per busy second through the stats side channel; read back from TensorBoard.
3. **consumed**: agent steps per wall second ``mlagents-learn`` takes in that same run,
   between its first and last summary (start-up excluded).

Ratios above 1 mean the environment waits for the trainer. ``mlagents-learn`` runs with
its default time scale 20, which caps 3DBall (0.1 simulated s per decision) at 200
decisions per second, as Unity would; the cap is printed too.

Usage: ``python benchmarks/envs.py [--envs Basic 3DBall] [--out results.json]``.
Steps count every agent's decisions, as mlagents does.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import yaml
from mlagents_envs.environment import UnityEnvironment
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mla_envs.protocol.client import ENV_STEPS_PER_SECOND

#: name -> (console script, packaged config, agents, mlagents-learn steps, summary period)
ENVS = {
    "Basic": ("mla-env-basic", "ppo_basic.yaml", 8, 10_000, 1_000),
    "3DBall": ("mla-env-3dball", "ppo_3DBall.yaml", 12, 24_000, 3_000),
}
ALONE_EXCHANGES = 1_000
TIME_SCALE = 20.0  # mlagents-learn's default
SIMULATED_SECONDS = {"Basic": 0.02, "3DBall": 0.1}  # per decision


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def alone(name: str, folder: Path) -> float:
    """Agent steps per second with a client that only steps (constant actions)."""
    executable, _, agents, _, _ = ENVS[name]
    env = UnityEnvironment(
        file_name=shutil.which(executable),
        base_port=free_port(),
        no_graphics=True,
        log_folder=str(folder),
    )
    try:
        env.reset()
        spec = env.behavior_specs[name]
        actions = spec.action_spec.empty_action(agents)
        for _ in range(20):  # warm-up
            env.set_actions(name, actions)
            env.step()
        start = time.perf_counter()
        steps = 0
        for _ in range(ALONE_EXCHANGES):
            env.set_actions(name, actions)
            env.step()
            steps += len(env.get_steps(name)[0])
        return steps / (time.perf_counter() - start)
    finally:
        env.close()


def in_training(name: str, folder: Path) -> dict[str, float]:
    """Env-side capacity and mlagents-learn consumption in one PPO run."""
    executable, config_name, _, max_steps, summary = ENVS[name]
    config = yaml.safe_load((resources.files("mla_envs") / "configs" / config_name).read_text())
    config["behaviors"][name].update(max_steps=max_steps, summary_freq=summary)
    config_path = folder / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    command = [
        shutil.which("mlagents-learn"),
        str(config_path),
        "--run-id",
        name,
        "--results-dir",
        str(folder),
        "--env",
        shutil.which(executable),
        "--base-port",
        str(free_port()),
        "--seed",
        "1",
        "--no-graphics",
        "--force",
        "--env-args",
        "--stats-period",
        "1",
    ]
    # Exit code 1 is expected while the ONNX export fails with torch >= 2.9
    # (see mla-plugin-core); the run's TensorBoard events are what we read.
    subprocess.run(command, capture_output=True, text=True, timeout=3600)
    events = EventAccumulator(str(folder / name / name))
    events.Reload()
    rewards = events.Scalars("Environment/Cumulative Reward")
    capacity = events.Scalars(ENV_STEPS_PER_SECOND)
    first, last = rewards[0], rewards[-1]
    return {
        "env_side_steps_per_s": float(np.mean([event.value for event in capacity])),
        "consumed_steps_per_s": (last.step - first.step) / (last.wall_time - first.wall_time),
        "final_mean_reward": last.value,
        "steps": last.step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="mla-envs-bench-") as tmp:
        for name in args.envs:
            agents = ENVS[name][2]
            row = {"alone_steps_per_s": alone(name, Path(tmp)), **in_training(name, Path(tmp))}
            row["pacing_cap_steps_per_s"] = agents * TIME_SCALE / SIMULATED_SECONDS[name]
            results[name] = row
    header = (
        f"{'env':8} {'alone':>9} {'env-side':>9} {'consumed':>9} "
        f"{'alone/cons':>10} {'side/cons':>9} {'cap':>7} {'reward':>7} {'steps':>6}"
    )
    print("agent steps per second")
    print(header)
    for name, row in results.items():
        consumed = row["consumed_steps_per_s"]
        print(
            f"{name:8} {row['alone_steps_per_s']:9.0f} {row['env_side_steps_per_s']:9.0f} "
            f"{consumed:9.0f} {row['alone_steps_per_s'] / consumed:10.1f} "
            f"{row['env_side_steps_per_s'] / consumed:9.1f} "
            f"{row['pacing_cap_steps_per_s']:7.0f} {row['final_mean_reward']:7.2f} "
            f"{row['steps']:6d}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
