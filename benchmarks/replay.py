"""The trainers' replay (``StepReplay``) next to raw numpy and to 0.1's buffer, in one run.

Data: 8 agents hand in trajectories of up to 64 steps (the shipped ``time_horizon``;
episodes of 100 to 300 steps end some of them early) of an 8-float observation, one
discrete branch of 5 actions and one reward signal.

1. Inserts, through the trainer's path, in steps per second:

   - ``StepReplay``: the trainer now (``OffPolicyPluginTrainer._store_drained``): the
     trajectories one ``advance()`` drains go to one ``StepReplay.add_many`` (checks, the
     rows, the links to the agents' previous steps, which rows became complete). Timed
     with 1 trajectory per advance (one environment whose agents' trajectories end at
     different steps: the common case) and with 8 (8 agents in step, or 8 environments);
   - 0.1's buffer: the same method as it was at ``BEFORE`` (loaded from git in this run): the
     held step, ``NStepAccumulator.add_to`` and ``ReplayBuffer`` with ``n_step: 3``;
   - raw numpy: one slice copy per trajectory of each column ``StepReplay`` stores (obs,
     next obs, actions, masks, next masks, rewards, dones, truncated) into preallocated
     arrays, no checks: the floor of any insert.

   Each is the best of ``--rounds`` fills (interleaved) after one untimed fill, so that every
   slot has been written once (first writes cost page faults).

2. Samples, median microseconds per call (interleaved repeats):

   - 64 n-step transitions, ``n = 3``: ``StepReplay.sample`` (draws, follows the links,
     sums the rewards) next to raw numpy fancy indexing ``arr[idx]`` of the same columns
     for 64 rows, and to 0.1's ``ReplayBuffer.sample`` (its rows were summed at insert);
   - 32 sequences of 16 steps: ``StepReplay.sample_sequences`` next to raw fancy indexing
     of the same 32 x 16 rows (``arr[idx]`` with ``idx`` of shape ``[32, 16]``).

    python benchmarks/replay.py                # 40,000 steps, about a minute
    python benchmarks/replay.py --steps 200000
"""

from __future__ import annotations

import argparse
import subprocess
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mla_plugin_core.replay import NStepAccumulator, ReplayBuffer, StepReplay
from mla_plugin_core.replay.transitions import Transitions
from mla_plugin_core.trainers.off_policy import OffPolicyPluginTrainer

#: The commit whose ``off_policy.py`` is timed as 0.1's buffer (its last with NStepAccumulator).
BEFORE = "86df1a9"

OBS_SIZE = 8
N_ACTIONS = 5
GAMMA = 0.99
N_AGENTS = 8
HORIZON = 64
N_STEP = 3
N_STEP_BATCH = 64
SEQUENCES, SEQUENCE_LENGTH = 32, 16


def trajectories(total: int, rng: np.random.Generator) -> list[tuple[str, Transitions, bool]]:
    """``(agent, 1-step rows, episode ended)`` of 8 agents in turn, ``total`` steps."""
    frames = {
        f"agent-{a}": rng.standard_normal((HORIZON + 1, OBS_SIZE), dtype=np.float32)
        for a in range(N_AGENTS)
    }
    left = {agent: int(rng.integers(100, 300)) for agent in frames}  # steps in the episode
    result: list[tuple[str, Transitions, bool]] = []
    count = 0
    while count < total:
        for agent, frame in frames.items():
            length = min(HORIZON, left[agent])
            ended = length == left[agent]
            left[agent] = int(rng.integers(100, 300)) if ended else left[agent] - length
            dones = np.zeros(length, bool)
            dones[-1] = ended
            steps = Transitions(
                obs=[frame[:length]],
                continuous_actions=np.zeros((length, 0), np.float32),
                discrete_actions=rng.integers(0, N_ACTIONS, (length, 1), dtype=np.int32),
                action_masks=np.ones((length, N_ACTIONS), bool),
                rewards={"extrinsic": rng.standard_normal(length, dtype=np.float32)},
                dones=dones,
                truncated=np.zeros(length, bool),
                next_obs=[frame[1 : length + 1]],
                next_action_masks=np.ones((length, N_ACTIONS), bool),
            )
            result.append((agent, steps, ended))
            count += length
    return result


