"""Benchmark: do demonstrations a player streams while DQN trains speed up a sparse task?

The task is the curiosity benchmark's ``SparseChain-v0`` (``benchmarks/curiosity.py``):
positions 0..15, start at 0, the only reward +1 at 15, episodes cut after 32 steps; 8
agents through the Gymnasium bridge. The same DQN settings as there (``n_step: 1``, a
5,000-transition replay, epsilon from 1 to 0.02 over 4,000 steps), through the real
``mlagents-learn``, three arms per seed:

- ``alone``: extrinsic reward only;
- ``start``: ``--episodes`` scripted expert episodes (walk right: 15 decisions each) in a
  ``.demo`` file present when the run starts (``demonstrations: {path, watch: false}``);
- ``stream``: the folder is empty at start (``watch: true``, looked at every 0.5 s); when
  the run's log reaches step ``--stream-at``, a scripted player (``mla_envs.players``)
  records the same number of episodes into it, one record at a time.

Demonstrations: ``batch_size: 16``, DQfD's ``large_margin: 0.8``, ``margin_weight: 1``, no
pre-training. Printed: each run's mean return per summary (every 1,000 steps) and a table
of environment steps until the mean return first reaches ``--solved`` (0.9; the optimum is
1), per seed and arm; "-" when a run never did. Results: mla-dqn's README.

Usage: ``nice -n 10 python benchmarks/streaming.py [--seeds 1 2 3] [--steps 12000]
[--stream-at 2000] [--episodes 5] [--out results.json]``; ``--idle-cost`` only times what a
watched folder with nothing new costs the trainer per ``advance()``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from curiosity import ENV_ID, config
from curves import record

ARMS = ("alone", "start", "stream")
DEMONSTRATIONS = {"batch_size": 16, "large_margin": 0.8, "margin_weight": 1.0}
#: The Gymnasium id as the environment process imports it (this folder is on its path).
GYM_ID = f"curiosity:{ENV_ID}"
RIGHT = 2


def record_expert(folder: Path, episodes: int, delay: float = 0.0) -> None:
    """``episodes`` episodes of the optimal walk, recorded as Unity's agent loop does."""
    from mla_envs.envs.gym_bridge import GymnasiumEnv
    from mla_envs.players import record_episodes
    from mla_envs.recording import DemoWriter

    env = GymnasiumEnv(GYM_ID, num_agents=1)
    with DemoWriter(folder / "expert.demo", env.spec, name="expert") as writer:
        record_episodes(env, lambda obs: [RIGHT], writer, episodes, delay=delay)


def run(arm: str, seed: int, args: argparse.Namespace, work: Path) -> list[tuple[int, float]]:
    from mla_plugin_core.testing import mlagents_learn_command, read_reward_curve

    folder = work / f"demos-{arm}-{seed}"
    folder.mkdir()
    settings = config("extrinsic", args.steps)
    if arm != "alone":
        settings["behaviors"][ENV_ID]["hyperparameters"]["demonstrations"] = {
            "path": str(folder), "watch": arm == "stream", "watch_interval": 0.5,
            **DEMONSTRATIONS,
        }  # fmt: skip
    if arm == "start":
        record_expert(folder, args.episodes)
    command, run_dir = mlagents_learn_command(
        settings, env="gym", env_args=[GYM_ID], results_dir=work, run_id=f"{arm}-{seed}",
        seed=seed,
    )  # fmt: skip
    log = work / f"{arm}-{seed}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        if arm == "stream":
            reached = re.compile(rf"\. Step: {args.stream_at}\. ")
            while not reached.search(log.read_text()):
                if process.poll() is not None:
                    break
                time.sleep(0.2)
            else:
                record_expert(folder, args.episodes, delay=0.01)
        if process.wait(timeout=3600) != 0:
            raise RuntimeError(f"{arm} seed {seed} failed:\n{log.read_text()[-3000:]}")
    finally:
        if process.poll() is None:
            process.kill()
    streamed = re.findall(r"streamed from .*; (\d+) episodes", log.read_text())
    if arm == "stream":
        print(f"  {arm} seed {seed}: {streamed[-1] if streamed else 0} episodes streamed")
    return read_reward_curve(run_dir)[ENV_ID]


def idle_cost(rounds: int = 3, calls: int = 20000) -> None:
    """What a watched folder with nothing new costs the trainer per ``advance()``: the empty
    queue taken and the two stats set (``DQNTrainer.advance``), in microseconds."""
    from mlagents.trainers.stats import StatsReporter
    from mlagents_envs.base_env import ActionSpec

    from mla_dqn.streaming import DemoWatcher
    from mla_plugin_core.testing.builders import vector_behavior_spec

    with tempfile.TemporaryDirectory() as folder:
        spec = vector_behavior_spec(ActionSpec.create_discrete((3,)), obs_size=16)
        watcher = DemoWatcher(folder, spec, interval=2.0, warn=print)
        watcher.start()
        stats = StatsReporter("idle")
        for _ in range(rounds):
            start_cpu, start = time.process_time(), time.perf_counter()
            for _ in range(calls):
                watcher.take()
                stats.set_stat("Demonstrations/Streamed Steps", 0)
                stats.set_stat("Demonstrations/Streamed Episodes", 0)
            cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start
            print(f"idle watcher, per advance: {wall / calls * 1e6:.2f} us wall, "
                  f"{cpu / calls * 1e6:.2f} us CPU")  # fmt: skip
        watcher.stop()


def steps_to_solve(curve: list[tuple[int, float]], solved: float) -> int | None:
    return next((step for step, value in curve if value >= solved), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=12000)
    parser.add_argument("--stream-at", type=int, default=2000, help="a multiple of 1,000")
    parser.add_argument("--episodes", type=int, default=5, help="expert episodes")
    parser.add_argument("--solved", type=float, default=0.9)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--out", type=Path, default=None, help="write the curves as JSON")
    parser.add_argument("--idle-cost", action="store_true", help="only time an idle watcher")
    args = parser.parse_args()
    if args.idle_cost:
        idle_cost()
        return
    # The environment processes import curiosity.py (``curiosity:SparseChain-v0``).
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    curves: dict[str, list[tuple[int, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="mla-streaming-bench-") as folder:
        for seed in args.seeds:
            for arm in args.arms:
                curve = run(arm, seed, args, Path(folder))
                record(curves, arm, seed, curve, args.out)
    print(f"\nenvironment steps until the mean return reaches {args.solved} ('-': never, within "
          f"{args.steps}); {args.episodes} expert episodes; streamed from {args.stream_at}")  # fmt: skip
    print(f"{'seed':<6}" + "".join(f"{arm:>10}" for arm in args.arms))
    for seed in args.seeds:
        cells = [steps_to_solve(curves[f"{arm}-{seed}"], args.solved) for arm in args.arms]
        print(f"{seed:<6}" + "".join(f"{'-' if c is None else c:>10}" for c in cells))


if __name__ == "__main__":
    main()
