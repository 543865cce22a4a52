import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from replay_kit import (
    DETERMINISTIC,
    SIGNALS,
    SPEC,
    agent_streams,
    assert_same_buffers,
    brute_force_n_step,
    steps_batch,
    transitions,
)

from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.replay.nstep import NStepAccumulator
from mla_plugin_core.replay.transitions import (
    Transitions,
    concatenate_transitions,
    select_rows,
)


@DETERMINISTIC
@given(
    streams=agent_streams(),
    n=st.integers(1, 4),
    gammas=st.tuples(*[st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0])] * 2),
    data=st.data(),
)
def test_n_step_matches_brute_force(
    streams: list, n: int, gammas: tuple, data: st.DataObject
) -> None:
    gamma = dict(zip(SIGNALS, gammas, strict=True))
    accumulator = NStepAccumulator(n, gamma)
    # Interleave the agents in a random order that keeps each agent's own order.
    order = data.draw(st.permutations([a for a, (_, ends) in enumerate(streams) for _ in ends]))
    cursor = [0] * len(streams)
    rows = []
    for agent in order:
        rows.append((agent, cursor[agent]))
        cursor[agent] += 1
    emitted = []
    start = 0
    while start < len(rows):
        size = data.draw(st.integers(1, 5))
        chunk = rows[start : start + size]
        start += size
        batch = steps_batch(chunk, streams)
        emitted.append(accumulator.add([a for a, _ in chunk], batch))
    emitted.append(accumulator.flush())
    assert len(accumulator) == 0

    got = {}
    for out in emitted:
        for i, step_id in enumerate(out.obs[0][:, 0].astype(int)):
            assert step_id not in got, "a step was emitted twice"
            got[step_id] = i, out
    total_steps = sum(len(ends) for _, ends in streams)
    assert len(got) == total_steps
    for agent, (rewards, ends) in enumerate(streams):
        for t, want in brute_force_n_step(rewards, ends, n, gamma).items():
            i, out = got[1000 * agent + t]
            assert out.next_obs[0][i, 0] == 1000 * agent + want["next_obs"]
            assert out.discrete_actions[i, 0] == (1000 * agent + t) % 4
            assert out.dones[i] == want["done"]
            assert out.truncated[i] == want["truncated"]
            for s in SIGNALS:
                assert out.rewards[s][i] == pytest.approx(want["rewards"][s], rel=1e-6, abs=1e-6)
                assert out.discounts[s][i] == pytest.approx(want["discounts"][s], rel=1e-6)


class RowByRowNStep:
    """Reference n-step accumulator: plain Python, one row at a time, from the definition."""

    def __init__(self, n: int, gammas: dict[str, float]) -> None:
        self.n, self.gammas = n, gammas
        self.queues: dict[int, list[dict]] = {}

    def add(self, agents: list[int], steps: Transitions) -> list[dict]:
        out = []
        for row, agent in enumerate(agents):
            done, truncated = bool(steps.dones[row]), bool(steps.truncated[row])
            queue = self.queues.setdefault(agent, [])
            queue.append(
                dict(
                    obs=float(steps.obs[0][row, 0]),
                    next_obs=float(steps.next_obs[0][row, 0]),
                    rewards={s: float(steps.rewards[s][row]) for s in SIGNALS},
                    done=done,
                    truncated=truncated and not done,
                )
            )
            if done or truncated:
                while queue:
                    out.append(self.emit(queue))
                    queue.pop(0)
                del self.queues[agent]
            elif len(queue) == self.n:
                out.append(self.emit(queue))
                queue.pop(0)
                if not queue:
                    del self.queues[agent]
        return out

    def flush(self) -> list[dict]:
        out = []
        for queue in self.queues.values():
            queue[-1]["truncated"] = True
            while queue:
                out.append(self.emit(queue))
                queue.pop(0)
        self.queues.clear()
        return out

    def emit(self, queue: list[dict]) -> dict:
        g = self.gammas
        return dict(
            obs=queue[0]["obs"],
            next_obs=queue[-1]["next_obs"],
            rewards={
                s: sum(g[s] ** k * step["rewards"][s] for k, step in enumerate(queue))
                for s in SIGNALS
            },
            discounts={s: g[s] ** len(queue) for s in SIGNALS},
            done=queue[-1]["done"],
            truncated=queue[-1]["truncated"],
        )