def module_at(commit: str, path: str, name: str) -> types.ModuleType:
    """The module in ``path`` (from the repository root) as it was at ``commit``, run here
    (its imports are today's modules)."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(name)
    module.__file__ = f"{commit}:{path}"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def step_replay(capacity: int, **kwargs) -> StepReplay:
    return StepReplay(capacity, [(OBS_SIZE,)], 0, [N_ACTIONS], {"extrinsic": GAMMA}, **kwargs)


def now_path(capacity: int, per_advance: int) -> Callable[[list], object]:
    """The trainer's store now, on a stand-in holding what it reads: each trajectory is
    appended to the drained ones, and ``OffPolicyPluginTrainer._store_drained`` stores
    them with one ``StepReplay.add_many`` every ``per_advance`` trajectories (the ones one
    ``advance()`` drains)."""
    import collections
    import threading

    trainer = types.SimpleNamespace(
        replay=step_replay(capacity, n_step=N_STEP),
        _replay_lock=threading.RLock(),
        _drained=collections.deque(),
    )
    store = OffPolicyPluginTrainer._store_drained

    def fill(items: list) -> None:
        for i, (agent, steps, _) in enumerate(items, 1):
            trainer._drained.append((agent, steps, None))
            if i % per_advance == 0:
                store(trainer)  # type: ignore[arg-type]
        store(trainer)  # type: ignore[arg-type]

    fill.replay = trainer.replay  # type: ignore[attr-defined]
    return fill


def before_path(capacity: int, store: Callable) -> Callable[[list], object]:
    """0.1's ``_store`` (held step, accumulator, ReplayBuffer) on a stand-in."""
    trainer = types.SimpleNamespace(
        _held_steps={},
        n_step_accumulator=NStepAccumulator(N_STEP, {"extrinsic": GAMMA}),
        replay=ReplayBuffer(capacity, [(OBS_SIZE,)], 0, [N_ACTIONS], ["extrinsic"], seed=0),
    )

    def fill(items: list) -> None:
        for agent, steps, ended in items:
            store(trainer, agent, steps, ended)

    fill.replay = trainer.replay  # type: ignore[attr-defined]
    return fill


RAW_LAYOUT = {
    "obs": ((OBS_SIZE,), np.float32),
    "next_obs": ((OBS_SIZE,), np.float32),
    "discrete_actions": ((1,), np.int32),
    "action_masks": ((N_ACTIONS,), bool),
    "next_action_masks": ((N_ACTIONS,), bool),
    "rewards": ((), np.float32),
    "dones": ((), bool),
    "truncated": ((), bool),
}


def raw_arrays(capacity: int) -> dict[str, np.ndarray]:
    return {k: np.zeros((capacity, *shape), dtype) for k, (shape, dtype) in RAW_LAYOUT.items()}


def columns_of(steps: Transitions) -> dict[str, np.ndarray]:
    """The columns of ``RAW_LAYOUT`` of a trajectory."""
    return {
        "obs": steps.obs[0],
        "next_obs": steps.next_obs[0],
        "discrete_actions": steps.discrete_actions,
        "action_masks": steps.action_masks,
        "next_action_masks": steps.next_action_masks,
        "rewards": steps.rewards["extrinsic"],
        "dones": steps.dones,
        "truncated": steps.truncated,
    }


def copy_into(arrays: dict[str, np.ndarray], items: list) -> None:
    """Slice copies of each trajectory's columns, one after the other (restarting at 0)."""
    position, capacity = 0, len(arrays["dones"])
    for _, steps, _ in items:
        length = len(steps.dones)
        if position + length > capacity:
            position = 0
        for key, column in columns_of(steps).items():
            arrays[key][position : position + length] = column
        position += length


