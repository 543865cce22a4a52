"""Benchmark: does curiosity make mla-dqn learn a sparse-reward task extrinsic alone does not?

The task, ``SparseChain-v0`` (defined and registered here, served through the Gymnasium
bridge ``mla-env-gym curiosity:SparseChain-v0``): positions ``0 .. 15`` observed one-hot,
start at 0, actions stay / left / right (as Basic), the only reward +1 on reaching 15,
which ends the episode; episodes are cut (truncated) after 32 steps. The optimum walks
right 15 steps (return 1); a uniformly random walk rarely gets there, so epsilon-greedy
exploration seldom sees the reward.

Two arms through the real ``mlagents-learn``, the same DQN settings (``n_step: 1`` unless
``--n-step``: since mla-plugin-core 0.2 curiosity learns from 1-step rows at any ``n_step``;
a 5,000-transition replay) and seed: ``extrinsic`` only, and
``extrinsic`` + ``curiosity`` (mlagents' provider, strength 0.02 as in mlagents' example
configs). The mean episode return per summary (every 1,000 steps) is printed per seed and
arm, and for the curiosity arm its forward and inverse losses. Results: mla-dqn's README.

Usage: ``nice -n 10 python benchmarks/curiosity.py [--seeds 1 2] [--steps 30000]
[--arms extrinsic curiosity] [--n-step 3] [--out results.json]``. Steps count every agent's decisions
(8 agents).
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from curves import record
from gymnasium import spaces

ENV_ID = "SparseChain-v0"
LENGTH = 16  # positions 0 .. LENGTH - 1; the goal is the last one
MAX_EPISODE_STEPS = 32
MOVES = np.array([0, -1, 1])  # stay, left, right (as Basic)


class SparseChain(gym.Env):
    """A chain of ``LENGTH`` positions: one reward, at the far end."""

    metadata = {"render_modes": []}

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0.0, 1.0, (LENGTH,), np.float32)
        self.action_space = spaces.Discrete(len(MOVES))
        self.position = 0

    def _obs(self) -> np.ndarray:
        return np.eye(LENGTH, dtype=np.float32)[self.position]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = 0
        return self._obs(), {}

    def step(self, action):
        self.position = int(np.clip(self.position + MOVES[int(action)], 0, LENGTH - 1))
        reached = self.position == LENGTH - 1
        return self._obs(), float(reached), reached, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=SparseChain, max_episode_steps=MAX_EPISODE_STEPS)

#: DQN settings shared by both arms: dqn_basic.yaml's, with n_step 1 (which curiosity
#: needs), a 5,000-transition replay and a slightly longer exploration schedule.
DQN = {
    "trainer_type": "dqn",
    "hyperparameters": {
        "learning_rate": 1.0e-3,
        "learning_rate_schedule": "constant",
        "batch_size": 64,
        "buffer_size": 5000,
        "buffer_init_steps": 500,
        "steps_per_update": 8.0,
        "reward_signal_steps_per_update": 8.0,
        "tau": 0.02,
        "target_update_interval": 0,
        "exploration_schedule": "linear",
        "exploration_initial_eps": 1.0,
        "exploration_final_eps": 0.02,
        "exploration_steps": 4000,
        "double_dqn": True,
        "dueling": False,
        "n_step": 1,
        "max_grad_norm": 10.0,
        "save_replay_buffer": False,
    },
    "network_settings": {"normalize": False, "hidden_units": 64, "num_layers": 2},
    "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
    "time_horizon": 64,
    "summary_freq": 1000,
    "checkpoint_interval": 1000000,
    "keep_checkpoints": 1,
}
CURIOSITY = {"gamma": 0.99, "strength": 0.02, "learning_rate": 3.0e-4}


def config(arm: str, steps: int, buffer_size: int | None = None, n_step: int = 1) -> dict:
    """The trainer YAML of one arm (``extrinsic`` or ``curiosity``)."""
    behavior = copy.deepcopy(DQN)
    behavior["max_steps"] = steps
    behavior["hyperparameters"]["n_step"] = n_step
    if buffer_size is not None:
        behavior["hyperparameters"]["buffer_size"] = buffer_size
    if arm == "curiosity":
        behavior["reward_signals"]["curiosity"] = dict(CURIOSITY)
    return {"behaviors": {ENV_ID: behavior}}


def run(
    arm: str, seed: int, steps: int, work: Path, buffer_size: int | None = None, n_step: int = 1
) -> list[tuple[int, float]]:
    from mla_plugin_core.testing import run_mlagents_learn

    result = run_mlagents_learn(
        config(arm, steps, buffer_size, n_step),
        env="gym",
        env_args=[f"curiosity:{ENV_ID}"],
        results_dir=work,
        run_id=f"{arm}-{seed}",
        seed=seed,
        timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{arm} seed {seed} failed:\n{result.summary()}")
    if arm == "curiosity":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(work / f"{arm}-{seed}" / ENV_ID), {"scalars": 0})
        events.Reload()
        for tag in ("Losses/Curiosity Forward Loss", "Losses/Curiosity Inverse Loss"):
            cells = " ".join(f"{e.step}:{e.value:.4f}" for e in events.Scalars(tag))
            print(f"  seed {seed} {tag}: {cells}", flush=True)
    return result.curve(ENV_ID)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=30000)
    parser.add_argument("--arms", nargs="+", default=["extrinsic", "curiosity"])
    parser.add_argument("--out", type=Path, default=None, help="write the curves as JSON")
    parser.add_argument("--buffer-size", type=int, default=None, help="replay capacity")
    parser.add_argument("--results-dir", type=Path, default=None, help="keep the runs here")
    parser.add_argument("--n-step", type=int, default=1, help="DQN's n_step (both arms)")
    args = parser.parse_args()
    # The environment process imports this module (``curiosity:SparseChain-v0``).
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    results: dict[str, list[tuple[int, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mla-curiosity-bench-") as folder:
        if args.results_dir is not None:
            folder = str(args.results_dir)
        for seed in args.seeds:
            for arm in args.arms:
                curve = run(arm, seed, args.steps, Path(folder), args.buffer_size, args.n_step)
                record(results, arm, seed, curve, args.out)


if __name__ == "__main__":
    main()
