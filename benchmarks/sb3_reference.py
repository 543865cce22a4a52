"""Stable-Baselines3's DQN and A2C on Gymnasium's CartPole-v1: the reference for bench.py.

RL Zoo's tuned CartPole settings (the ones ``dqn_cartpole.yaml`` and ``benchmarks/a2c.py``
start from), the same environment-step budget and seeds as the mla-sweep benchmark. The
returns are measured like mlagents' ``Environment/Cumulative Reward``: the mean return of
the training episodes that ended in the last ``window`` steps.

    python benchmarks/sb3_reference.py --steps 100000 --seeds 1 2 3 --out sb3.csv
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

#: episodes ended per (environment step, return), all environments added up
Episodes = list[tuple[int, float]]


def train(algorithm: str, steps: int, seed: int) -> tuple[Episodes, float]:
    """Train one run; return its episodes and environment steps per second."""
    from stable_baselines3 import A2C, DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    episodes: Episodes = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    episodes.append((self.num_timesteps, float(info["episode"]["r"])))
            return True

    if algorithm == "dqn":
        env = make_vec_env("CartPole-v1", n_envs=1, seed=seed)
        model = DQN(
            "MlpPolicy", env, learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
            learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256,
            gradient_steps=128, exploration_fraction=0.16, exploration_final_eps=0.04,
            policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu",
        )  # fmt: skip
    else:
        env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
        model = A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=steps, callback=Record())
    return episodes, steps / (time.perf_counter() - start)


def windowed(episodes: Episodes, at: int, window: int) -> float | None:
    returns = [r for step, r in episodes if at - window < step <= at]
    return statistics.fmean(returns) if returns else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threshold", type=float, default=475.0)
    parser.add_argument("--algorithms", nargs="+", default=["dqn", "a2c"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    window = min(10_000, args.steps // 2)
    summary = max(1, args.steps // 20)
    rows = []
    for algorithm in args.algorithms:
        finals, reached, rates = [], [], []
        for seed in args.seeds:
            episodes, rate = train(algorithm, args.steps, seed)
            finals.append(windowed(episodes, args.steps, window) or 0.0)
            rates.append(rate)
            for at in range(summary, args.steps + 1, summary):
                value = windowed(episodes, at, window)
                if value is not None and value >= args.threshold:
                    reached.append(at)
                    break
            print(f"SB3 {algorithm} seed {seed}: final {finals[-1]:.1f}, {rate:.0f} steps/s")
        rows.append({
            "algorithm": f"SB3 {algorithm.upper()} (rl-zoo settings)",
            "seeds": " ".join(map(str, args.seeds)),
            "final_mean": statistics.fmean(finals),
            "final_std": statistics.pstdev(finals) if len(finals) > 1 else 0.0,
            "final_min": min(finals),
            "steps_to_threshold": f"{statistics.fmean(reached):,.0f}" if reached else "",
            "reached": f"{len(reached)}/{len(args.seeds)}",
            "steps_per_second": statistics.fmean(rates),
        })  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