def raw_path(capacity: int) -> Callable[[list], object]:
    """Slice copies of each trajectory's columns into preallocated arrays."""
    arrays = raw_arrays(capacity)
    return lambda items: copy_into(arrays, items)


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def insert_benchmark(items: list, rounds: int) -> dict[str, float]:
    """Best seconds per fill of every path."""
    count = sum(len(steps.dones) for _, steps, _ in items)
    old = module_at(
        BEFORE,
        "packages/mla-plugin-core/src/mla_plugin_core/trainers/off_policy.py",
        "off_policy_0_1",
    )
    paths = {
        "StepReplay, 1/advance": now_path(count, 1),
        f"StepReplay, {N_AGENTS}/advance": now_path(count, N_AGENTS),
        "0.1 buffer": before_path(count, old.OffPolicyPluginTrainer._store),
        "raw numpy": raw_path(count),
    }
    for fill in paths.values():
        fill(items)  # warm-up: every slot written once
    best = {name: np.inf for name in paths}
    for _ in range(rounds):
        for name, fill in paths.items():
            best[name] = min(best[name], timed(lambda fill=fill: fill(items)))
    return best


def sample_benchmark(items: list, repeats: int) -> dict[str, float]:
    """Median seconds per call of every sampler, interleaved."""
    count = sum(len(steps.dones) for _, steps, _ in items)
    transitions = step_replay(count, n_step=N_STEP, seed=0)
    sequences = step_replay(count, seed=0, sequence_length=SEQUENCE_LENGTH, sequence_overlap=8)
    old = ReplayBuffer(count, [(OBS_SIZE,)], 0, [N_ACTIONS], ["extrinsic"], seed=0)
    accumulator = NStepAccumulator(N_STEP, {"extrinsic": GAMMA})
    for agent, steps, _ in items:
        transitions.add(agent, steps)
        sequences.add(agent, steps)
        old.add(accumulator.add([agent] * len(steps.dones), steps))
    arrays = raw_arrays(count)
    copy_into(arrays, items)  # the same steps, for the raw gathers
    rng = np.random.default_rng(1)

    def raw_rows(shape: tuple[int, ...]) -> Callable[[], object]:
        def gather() -> list[np.ndarray]:
            idx = rng.integers(0, count, shape)
            return [array[idx] for array in arrays.values()]

        return gather

    samplers = {
        "n-step: StepReplay.sample": lambda: transitions.sample(N_STEP_BATCH),
        "n-step: raw arr[idx]": raw_rows((N_STEP_BATCH,)),
        "n-step: 0.1 ReplayBuffer.sample": lambda: old.sample(N_STEP_BATCH),
        "sequences: StepReplay.sample_sequences": lambda: sequences.sample_sequences(SEQUENCES),
        "sequences: raw arr[idx]": raw_rows((SEQUENCES, SEQUENCE_LENGTH)),
    }
    times: dict[str, list[float]] = {name: [] for name in samplers}
    for sampler in samplers.values():
        sampler()
    for _ in range(repeats):
        for name, sampler in samplers.items():
            times[name].append(timed(sampler))
    return {name: float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40_000, help="steps stored")
    parser.add_argument("--rounds", type=int, default=5, help="fills per insert path (best)")
    parser.add_argument("--repeats", type=int, default=2000, help="sample calls per sampler")
    args = parser.parse_args()
    items = trajectories(args.steps, np.random.default_rng(0))
    count = sum(len(steps.dones) for _, steps, _ in items)

    best = insert_benchmark(items, args.rounds)
    print(
        f"inserts: {count:,} steps of {N_AGENTS} agents, trajectories of <= {HORIZON} steps, "
        f"{OBS_SIZE}-float observations; best of {args.rounds} fills"
    )
    print(f"{'path':<26}{'steps/s':>14}{'time / raw':>12}")
    for name, seconds in best.items():
        print(f"{name:<26}{count / seconds:>14,.0f}{seconds / best['raw numpy']:>12.2f}")

    median = sample_benchmark(items, args.repeats)
    print(f"\nsamples: median of {args.repeats:,} calls each, interleaved")
    print(f"{'sampler':<42}{'us/call':>10}{'time / raw':>12}")
    for name, seconds in median.items():
        raw = median[
            "n-step: raw arr[idx]" if name.startswith("n-step") else "sequences: raw arr[idx]"
        ]
        print(f"{name:<42}{seconds * 1e6:>10.1f}{seconds / raw:>12.2f}")
    print(
        "\ntargets (#24): StepReplay inserts <= 3x raw, n-step samples <= 3x raw "
        "(0.1's ReplayBuffer cannot sample sequences)"
    )


if __name__ == "__main__":
    main()
