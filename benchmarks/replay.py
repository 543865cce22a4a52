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

Then the trainer's insert path: 8 agents hand in trajectories of up to 64 steps (the
``time_horizon`` of the shipped configs; episodes of 100 to 300 steps end some of them
early) to ``OffPolicyPluginTrainer._store``, which holds each agent's last step, runs the
n-step accumulator (``n_step=3``) and inserts into the replay buffer. Timed for an 8-float
and a ``3x84x84`` observation, next to:

- the same path as it was at commit ``BASELINE`` (a Python loop per row), loaded from git
  history at run time, so both are measured in the same run;
- the n-step floor: the writes of the n-step transitions alone (``n_step_floor_path``): the
  columns from the previous trajectory's last steps and this one's, the n-step sums, the
  discounts and flags; no checks and none of the trainer's bookkeeping. No path that stores
  n-step transitions at insert time can be faster;
- raw numpy: one slice copy per trajectory of each column the buffer stores (obs, next obs,
  actions, masks, next masks, rewards, dones, truncated; the discounts as one value; the
  zero-width continuous actions skipped, as the trainer's path skips them) into
  preallocated arrays, the floor of any insert.

Each is the best of ``--rounds`` fills (interleaved) after one untimed fill, so that every slot of the
buffer (its capacity: all the steps, at most 100,000) has been written once: first writes to
fresh memory cost page faults, the same for all, that would hide the difference.

    python benchmarks/replay.py               # 1,000,000 transitions, a few minutes
    python benchmarks/replay.py --size 100000 # quick
    python benchmarks/replay.py --inserts-only
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
from mlagents.trainers.buffer import AgentBuffer, BufferKey, ObservationKeyPrefix

import mla_plugin_core.replay
from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.replay.nstep import _n_step_sums  # numpy's correlate, without its dispatch
from mla_plugin_core.replay.transitions import Transitions
from mla_plugin_core.trainers.off_policy import OffPolicyPluginTrainer

#: The commit whose replay.py and off_policy.py are timed as "before" (a loop per row).
BASELINE = "b2bcf47cee72e7d37eee2767b5201437767aa609"

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


# --- the trainer's insert path --------------------------------------------------------

N_AGENTS = 8
HORIZON = 64
N_STEP = 3


def module_at_baseline(
    path: str, name: str, imports: dict[str, str] | None = None
) -> types.ModuleType:
    """The module in ``path`` (relative to the repository root) as it was at ``BASELINE``.

    ``imports`` maps module names its own imports must find to baseline modules already
    loaded here (e.g. ``mla_plugin_core.replay`` -> ``baseline_replay``); each is in place only
    while the module runs, so the current package is untouched afterwards. Modules removed
    since the baseline (``trajectory_processing``) are loaded this way too."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{BASELINE}:{path}"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(name)
    module.__file__ = f"{BASELINE[:7]}:{path}"
    sys.modules[name] = module
    replaced = {target: sys.modules.get(target) for target in imports or {}}
    for target, baseline in (imports or {}).items():
        sys.modules[target] = sys.modules[baseline]
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    finally:
        for target, current in replaced.items():
            if current is None:
                del sys.modules[target]
            else:
                sys.modules[target] = current
    return module


def trajectories(
    obs_shape: tuple[int, ...], total: int, rng: np.random.Generator
) -> list[tuple[str, Transitions, bool]]:
    """``(agent, 1-step transitions, episode ended)`` of 8 agents in turn, ``total`` steps."""
    frames = {
        f"agent-{a}": rng.standard_normal((HORIZON + 1, *obs_shape), dtype=np.float32)
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


def store_path(
    store: Callable, replay_module: types.ModuleType, obs_shape: tuple[int, ...], capacity: int
) -> Callable[[list], object]:
    """A fill function running ``store`` (an ``OffPolicyPluginTrainer._store``) on a trainer
    stand-in holding only what ``_store`` reads; the buffer lives across fills."""
    trainer = types.SimpleNamespace(
        _held_steps={},
        n_step_accumulator=replay_module.NStepAccumulator(N_STEP, {"extrinsic": GAMMA}),
        replay=replay_module.ReplayBuffer(capacity, [obs_shape], 0, [N_ACTIONS], ["extrinsic"]),
    )

    def fill(items: list) -> None:
        for agent, steps, ended in items:
            store(trainer, agent, steps, ended)

    fill.replay = trainer.replay  # type: ignore[attr-defined]
    return fill


def column_arrays(obs_shape: tuple[int, ...], capacity: int) -> dict[str, np.ndarray]:
    """Zeroed ``[capacity, ...]`` arrays of the columns the buffer stores, for the numpy paths."""
    layout = {
        "obs": (obs_shape, np.float32),
        "next_obs": (obs_shape, np.float32),
        "continuous_actions": ((0,), np.float32),
        "discrete_actions": ((1,), np.int32),
        "action_masks": ((N_ACTIONS,), bool),
        "next_action_masks": ((N_ACTIONS,), bool),
        "rewards": ((), np.float32),
        "discounts": ((), np.float32),
        "dones": ((), bool),
        "truncated": ((), bool),
    }
    return {k: np.zeros((capacity, *shape), dtype) for k, (shape, dtype) in layout.items()}


def raw_path(obs_shape: tuple[int, ...], capacity: int) -> Callable[[list], object]:
    """Slice copies of each trajectory's columns into preallocated arrays (kept across fills)."""
    arrays = column_arrays(obs_shape, capacity)

    def fill(items: list) -> None:
        position = 0
        for _, steps, _ in items:
            length = len(steps.dones)
            if position + length > capacity:
                position = 0
            columns = {
                "obs": steps.obs[0],
                "next_obs": steps.next_obs[0],
                "discrete_actions": steps.discrete_actions,
                "action_masks": steps.action_masks,
                "next_action_masks": steps.next_action_masks,
                "rewards": steps.rewards["extrinsic"],
                "discounts": GAMMA,  # one value per step, as the buffer writes it
                "dones": steps.dones,
                "truncated": steps.truncated,
            }
            for key, column in columns.items():
                arrays[key][position : position + length] = column
            position += length

    return fill


def n_step_floor_path(obs_shape: tuple[int, ...], capacity: int) -> Callable[[list], object]:
    """The writes the n-step format needs and nothing else: per trajectory, each stored
    column copied from the previous trajectory's last ``n`` steps and from this one (the
    transitions that cross the boundary complete now), each reward signal's n-step sums
    (one correlate), the discounts and the flags, and at an episode end the next
    observation, mask and shorter discounts of the transitions cut short; no checks, no
    held step, the ring restarted rather than wrapped. The same rows as the trainer's
    path (for these trajectories, with no truncation), faster than any path storing n-step
    transitions at insert time in this ring, where they are written as they complete."""
    arrays = column_arrays(obs_shape, capacity)
    kernel = GAMMA ** np.arange(N_STEP)
    padding = np.zeros(N_STEP - 1)
    short_discounts = (GAMMA ** np.arange(N_STEP, 0, -1)).astype(np.float32)  # K = n .. 1

    def fill(items: list) -> int:
        """Write ``items``; the number of rows written after the ring last restarted."""
        position = 0
        waiting: dict[str, tuple[Transitions, int, int]] = {}  # agent -> rows of its last batch
        for agent, steps, ended in items:
            rows = len(steps.dones)
            segments = [waiting.pop(agent)] if agent in waiting else []
            segments.append((steps, 0, rows))
            length = sum(stop - start for _, start, stop in segments)
            # Transitions whose n steps are in the run, and those complete now: all at an
            # episode end, else those before the last step's, which waits for its next
            # mask (the trainer's held step) like the n - 1 before it.
            full = max(length - N_STEP + (1 if ended else 0), 0)
            completed = length if ended else full
            if position + completed > capacity:
                position = 0
            offset = 0
            for batch, start, stop in segments:
                first = min(stop - start, completed - offset)  # rows that start a transition
                if first > 0:
                    at = position + offset
                    arrays["obs"][at : at + first] = batch.obs[0][start : start + first]
                    arrays["discrete_actions"][at : at + first] = batch.discrete_actions[
                        start : start + first
                    ]
                    arrays["action_masks"][at : at + first] = batch.action_masks[
                        start : start + first
                    ]
                low = max(0, N_STEP - 1 - offset)  # rows that end a transition
                high = min(stop - start, N_STEP - 1 + full - offset)
                if low < high:
                    at = position + offset + low - N_STEP + 1
                    arrays["next_obs"][at : at + high - low] = batch.next_obs[0][
                        start + low : start + high
                    ]
                    arrays["next_action_masks"][at : at + high - low] = batch.next_action_masks[
                        start + low : start + high
                    ]
                offset += stop - start
            run_rewards = np.concatenate(
                [b.rewards["extrinsic"][start:stop] for b, start, stop in segments] + [padding]
            )
            end = position + completed
            arrays["rewards"][position:end] = _n_step_sums(run_rewards, kernel)[:completed]
            arrays["discounts"][position : position + full] = GAMMA**N_STEP
            flagged = position + (max(length - N_STEP, 0) if ended else completed)
            for flags, value in ((arrays["dones"], ended), (arrays["truncated"], False)):
                flags[position:flagged] = False
                flags[flagged:end] = value
            if ended and completed > full:  # cut short by the episode end
                arrays["next_obs"][position + full : end] = steps.next_obs[0][rows - 1 : rows]
                arrays["next_action_masks"][position + full : end] = steps.next_action_masks[
                    rows - 1 : rows
                ]
                arrays["discounts"][position + full : end] = short_discounts[
                    N_STEP - (completed - full) :
                ]
            position = end
            if not ended:  # this benchmark's running episodes come n steps at least at a time
                waiting[agent] = (steps, rows - N_STEP, rows)
        return position

    fill.arrays = arrays  # type: ignore[attr-defined]
    return fill


def check_floor(obs_shape: tuple[int, ...], items: list) -> None:
    """Stop unless the floor writes the rows the trainer's path stores, and as many, for the
    trajectories of the first steps (5,000, or 100 MB of observations; rings that do not wrap)."""
    steps = min(5_000, 100_000_000 // (4 * int(np.prod(obs_shape))))
    prefix, capacity = [], 0
    for item in items:
        if capacity >= steps:
            break
        prefix.append(item)
        capacity += len(item[1].dones)
    store = store_path(OffPolicyPluginTrainer._store, mla_plugin_core.replay, obs_shape, capacity)
    floor = n_step_floor_path(obs_shape, capacity)
    store(prefix)
    count, replay, arrays = floor(prefix), store.replay, floor.arrays  # type: ignore[attr-defined]
    if count != len(replay):
        raise SystemExit(f"the n-step floor wrote {count} rows, the trainer's path {len(replay)}")
    names = {
        "obs": "obs[0]",
        "next_obs": "next_obs[0]",
        "rewards": "rewards[extrinsic]",
        "discounts": "discounts[extrinsic]",
    }
    for key, array in arrays.items():
        stored = replay._storage[names.get(key, key)]
        if not np.allclose(stored[:count], array[:count], rtol=1e-6):
            raise SystemExit(f"the n-step floor wrote other {key} than the trainer's path")


def insert_path_benchmark(vector_steps: int, visual_steps: int, rounds: int) -> None:
    """Print the trainer's insert rate before/after next to raw numpy, per observation."""
    core = "packages/mla-plugin-core/src/mla_plugin_core"
    baseline_replay = module_at_baseline(f"{core}/replay.py", "baseline_replay")
    module_at_baseline(f"{core}/trajectory_processing.py", "baseline_trajectory_processing")
    baseline_off_policy = module_at_baseline(
        f"{core}/off_policy.py",
        "baseline_off_policy",
        imports={
            "mla_plugin_core.replay": "baseline_replay",
            "mla_plugin_core.trajectory_processing": "baseline_trajectory_processing",
        },
    )
    rng = np.random.default_rng(0)
    print(
        f"\ntrainer insert path: {N_AGENTS} agents, trajectories of <= {HORIZON} steps, "
        f"n_step={N_STEP}; best of {rounds} fills; before = {BASELINE[:7]}"
    )
    print(
        f"{'observation':<14}{'steps':>8}{'before':>14}{'now':>14}{'n-step floor':>14}"
        f"{'raw numpy':>14}{'now/before':>12}{'now/raw':>10}{'floor/raw':>11}"
        "   (transitions/s; speed-up; time ratios)"
    )
    for obs_shape, total in (((OBS_SIZE,), vector_steps), ((3, 84, 84), visual_steps)):
        items = trajectories(obs_shape, total, rng)
        check_floor(obs_shape, items)
        count = sum(len(steps.dones) for _, steps, _ in items)
        capacity = min(count, 100_000)
        paths = {
            "before": store_path(
                baseline_off_policy.OffPolicyPluginTrainer._store,
                baseline_replay,
                obs_shape,
                capacity,
            ),
            "now": store_path(
                OffPolicyPluginTrainer._store, mla_plugin_core.replay, obs_shape, capacity
            ),
            "floor": n_step_floor_path(obs_shape, capacity),
            "raw": raw_path(obs_shape, capacity),
        }
        for fill in paths.values():
            fill(items)  # warm-up: every slot of the buffer written once
        best = {name: np.inf for name in paths}
        for _ in range(rounds):  # interleaved, so that load from other jobs hits all alike
            for name, fill in paths.items():
                best[name] = min(best[name], timed(lambda fill=fill, items=items: fill(items)))
        name = "x".join(map(str, obs_shape))
        print(
            f"{name:<14}{count:>8,}{count / best['before']:>14,.0f}{count / best['now']:>14,.0f}"
            f"{count / best['floor']:>14,.0f}{count / best['raw']:>14,.0f}"
            f"{best['before'] / best['now']:>12.1f}{best['now'] / best['raw']:>10.2f}"
            f"{best['floor'] / best['raw']:>11.2f}"
        )
    print("targets: now/before >= 10 (speed-up), now/raw <= 3 (time ratio)")
    print(
        "n-step floor: the unchecked writes of the n-step transitions alone (see "
        "n_step_floor_path), what no insert path storing that format can beat"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="transitions to fill")
    parser.add_argument("--batch", type=int, default=256, help="transitions per sample call")
    parser.add_argument("--insert-batch", type=int, default=1000, help="rows per insert call")
    parser.add_argument("--repeats", type=int, default=2000, help="sample calls timed (ours, raw)")
    parser.add_argument(
        "--agent-buffer-repeats", type=int, default=300, help="sample calls timed (AgentBuffer)"
    )
    parser.add_argument("--inserts-only", action="store_true", help="only the trainer's inserts")
    parser.add_argument("--vector-steps", type=int, default=40_000, help="8-float steps stored")
    parser.add_argument("--visual-steps", type=int, default=3_000, help="3x84x84 steps stored")
    parser.add_argument("--rounds", type=int, default=3, help="fills per insert path (best)")
    args = parser.parse_args()
    if not args.inserts_only:
        sample_benchmark(args)
    insert_path_benchmark(args.vector_steps, args.visual_steps, args.rounds)


def sample_benchmark(args: argparse.Namespace) -> None:
    """Fill and sample ours, prioritized, AgentBuffer and raw numpy (the first tables)."""
    size, batch = args.size, args.batch
    rng = np.random.default_rng(0)
    data = make_data(size, rng)

    ours = ReplayBuffer(size, [(OBS_SIZE,)], 0, [N_ACTIONS], ["extrinsic"], seed=0)
    prioritized = PrioritizedReplayBuffer(
        size, [(OBS_SIZE,)], 0, [N_ACTIONS], ["extrinsic"], seed=0, beta=0.4
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