def as_rows(out: Transitions) -> list[dict]:
    return [
        dict(
            obs=float(out.obs[0][i, 0]),
            next_obs=float(out.next_obs[0][i, 0]),
            rewards={s: float(out.rewards[s][i]) for s in SIGNALS},
            discounts={s: float(out.discounts[s][i]) for s in SIGNALS},  # type: ignore[index]
            done=bool(out.dones[i]),
            truncated=bool(out.truncated[i]),
        )
        for i in range(len(out.dones))
    ]


def assert_same_rows(got: list[dict], want: list[dict]) -> None:
    assert [(r["obs"], r["next_obs"], r["done"], r["truncated"]) for r in got] == [
        (r["obs"], r["next_obs"], r["done"], r["truncated"]) for r in want
    ]
    for g, w in zip(got, want, strict=True):
        for name in ("rewards", "discounts"):
            for s in SIGNALS:
                assert g[name][s] == pytest.approx(w[name][s], rel=1e-6, abs=1e-6)


@DETERMINISTIC
@given(
    streams=agent_streams(),
    n=st.integers(1, 5),
    gammas=st.tuples(*[st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0])] * 2),
    one_agent_at_a_time=st.booleans(),
    data=st.data(),
)
def test_n_step_matches_a_row_by_row_reference(
    streams: list, n: int, gammas: tuple, one_agent_at_a_time: bool, data: st.DataObject
) -> None:
    """Same transitions in the same order as feeding rows one at a time, for batches of
    many agents and for runs of one agent (as the trainer gives them), in one batch or in
    two consecutive ones (add_chunks); flush() alike."""
    gamma = dict(zip(SIGNALS, gammas, strict=True))
    accumulator, reference = NStepAccumulator(n, gamma), RowByRowNStep(n, gamma)
    order = [a for a, (_, ends) in enumerate(streams) for _ in ends]
    if not one_agent_at_a_time:
        order = data.draw(st.permutations(order))
    cursor = [0] * len(streams)
    rows = []
    for agent in order:
        rows.append((agent, cursor[agent]))
        cursor[agent] += 1
    start = 0
    while start < len(rows):
        size = data.draw(st.integers(1, 20))
        chunk = rows[start : start + size]
        start += size
        if one_agent_at_a_time:
            chunk = [r for r in chunk if r[0] == chunk[0][0]]
            start -= size - len(chunk)
        agents = [a for a, _ in chunk]
        batch = steps_batch(chunk, streams)
        want = reference.add(agents, batch)
        cut = data.draw(st.integers(0, len(chunk) - 1))
        if cut == 0:
            got = accumulator.add(agents, batch)
        else:  # the same steps as two consecutive batches, the chunks joined
            pieces = [steps_batch(chunk[:cut], streams), steps_batch(chunk[cut:], streams)]
            got = concatenate_transitions(accumulator.add_chunks(agents, pieces))
        assert_same_rows(as_rows(got), want)
        assert len(accumulator) == sum(len(q) for q in reference.queues.values())
    key = lambda row: row["obs"]  # noqa: E731
    assert_same_rows(
        sorted(as_rows(accumulator.flush()), key=key), sorted(reference.flush(), key=key)
    )
    assert len(accumulator) == 0


