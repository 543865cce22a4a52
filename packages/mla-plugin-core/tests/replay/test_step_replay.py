"""StepReplay: 1-step rows per agent, n-step transitions made when sampled."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from replay_kit import (
    DETERMINISTIC,
    END_DONE,
    END_NONE,
    SIGNALS,
    agent_streams,
    steps_batch,
    transitions,
)

from mla_plugin_core.replay import PrioritizedReplayBuffer
from mla_plugin_core.replay.nstep import NStepAccumulator
from mla_plugin_core.replay.step_replay import PrioritizedStepReplay, StepReplay
from mla_plugin_core.replay.transitions import Transitions

STEP_SPEC = dict(obs_shapes=[(1,)], continuous_size=0, discrete_branches=[4])


def expected_n_step(rewards, ends, n, gammas, seen, ended_now):
    """Step t -> its n-step transition from the definition, for the steps ``[0, seen)`` of
    one agent's stream; ``ended_now``: the running episode was ended at step ``seen - 1``
    (end_episodes). Only the steps whose window is known are listed: an episode end within
    n steps, or the step after the n-th seen."""
    result = {}
    for t in range(seen):
        end = next((u for u in range(t, seen) if ends[u] != END_NONE), None)
        if end is None and ended_now:
            end = seen - 1
        if end is not None and end - t + 1 <= n:
            k = end - t + 1
        elif t + n <= seen - 1:
            k = n
        else:
            continue  # its window is not known yet
        last = t + k - 1
        result[t] = dict(
            next_obs=last + 0.5,
            rewards={
                s: sum(gammas[s] ** i * rewards[t + i, j] for i in range(k))
                for j, s in enumerate(SIGNALS)
            },
            discounts={s: gammas[s] ** k for s in SIGNALS},
            done=ends[last] == END_DONE,
            truncated=last == end and ends[last] != END_DONE,
        )
    return result


def chunks(streams, data, stop=None):
    """Each agent's steps in chunks ``(agent, steps)``, the agents interleaved, in batches
    of 1 to 3 chunks (what one add_many stores)."""
    cursor = [0] * len(streams)
    limit = [len(ends) if stop is None else min(stop, len(ends)) for _, ends in streams]
    batch = []
    while any(c < m for c, m in zip(cursor, limit, strict=True)):
        agent = data.draw(st.sampled_from([a for a in range(len(streams)) if cursor[a] < limit[a]]))
        size = data.draw(st.integers(1, limit[agent] - cursor[agent]))
        ends = streams[agent][1][cursor[agent] : cursor[agent] + size]
        if data.draw(st.booleans()):  # cut at the episode's end, as mlagents does
            size = next((i + 1 for i, end in enumerate(ends) if end != END_NONE), size)
        rows = [(agent, t) for t in range(cursor[agent], cursor[agent] + size)]
        batch.append((agent, steps_batch(rows, streams)))
        cursor[agent] += size
        if len(batch) == 3 or data.draw(st.booleans()):
            yield batch
            batch = []
    if batch:
        yield batch
    return cursor


def fill(replay, streams, data, stop=None):
    """Every chunk into ``replay``, a batch per add_many; returns steps seen per agent."""
    seen = [0] * len(streams)
    for batch in chunks(streams, data, stop):
        replay.add_many([(agent, steps, None) for agent, steps in batch])
        for agent, steps in batch:
            seen[agent] += len(steps.dones)
    return seen


def assert_same_replay(one, other):
    """Two replays hold the same rows, links, completions, episodes (and priorities)."""
    assert one._state == other._state
    state = one._state
    slots = np.arange(state.written - state.size, state.written) % one.capacity
    for name in ("_obs", "_next_obs"):
        for a, b in zip(getattr(one, name), getattr(other, name), strict=True):
            np.testing.assert_array_equal(a[slots], b[slots])
    names = ["_discrete", "_masks", "_next_masks", "_rewards", "_dones", "_truncated", "_next"]
    if one.sequence_length:  # kept for sequence starts only
        names.append("_episode_step")
    for name in names:
        np.testing.assert_array_equal(getattr(one, name)[slots], getattr(other, name)[slots])
    np.testing.assert_array_equal(one._complete, other._complete)
    if isinstance(one, PrioritizedStepReplay):
        all_slots = np.arange(one.capacity)
        np.testing.assert_array_equal(one.priorities(all_slots), other.priorities(all_slots))


def assert_transitions(replay, streams, n, gamma, seen, ended_now):
    slots = replay.complete_slots()
    sample = replay.transitions(slots, np.ones(len(slots), np.float32))
    got = {int(step_id): i for i, step_id in enumerate(sample.obs[0][:, 0])}
    assert len(got) == len(slots), "a step is held twice"
    want_ids = set()
    for agent, (rewards, ends) in enumerate(streams):
        for t, want in expected_n_step(rewards, ends, n, gamma, seen[agent], ended_now).items():
            step_id = 1000 * agent + t
            want_ids.add(step_id)
            i = got[step_id]
            assert sample.next_obs[0][i, 0] == 1000 * agent + want["next_obs"]
            assert sample.discrete_actions[i, 0] == step_id % 4
            assert (sample.dones[i], sample.truncated[i]) == (want["done"], want["truncated"])
            for s in SIGNALS:
                assert sample.rewards[s][i] == pytest.approx(want["rewards"][s], rel=1e-6, abs=1e-6)
                assert sample.discounts[s][i] == pytest.approx(want["discounts"][s], rel=1e-6)
    assert set(got) == want_ids, "a row is complete before its window is known, or not after"


@DETERMINISTIC
@given(
    streams=agent_streams(),
    n=st.integers(1, 4),
    gammas=st.tuples(*[st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0])] * 2),
    stop=st.integers(1, 14),
    data=st.data(),
)
def test_sample_time_n_step_matches_the_definition_row_by_row(streams, n, gammas, stop, data):
    """Agents' chunks interleaved at random: mid-run exactly the rows whose window is known
    are complete, each giving the n-step transition of the definition; after end_episodes
    every row does, the running episodes ended as truncated."""
    gamma = dict(zip(SIGNALS, gammas, strict=True))
    replay = StepReplay(1000, **STEP_SPEC, gammas=gamma, n_step=n, seed=0)
    seen = fill(replay, streams, data, stop)
    assert_transitions(replay, streams, n, gamma, seen, ended_now=False)
    replay.end_episodes()
    assert_transitions(replay, streams, n, gamma, seen, ended_now=True)
    assert sum(replay.waiting(a) for a in range(len(streams))) == 0


@DETERMINISTIC
@given(streams=agent_streams(), n=st.integers(1, 4), data=st.data())
def test_same_transitions_as_the_0_1_accumulator_with_its_held_step(streams, n, data):
    """The 0.1 trainer's path (each chunk's last step held until the agent's next chunk,
    then NStepAccumulator, flushed at the end) and StepReplay then end_episodes hold the
    same transitions (a held-and-flushed full window is marked truncated here only)."""
    gamma = {"extrinsic": 0.9, "curiosity": 0.5}
    replay = StepReplay(1000, **STEP_SPEC, gammas=gamma, n_step=n)
    accumulator, held, emitted = NStepAccumulator(n, gamma), {}, []
    cursor = [0] * len(streams)
    while any(c < len(e) for c, (_, e) in zip(cursor, streams, strict=True)):
        agent = data.draw(
            st.sampled_from([a for a, (_, e) in enumerate(streams) if cursor[a] < len(e)])
        )
        size = data.draw(st.integers(1, len(streams[agent][1]) - cursor[agent]))
        rows = [(agent, t) for t in range(cursor[agent], cursor[agent] + size)]
        cursor[agent] += size
        replay.add(agent, steps_batch(rows, streams))
        rows = held.pop(agent, []) + rows
        if streams[agent][1][rows[-1][1]] == END_NONE:
            held[agent] = [rows.pop()]
        if rows:
            emitted.append(accumulator.add([a for a, _ in rows], steps_batch(rows, streams)))
    for agent, rows in held.items():
        batch = steps_batch(rows, streams)
        emitted.append(accumulator.add([agent], batch._replace(truncated=np.ones(1, bool))))
    emitted.append(accumulator.flush())
    replay.end_episodes()

    def key(obs, next_obs, rewards, discounts, dones, i):
        return (
            float(obs[0][i, 0]),
            float(next_obs[0][i, 0]),
            *[round(float(rewards[s][i]), 4) for s in SIGNALS],
            *[round(float(discounts[s][i]), 6) for s in SIGNALS],
            bool(dones[i]),
        )

    want = sorted(
        key(o.obs, o.next_obs, o.rewards, o.discounts, o.dones, i)
        for o in emitted
        for i in range(len(o.dones))
    )
    slots = replay.complete_slots()
    s = replay.transitions(slots, np.ones(len(slots), np.float32))
    got = sorted(
        key(s.obs, s.next_obs, s.rewards, s.discounts, s.dones, i) for i in range(len(slots))
    )
    assert got == want


@settings(DETERMINISTIC, max_examples=150)
@given(
    streams=agent_streams(),
    capacity=st.integers(2, 40),
    kind=st.sampled_from(["uniform", "prioritized", "sequences"]),
    data=st.data(),
)
def test_add_many_holds_what_one_add_after_the_other_holds(streams, capacity, kind, data):
    """Batches of chunks (an agent may come twice, episodes end anywhere, the ring wraps
    and drops rows the batch refers to): add_many leaves the replay one add per chunk
    leaves, for uniform, prioritized and sequence replay."""
    gammas = {"extrinsic": 0.9, "curiosity": 0.5}
    options = {"sequences": dict(sequence_length=3, sequence_overlap=1)}.get(kind, {})
    make = PrioritizedStepReplay if kind == "prioritized" else StepReplay

    def replay():
        return make(capacity, **STEP_SPEC, gammas=gammas, n_step=2, seed=0, **options)

    one, many = replay(), replay()
    for batch in chunks(streams, data):
        rows = many.add_many([(agent, steps, None) for agent, steps in batch])
        want = [one.add(agent, steps) for agent, steps in batch]
        np.testing.assert_array_equal(rows, np.concatenate(want))
        assert_same_replay(one, many)
    one.end_episodes(), many.end_episodes()
    assert_same_replay(one, many)


def test_a_bad_trajectory_in_a_batch_is_refused_with_nothing_stored():
    replay = StepReplay(100, **SPEC, gammas=GAMMAS, n_step=2)
    replay.add("a", one_agent_steps([1, 2]))
    before = (replay._state, replay._complete.copy(), replay._next.copy())
    bad = one_agent_steps([5, 6])._replace(discrete_actions=np.array([[0, 3], [0, 0]]))
    with pytest.raises(ValueError, match="discrete_actions"):
        replay.add_many([("a", one_agent_steps([3, 4]), None), ("b", bad, None)])
    assert replay._state == before[0]
    np.testing.assert_array_equal(replay._complete, before[1])
    np.testing.assert_array_equal(replay._next, before[2])


def one_agent_steps(ids, ends=None):
    """Steps of ids (obs = id, next_obs = id + 0.5, reward = id), ``ends`` at listed ids."""
    steps = transitions(np.asarray(ids), discounts=False)
    ends = set(ends or ())
    flags = np.array([i in ends for i in ids], bool)
    return steps._replace(dones=flags, truncated=np.zeros(len(ids), bool))


SPEC = dict(obs_shapes=[(3,), (2, 2, 1)], continuous_size=2, discrete_branches=[2, 3])
GAMMAS = {"extrinsic": 0.9, "curiosity": 0.5}


def test_the_next_mask_of_a_chunks_last_step_is_its_successors_mask():
    replay = StepReplay(10, **SPEC, gammas=GAMMAS, n_step=1)
    replay.add("a", one_agent_steps([1, 2]))
    assert len(replay) == 1  # step 2 waits for its successor's mask
    replay.add("a", one_agent_steps([3]))
    sample = replay.transitions(replay.complete_slots(), np.ones(2, np.float32))
    np.testing.assert_array_equal(sample.next_action_masks[1], one_agent_steps([3]).action_masks[0])


def test_the_ring_drops_its_oldest_rows_and_links_stay_within_an_agent():
    """Two agents interleaved through a ring of 7 rows, n = 3: every sample is one agent's
    consecutive steps (obs ids t, t+1, t+2 summed), whatever was overwritten."""
    replay = StepReplay(7, **SPEC, gammas={"extrinsic": 1.0, "curiosity": 1.0}, n_step=3, seed=1)
    for start in range(0, 60, 3):
        replay.add("a", one_agent_steps([start, start + 1, start + 2]))
        replay.add("b", one_agent_steps([1000 + start, 1001 + start, 1002 + start]))
    assert replay.rows_held == 7
    sample = replay.sample(200)
    first = sample.obs[0][:, 0].astype(np.int64)
    np.testing.assert_array_equal(sample.next_obs[0][:, 0], first + 2.5)
    np.testing.assert_array_equal(sample.rewards["extrinsic"], 3 * first + 3)
    assert set(first) <= set(range(52, 60)) | set(range(1052, 1060))


def test_an_oversized_batch_keeps_its_last_rows():
    replay = StepReplay(4, **SPEC, gammas=GAMMAS, n_step=1)
    replay.add("a", one_agent_steps([1, 2]))
    rows = replay.add("a", one_agent_steps(list(range(10, 20)), ends=[19]))
    assert list(rows) == [8, 9, 10, 11] and replay.rows_held == 4
    assert sorted(replay.sample(50).obs[0][:, 0].astype(int))[0] >= 16


def test_bad_steps_are_refused_naming_the_field():
    replay = StepReplay(10, **SPEC, gammas=GAMMAS)
    good = one_agent_steps([1, 2])
    with pytest.raises(ValueError, match=r"obs\[1\]: expected shape \[2, 2, 2, 1\]"):
        replay.add("a", good._replace(obs=[good.obs[0], np.zeros((2, 4))]))
    with pytest.raises(ValueError, match="discrete_actions: expected branch b in"):
        replay.add("a", good._replace(discrete_actions=np.array([[0, 3], [0, 0]])))
    with pytest.raises(ValueError, match="rewards: expected reward signals"):
        replay.add("a", good._replace(rewards={"extrinsic": np.zeros(2)}))
    assert replay.rows_held == 0
    with pytest.raises(ValueError, match="no complete transition"):
        replay.sample(1)


@pytest.mark.parametrize("kind", [StepReplay, PrioritizedStepReplay])
def test_rows_held_but_none_complete_are_refused_not_drawn_for_ever(kind):
    replay = kind(10, **SPEC, gammas=GAMMAS, n_step=3, seed=0)
    replay.add("a", one_agent_steps([1, 2]))  # their windows are not known yet
    assert replay.rows_held == 2 and len(replay) == 0
    for draw in (replay.sample, replay.sample_uniform):
        with pytest.raises(ValueError, match="no complete transition"):
            draw(4)
    replay.add("a", one_agent_steps([3, 4]))
    assert set(replay.sample(20).obs[0][:, 0]) == {1.0}


def test_prioritized_draws_complete_rows_by_priority():
    replay = PrioritizedStepReplay(20, **SPEC, gammas=GAMMAS, n_step=2, alpha=1.0, beta=1.0, seed=3)
    replay.add("a", one_agent_steps([1, 2, 3, 4]))  # 1, 2 complete; 3, 4 wait
    slots = replay.complete_slots()
    np.testing.assert_array_equal(replay.priorities(np.arange(4)), [1.0, 1.0, 0.0, 0.0])
    replay.update_priorities(slots, [3.0, 1.0])
    sample = replay.sample(400)
    ids = sample.obs[0][:, 0]
    assert set(ids) == {1.0, 2.0}
    assert np.mean(ids == 1.0) == pytest.approx(0.75, abs=0.01)  # stratified: 3 / (3 + 1)
    # w = (N P)^-1 / max: the rarer row weighs 1
    assert sample.weights[ids == 2.0].max() == pytest.approx(1.0)
    replay.update_priorities(np.arange(4), [1.0, 1.0, 5.0, 5.0])  # 3, 4 not complete: kept
    np.testing.assert_array_equal(replay.priorities([2, 3]), [0.0, 0.0])


def test_save_and_load_go_on_as_the_saved_replay(tmp_path):
    replay = PrioritizedStepReplay(8, **SPEC, gammas=GAMMAS, n_step=2, seed=5)
    for start in range(0, 15, 3):
        replay.add("a", one_agent_steps([start, start + 1, start + 2], ends=[8]))
    replay.update_priorities(replay.complete_slots(), np.arange(len(replay)) + 1.0)
    replay.save(tmp_path / "r.npz", info={"step": 7})
    again = PrioritizedStepReplay(8, **SPEC, gammas=GAMMAS, n_step=2, seed=99)
    assert again.load(tmp_path / "r.npz") == {"step": 7}
    for a, b in zip(replay.sample(16), again.sample(16), strict=True):
        for x, y in zip(
            a if isinstance(a, list) else [a], b if isinstance(b, list) else [b], strict=True
        ):
            if isinstance(x, dict):
                for k in x:
                    np.testing.assert_array_equal(x[k], y[k])
            else:
                np.testing.assert_array_equal(x, y)
    # the running episode goes on in both: step 14 completes 13 alike
    for r in (replay, again):
        r.add("a", one_agent_steps([15]))
    np.testing.assert_array_equal(replay.complete_slots(), again.complete_slots())


def test_a_file_of_another_spec_is_refused_and_nothing_changes(tmp_path):
    replay = StepReplay(8, **SPEC, gammas=GAMMAS)
    replay.add("a", one_agent_steps([1, 2], ends=[2]))
    replay.save(tmp_path / "r.npz")
    other = StepReplay(9, **SPEC, gammas=GAMMAS)
    other.add("b", one_agent_steps([5], ends=[5]))
    with pytest.raises(
        ValueError, match=r"r.npz: saved replay has capacity=8, this replay has capacity=9"
    ):
        other.load(tmp_path / "r.npz")
    assert other.sample(3).obs[0][:, 0].tolist() == [5.0] * 3


def format_1_file(path, n_step):
    """A replay file as mla-plugin-core 0.1 wrote it (ReplayBuffer, n-step rows)."""
    old = PrioritizedReplayBuffer(6, **SPEC, reward_signals=SIGNALS, seed=0)
    accumulator = NStepAccumulator(n_step, GAMMAS)
    steps = one_agent_steps(list(range(1, 10)), ends=[5])
    old.add(accumulator.add(["a"] * 9, steps))
    old.save(path, info={"step": 3})
    return old


def test_a_0_1_file_of_1_step_rows_is_converted(tmp_path):
    path = tmp_path / "replay_buffer.npz"
    old = format_1_file(path, n_step=1)
    replay = PrioritizedStepReplay(6, **SPEC, gammas=GAMMAS, n_step=3)
    assert replay.load(path) == {"step": 3}
    assert len(replay) == len(old) == 6
    slots = replay.complete_slots()
    got = replay.transitions(slots, np.ones(6, np.float32))
    want = old._gather(np.arange(6), np.ones(6, np.float32))
    order = np.argsort(want.obs[0][:, 0])
    assert got.obs[0][:, 0].tolist() == sorted(want.obs[0][:, 0].tolist())  # oldest first
    for name in ("dones", "discrete_actions", "next_action_masks"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name)[order])
    for s in SIGNALS:  # each row its own one-step episode: K = 1 at any n_step
        np.testing.assert_array_equal(got.rewards[s], want.rewards[s][order])
        np.testing.assert_array_equal(got.discounts[s], want.discounts[s][order])


def test_a_0_1_file_of_n_step_rows_is_refused_in_one_line_and_left_alone(tmp_path):
    path = tmp_path / "replay_buffer.npz"
    format_1_file(path, n_step=3)
    before = path.read_bytes()
    replay = StepReplay(6, **SPEC, gammas=GAMMAS)
    with pytest.raises(ValueError) as error:
        replay.load(path)
    assert "\n" not in str(error.value)
    assert "mla-plugin-core 0.1 (format 1) with n-step rows" in str(error.value)
    assert "save_replay_buffer: false" in str(error.value)
    assert path.read_bytes() == before and replay.rows_held == 0


def cut_at_line(function, k):
    """Run ``function`` with a KeyboardInterrupt at the k-th line executed in
    step_replay.py (as a Ctrl-C may land between any two); whether it was cut."""
    import sys

    count = 0

    def trace(frame, event, arg):
        nonlocal count
        if not frame.f_code.co_filename.endswith("step_replay.py"):
            return None
        if event == "line":
            count += 1
            if count == k:
                raise KeyboardInterrupt
        return trace

    sys.settrace(trace)
    try:
        function()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


@pytest.mark.parametrize(
    ("wraps", "batch"),
    [(False, False), (True, False), (False, True)],
    ids=["fast path", "ring wraps", "a batch of two"],
)
def test_a_store_cut_at_any_line_leaves_a_consistent_replay(tmp_path, wraps, batch):
    """A KeyboardInterrupt at every line of add in turn, over a full ring (the fast path of
    whole slices, or the general one when the rows wrap around, or b's rows in two
    trajectories of one add_many): what can be drawn and what is saved are whole rows of
    the steps given, and the next adds go on."""
    gammas = {"extrinsic": 1.0, "curiosity": 1.0}
    k = 0
    while True:
        k += 1
        replay = StepReplay(6, **SPEC, gammas=gammas, n_step=2, seed=0)
        replay.add("a", one_agent_steps([1, 2, 3, 4, 5] if wraps else [1, 2, 3, 4, 5, 6]))
        if batch:
            trajectories = [
                ("b", one_agent_steps([100, 101]), None),
                ("b", one_agent_steps([102]), None),
            ]

            def store(r=replay, t=trajectories):
                r.add_many(t)
        else:

            def store(r=replay):
                r.add("b", one_agent_steps([100, 101, 102]))

        if not cut_at_line(store, k):
            break
        replay.save(tmp_path / "r.npz")
        again = StepReplay(6, **SPEC, gammas=gammas, n_step=2, seed=0)
        again.load(tmp_path / "r.npz")
        for r in (replay, again):
            if len(r):
                sample = r.sample(50)
                first = sample.obs[0][:, 0]
                # a's rows not overwritten, b's first once it is held: windows known
                assert set(first) <= {1.0, 2.0, 3.0, 4.0, 100.0}, k
                np.testing.assert_array_equal(sample.next_obs[0][:, 0], first + 1.5)
                np.testing.assert_array_equal(sample.rewards["extrinsic"], 2 * first + 1)
            r.add("b", one_agent_steps([200, 201], ends=[201]))
            assert {200.0, 201.0} <= set(r.sample(200).obs[0][:, 0]), k
    assert k > 20  # every line of add was a cut point


def test_step_replay_is_exported():
    import mla_plugin_core.replay as replay

    assert replay.StepReplay is StepReplay and replay.PrioritizedStepReplay is PrioritizedStepReplay


def fill_with_memories(replay, streams, data):
    """As fill, each step's stored memory ``[agent, t]``."""
    cursor = [0] * len(streams)
    while any(c < len(e) for c, (_, e) in zip(cursor, streams, strict=True)):
        agent = data.draw(
            st.sampled_from([a for a, (_, e) in enumerate(streams) if cursor[a] < len(e)])
        )
        size = data.draw(st.integers(1, len(streams[agent][1]) - cursor[agent]))
        rows = [(agent, t) for t in range(cursor[agent], cursor[agent] + size)]
        memories = np.array([[agent, t] for _, t in rows], np.float32)
        replay.add(agent, steps_batch(rows, streams), memories=memories)
        cursor[agent] += size


