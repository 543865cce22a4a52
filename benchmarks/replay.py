"""Insert and sample throughput of ``mla_plugin_core.replay`` next to mlagents' AgentBuffer.

The same transitions (an 8-float vector observation and its next observation, one discrete
branch of 5 actions, one reward, a done flag) go into three stores:

- ours: :class:`~mla_plugin_core.replay.ReplayBuffer` (and the prioritized one, for
  information), which also stores and returns action masks, next masks, truncated flags,
  discounts, indices and weights;
- mlagents' ``AgentBuffer``, what its off-policy trainers (SAC, POCA's replay) draw from
  with ``sample_mini_batch``; its fields are lists of per-row numpy arrays. It is filled
  with ``AgentBufferField.extend`` over whole chunks (its fastest path; mlagents itself
  appends trajectories step by step) and timed twice: ``sample_mini_batch`` alone, and
  followed by ``to_ndarray()`` per field, which is what a trainer needs and what ours
  returns;
- raw numpy: slice assignment to insert and ``arr[idx]`` per field (the same fields ours
  returns) to sample, the floor for any numpy ring buffer.

Each sample timing is the median of many calls of ``--batch`` transitions.

    python benchmarks/replay.py               # 1,000,000 transitions, about a minute
    python benchmarks/replay.py --size 100000 # quick
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from mlagents.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix

from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer, Transitions

OBS_SIZE = 8
N_ACTIONS = 5  # one discrete branch
GAMMA = 0.99


def make_data(size: int, rng: np.random.Generator) -> Transitions:
    """``size`` random transitions, every field ``[size, ...]``."""
    return Transitions(
        obs=[rng.standard_normal((size, OBS_SIZE), dtype=np.float32)],
        continuous_actions=np.zeros((size, 0), np.float32),
        discrete_actions=rng.integers(0, N_ACTIONS, (size, 1), dtype=np.int32),
        action_masks=np.ones((size, N_ACTIONS), bool),
        rewards={"extrinsic": rng.standard_normal(size, dtype=np.float32)},
        dones=rng.random(size) < 0.01,
        truncated=np.zeros(size, bool),
        next_obs=[rng.standard_normal((size, OBS_SIZE), dtype=np.float32)],
        next_action_masks=np.ones((size, N_ACTIONS), bool),
        discounts={"extrinsic": np.full(size, GAMMA, np.float32)},
    )


def chunk(data: Transitions, start: int, stop: int) -> Transitions:
    """Rows ``[start, stop)`` of ``data``."""
    return Transitions(
        obs=[o[start:stop] for o in data.obs],
        continuous_actions=data.continuous_actions[start:stop],
        discrete_actions=data.discrete_actions[start:stop],
        action_masks=data.action_masks[start:stop],
        rewards={k: v[start:stop] for k, v in data.rewards.items()},
        dones=data.dones[start:stop],
        truncated=data.truncated[start:stop],
        next_obs=[o[start:stop] for o in data.next_obs],
        next_action_masks=data.next_action_masks[start:stop],
        discounts={k: v[start:stop] for k, v in data.discounts.items()},  # type: ignore[union-attr]
    )


def raw_columns(data: Transitions) -> dict[str, np.ndarray]:
    """The columns ours stores, as plain arrays (float flags as mlagents keeps them)."""
    return {
        "obs": data.obs[0],
        "next_obs": data.next_obs[0],
        "continuous_actions": data.continuous_actions,
        "discrete_actions": data.discrete_actions,
        "action_masks": data.action_masks,
        "next_action_masks": data.next_action_masks,
        "rewards": data.rewards["extrinsic"],
        "discounts": data.discounts["extrinsic"],  # type: ignore[index]
        "dones": data.dones,
        "truncated": data.truncated,
    }


def agent_buffer_columns(data: Transitions) -> dict:
    """AgentBuffer key -> array, the fields an off-policy mlagents trainer stores."""
    return {
        (ObservationKeyPrefix.OBSERVATION, 0): data.obs[0],
        (ObservationKeyPrefix.NEXT_OBSERVATION, 0): data.next_obs[0],
        BufferKey.DISCRETE_ACTION: data.discrete_actions,
        BufferKey.ENVIRONMENT_REWARDS: data.rewards["extrinsic"],
        BufferKey.DONE: data.dones.astype(np.float32),
    }


def timed(function: Callable[[], object]) -> float:
    """Seconds one call of ``function`` takes."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median seconds per call over ``repeats`` calls (after one warm-up call)."""
    function()
    return float(np.median([timed(function) for _ in range(repeats)]))