def test_accumulator_does_not_keep_the_callers_arrays() -> None:
    """Pending steps are copies: the trainer patches masks of steps it has passed on."""
    accumulator = NStepAccumulator(3, {"extrinsic": 0.9, "curiosity": 0.9})
    steps = transitions(np.array([1.0, 5.0]), discounts=False)  # neither done nor truncated
    assert len(accumulator.add(["a", "a"], steps).dones) == 0
    for array in (*steps.obs, *steps.next_obs, steps.next_action_masks, steps.rewards["extrinsic"]):
        array[...] = 0
    out = accumulator.flush()
    np.testing.assert_array_equal(out.obs[0][:, 0], [1.0, 5.0])
    np.testing.assert_array_equal(out.next_obs[0][:, 0], [5.5, 5.5])
    want_masks = transitions(np.array([5.0, 5.0])).next_action_masks
    np.testing.assert_array_equal(out.next_action_masks, want_masks)
    np.testing.assert_allclose(out.rewards["extrinsic"], [1 + 0.9 * 5, 5])


def test_large_steps_of_one_agent_come_out_as_views() -> None:
    """The insert path copies big observations once, into the ring, not on the way."""
    accumulator = NStepAccumulator(3, {"extrinsic": 0.9})
    rows = 10

    def big_steps(first_id: int, done_last: bool) -> Transitions:
        ids = np.arange(first_id, first_id + rows, dtype=np.float32)
        frames = (
            np.zeros((rows + 1, 64, 64), np.float32) + np.append(ids, ids[-1] + 1)[:, None, None]
        )
        dones = np.zeros(rows, bool)
        dones[-1] = done_last
        return Transitions(
            obs=[frames[:-1]],
            continuous_actions=np.zeros((rows, 0), np.float32),
            discrete_actions=np.zeros((rows, 1), np.int32),
            action_masks=np.ones((rows, 2), bool),
            rewards={"extrinsic": np.ones(rows, np.float32)},
            dones=dones,
            truncated=np.zeros(rows, bool),
            next_obs=[frames[1:]],
            next_action_masks=np.ones((rows, 2), bool),
        )

    first = big_steps(0, done_last=False)
    chunks = accumulator.add_chunks(["a"] * rows, first)
    assert [len(c.dones) for c in chunks] == [rows - 2]
    assert np.shares_memory(chunks[0].obs[0], first.obs[0])
    assert np.shares_memory(chunks[0].next_obs[0], first.next_obs[0])
    second = big_steps(rows, done_last=True)
    chunks = accumulator.add_chunks(["a"] * rows, second)
    # the 2 pending steps, the 8 whose 3 steps lie in `second`, the 2 cut by the episode end
    assert [len(c.dones) for c in chunks] == [2, rows - 2, 2]
    assert np.shares_memory(chunks[1].obs[0], second.obs[0])
    assert np.shares_memory(chunks[1].next_obs[0], second.next_obs[0])
    out = concatenate_transitions(chunks)
    np.testing.assert_array_equal(out.obs[0][:, 0, 0], np.arange(rows - 2, 2 * rows))
    np.testing.assert_array_equal(
        out.next_obs[0][:, 0, 0], np.minimum(np.arange(rows - 2, 2 * rows) + 3, 2 * rows)
    )