@DETERMINISTIC
@given(
    streams=agent_streams(),
    length=st.integers(1, 5),
    data=st.data(),
)
def test_sequences_match_the_definition_row_by_row(streams, length, data):
    """Sequences of L steps (burn-in prefix included) start every L - overlap steps of each
    episode, hold that episode's next L steps (padding past its end), the memory stored at
    their first step, and are drawn only once all L steps (or the end) are known."""
    overlap = data.draw(st.integers(0, length - 1))
    period = length - overlap
    replay = StepReplay(
        1000, **STEP_SPEC, gammas={"extrinsic": 0.9, "curiosity": 0.5},
        sequence_length=length, sequence_overlap=overlap, memory_size=2,
    )  # fmt: skip
    fill_with_memories(replay, streams, data)
    replay.end_episodes()
    want = {}
    for agent, (_, ends) in enumerate(streams):
        begin = 0
        for t in range(len(ends)):
            if (t - begin) % period == 0:
                end = next((u for u in range(t, len(ends)) if ends[u] != END_NONE), len(ends) - 1)
                want[1000 * agent + t] = [
                    1000 * agent + u for u in range(t, min(t + length, end + 1))
                ]
            if ends[t] != END_NONE:
                begin = t + 1
    slots = replay.complete_slots()
    sample = replay.sequences(slots, np.ones(len(slots), np.float32))
    got = {}
    for i in range(len(slots)):
        steps = sample.obs[0][i, :, 0].astype(int)
        valid = sample.valid[i]
        assert valid[0] and (np.diff(valid.astype(int)) <= 0).all()  # valid, then padding
        got[int(steps[0])] = steps[valid].tolist()
        agent, t = divmod(int(steps[0]), 1000)
        np.testing.assert_array_equal(sample.memories[i], [agent, t])
        assert not sample.dones[i][~valid].any()
    assert got == want