def fill(size: int, insert_batch: int, insert: Callable[[int, int], object]) -> float:
    """Seconds to insert rows ``[0, size)`` as chunks of ``insert_batch``."""
    start = time.perf_counter()
    for begin in range(0, size, insert_batch):
        insert(begin, min(begin + insert_batch, size))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="transitions to fill")
    parser.add_argument("--batch", type=int, default=256, help="transitions per sample call")
    parser.add_argument("--insert-batch", type=int, default=1000, help="rows per insert call")
    parser.add_argument("--repeats", type=int, default=2000, help="sample calls timed (ours, raw)")
    parser.add_argument(
        "--agent-buffer-repeats", type=int, default=300, help="sample calls timed (AgentBuffer)"
    )
    args = parser.parse_args()
    size, batch = args.size, args.batch
    rng = np.random.default_rng(0)
    data = make_data(size, rng)

    ours = ReplayBuffer(size, [(OBS_SIZE,)], 0, [N_ACTIONS], ["extrinsic"], seed=0)
    prioritized = PrioritizedReplayBuffer(
        size, [(OBS_SIZE,)], 0, [N_ACTIONS], ["extrinsic"], seed=0
    )
    columns = raw_columns(data)
    raw = {key: np.zeros_like(column) for key, column in columns.items()}
    agent_buffer = AgentBuffer()
    agent_columns = agent_buffer_columns(data)

    def insert_raw(begin: int, end: int) -> None:
        for key, column in columns.items():
            raw[key][begin:end] = column[begin:end]

    def insert_agent_buffer(begin: int, end: int) -> None:
        for key, column in agent_columns.items():
            agent_buffer[key].extend(list(column[begin:end]))

    fill_seconds = {
        "ours": fill(size, args.insert_batch, lambda b, e: ours.add(chunk(data, b, e))),
        "ours, prioritized": fill(
            size, args.insert_batch, lambda b, e: prioritized.add(chunk(data, b, e))
        ),
        "AgentBuffer (extend)": fill(size, args.insert_batch, insert_agent_buffer),
        "raw numpy": fill(size, args.insert_batch, insert_raw),
    }

    sample_rng = np.random.default_rng(1)
    np.random.seed(1)  # AgentBuffer samples with the global generator

    def sample_raw() -> list[np.ndarray]:
        idx = sample_rng.integers(0, size, batch)
        return [column[idx] for column in raw.values()]

    def sample_agent_buffer_arrays() -> list[np.ndarray]:
        mini_batch = agent_buffer.sample_mini_batch(batch)
        return [mini_batch[key].to_ndarray() for key in agent_columns]

    sample_seconds = {
        "ours": median_seconds(lambda: ours.sample(batch), args.repeats),
        "ours, prioritized": median_seconds(lambda: prioritized.sample(batch), args.repeats),
        "AgentBuffer.sample_mini_batch": median_seconds(
            lambda: agent_buffer.sample_mini_batch(batch), args.agent_buffer_repeats
        ),
        "AgentBuffer + to_ndarray": median_seconds(
            sample_agent_buffer_arrays, args.agent_buffer_repeats
        ),
        "raw numpy arr[idx]": median_seconds(sample_raw, args.repeats),
    }

    print(
        f"{size:,} transitions ({OBS_SIZE} floats + next obs, 1 discrete branch of "
        f"{N_ACTIONS}, reward, done); inserts of {args.insert_batch:,} rows; samples of "
        f"{batch} (median of {args.repeats:,} calls, {args.agent_buffer_repeats} for AgentBuffer)"
    )
    print(f"\n{'insert':<32}{'seconds':>10}{'transitions/s':>16}{'ours is x faster':>18}")
    for name, seconds in fill_seconds.items():
        speedup = seconds / fill_seconds["ours"]
        print(f"{name:<32}{seconds:>10.3f}{size / seconds:>16,.0f}{speedup:>18.2f}")
    print(f"\n{'sample':<32}{'us/call':>10}{'samples/s':>16}{'ours is x faster':>18}")
    for name, seconds in sample_seconds.items():
        speedup = seconds / sample_seconds["ours"]
        print(f"{name:<32}{seconds * 1e6:>10.1f}{batch / seconds:>16,.0f}{speedup:>18.2f}")
    versus_agent_buffer = sample_seconds["AgentBuffer + to_ndarray"] / sample_seconds["ours"]
    versus_raw = sample_seconds["ours"] / sample_seconds["raw numpy arr[idx]"]
    print(
        f"\nsample: ours vs AgentBuffer + to_ndarray: {versus_agent_buffer:.1f}x faster "
        f"(target >= 20x); ours vs raw numpy: {versus_raw:.2f}x the time (target <= 2x)"
    )


if __name__ == "__main__":
    main()