def test_one_step_is_the_plain_transition() -> None:
    steps = transitions(np.arange(6), discounts=False)
    out = NStepAccumulator(1, {"extrinsic": 0.9, "curiosity": 0.5}).add(list(range(6)), steps)
    for name in ("continuous_actions", "discrete_actions", "action_masks", "next_action_masks"):
        np.testing.assert_array_equal(getattr(out, name), getattr(steps, name))
    for got, want in zip(out.obs + out.next_obs, steps.obs + steps.next_obs, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(out.dones, steps.dones)
    np.testing.assert_array_equal(out.truncated, steps.truncated & ~steps.dones)  # done wins
    for s in SIGNALS:
        np.testing.assert_array_equal(out.rewards[s], np.float32(steps.rewards[s]))
    np.testing.assert_allclose(out.discounts["extrinsic"], 0.9)
    np.testing.assert_allclose(out.discounts["curiosity"], 0.5)
    buffer = ReplayBuffer(8, **SPEC)
    buffer.add(out)
    assert len(buffer) == 6


def test_accumulator_output_goes_into_the_buffer_even_when_empty() -> None:
    accumulator = NStepAccumulator(3, {"extrinsic": 0.9, "curiosity": 0.9})
    buffer = ReplayBuffer(8, **SPEC)
    running = transitions(np.array([1.0, 5.0]), discounts=False)  # odd ids: not done
    out = accumulator.add(["a", "b"], running)
    assert len(out.dones) == 0 and out.obs[1].shape == (0, 2, 2, 1)
    buffer.add(out)
    assert len(buffer) == 0 and len(accumulator) == 2
    buffer.add(accumulator.add(["a", "b"], transitions(np.array([2.0, 4.0]), discounts=False)))
    assert len(buffer) == 4 and len(accumulator) == 0


def test_accumulator_rejects_bad_input() -> None:
    accumulator = NStepAccumulator(2, {"extrinsic": 0.9, "curiosity": 0.9})
    with pytest.raises(ValueError, match="agent_ids"):
        accumulator.add([0], transitions(np.arange(2), discounts=False))
    with pytest.raises(ValueError, match="discounts: expected None"):
        accumulator.add([0, 1], transitions(np.arange(2)))
    with pytest.raises(ValueError, match="rewards: expected reward signals"):
        NStepAccumulator(2, {"extrinsic": 0.9}).add(
            [0, 1], transitions(np.arange(2), discounts=False)
        )
    with pytest.raises(ValueError, match="n_steps"):
        NStepAccumulator(0, {"extrinsic": 0.9})


@DETERMINISTIC
@given(
    streams=agent_streams(),
    n=st.integers(1, 4),
    capacity=st.integers(1, 30),
    prioritized=st.booleans(),
    data=st.data(),
)
def test_add_to_writes_what_add_chunks_and_add_write(
    streams: list, n: int, capacity: int, prioritized: bool, data: st.DataObject
) -> None:
    """add_to() leaves the buffer (every column, ring position, priorities) and the pending
    steps as add_chunks() then ReplayBuffer.add() of each chunk: steps of one agent at a
    time, as two row ranges of a batch, with episode ends anywhere and rings that wrap."""
    gamma = dict(zip(SIGNALS, (0.9, 0.5), strict=True))
    kind = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    buffers = [kind(capacity, [(1,)], 0, [4], SIGNALS) for _ in range(2)]
    fast, slow = NStepAccumulator(n, gamma), NStepAccumulator(n, gamma)
    cursor = [0] * len(streams)
    while any(c < len(ends) for c, (_, ends) in zip(cursor, streams, strict=True)):
        agent = data.draw(
            st.sampled_from([a for a, c in enumerate(cursor) if c < len(streams[a][1])])
        )
        left = len(streams[agent][1]) - cursor[agent]
        size = data.draw(st.integers(1, left))
        rows = [(agent, cursor[agent] + t) for t in range(size)]
        cursor[agent] += size
        pad = data.draw(st.integers(0, 2))  # rows before and after those given
        batch = steps_batch([(agent, 0)] * pad + rows + [(agent, 0)] * pad, streams)
        masks = (np.arange(len(rows) + 2 * pad)[:, None] + np.arange(4)) % 3 > 0
        batch = batch._replace(action_masks=masks, next_action_masks=~masks)
        cut = data.draw(st.integers(0, size))
        parts = [(batch, pad, pad + cut), (batch, pad + cut, pad + size)]
        stored = fast.add_to(buffers[0], agent, parts)
        chunks = slow.add_chunks([agent] * size, select_rows(batch, slice(pad, pad + size)))
        want = 0
        for chunk in chunks:
            if len(chunk.dones):
                want += len(buffers[1].add(chunk))
        assert stored == want
        assert_same_buffers(*buffers)
    buffers[0].add(fast.flush())
    buffers[1].add(slow.flush())
    assert_same_buffers(*buffers)