def test_prioritized_sequences_and_their_priorities():
    replay = PrioritizedStepReplay(
        50, **STEP_SPEC, gammas={"extrinsic": 0.9}, sequence_length=4, sequence_overlap=2,
        alpha=1.0, seed=0,
    )  # fmt: skip
    ids = np.arange(10)
    steps = Transitions(
        obs=[ids[:, None].astype(np.float32)],
        continuous_actions=np.zeros((10, 0)),
        discrete_actions=np.zeros((10, 1), np.int64),
        action_masks=np.ones((10, 4), bool),
        rewards={"extrinsic": np.zeros(10)},
        dones=ids == 9,
        truncated=np.zeros(10, bool),
        next_obs=[ids[:, None] + 0.5],
        next_action_masks=np.ones((10, 4), bool),
    )
    replay.add("a", steps)
    slots = replay.complete_slots()
    assert replay.sequences(slots, np.ones(len(slots), np.float32)).obs[0][:, 0, 0].tolist() == [
        0,
        2,
        4,
        6,
        8,
    ]
    replay.update_priorities(slots, [0, 0, 0, 0, 100.0])
    assert (replay.sample_sequences(20).obs[0][:, 0, 0] == 8).mean() > 0.9
    with pytest.raises(ValueError, match="no sequence_length"):
        StepReplay(5, **STEP_SPEC, gammas={"extrinsic": 0.9}).sample_sequences(1)
    with pytest.raises(ValueError, match=r"memories: expected shape \[10, 3\], got None"):
        StepReplay(50, **STEP_SPEC, gammas={"extrinsic": 0.9}, memory_size=3).add("a", steps)
