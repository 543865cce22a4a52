import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlagents.trainers.buffer import BufferKey

from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.replay.nstep import NStepAccumulator
from mla_plugin_core.replay.transitions import (
    ReplaySample,
    Transitions,
    concatenate_transitions,
    select_rows,
)

DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=40)

OBS_SHAPES = [(3,), (2, 2, 1)]
BRANCHES = [2, 3]
SIGNALS = ["extrinsic", "curiosity"]
SPEC = dict(
    obs_shapes=OBS_SHAPES, continuous_size=2, discrete_branches=BRANCHES, reward_signals=SIGNALS
)


def transitions(ids: np.ndarray, discounts: bool = True) -> Transitions:
    """Transitions whose every field is a function of an integer id, ``[len(ids), ...]``."""
    ids = np.asarray(ids, dtype=np.float64)
    n = len(ids)

    def obs(offset: float) -> list[np.ndarray]:
        return [
            np.full((n, *shape), 0.0) + (ids + offset).reshape(-1, *[1] * len(shape))
            for shape in OBS_SHAPES
        ]

    bits = (ids.astype(np.int64)[:, None] >> np.arange(5)) & 1  # 5 = sum(BRANCHES)
    return Transitions(
        obs=obs(0.0),
        continuous_actions=np.stack([ids, -ids], axis=1),
        discrete_actions=np.stack([ids % 2, ids % 3], axis=1).astype(np.int64),
        action_masks=bits.astype(bool),
        rewards={"extrinsic": ids, "curiosity": 2 * ids},
        dones=ids % 2 == 0,
        truncated=ids % 3 == 0,
        next_obs=obs(0.5),
        next_action_masks=~bits.astype(bool),
        discounts={"extrinsic": ids / 1e6, "curiosity": ids / 2e6} if discounts else None,
    )


def assert_consistent(sample: ReplaySample) -> np.ndarray:
    """Every field of each sampled row belongs to the same inserted transition; its ids."""
    ids = sample.obs[0][:, 0].astype(np.float64)
    expected = transitions(ids)
    flat_fields = ("continuous_actions", "discrete_actions", "action_masks", "next_action_masks")
    for name in (*flat_fields, "dones", "truncated"):
        np.testing.assert_array_equal(getattr(sample, name), getattr(expected, name))
    for got, want in zip(
        sample.obs + sample.next_obs, expected.obs + expected.next_obs, strict=True
    ):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    for s in SIGNALS:
        np.testing.assert_array_equal(sample.rewards[s], np.float32(expected.rewards[s]))
        np.testing.assert_array_equal(sample.discounts[s], np.float32(expected.discounts[s]))
    assert sample.discrete_actions.dtype == np.int32
    assert sample.obs[1].shape == (len(ids), 2, 2, 1)
    return ids


# --- ring storage ---------------------------------------------------------------------


@DETERMINISTIC
@given(
    capacity=st.integers(1, 40),
    batch_sizes=st.lists(st.integers(0, 60), min_size=1, max_size=8),
    prioritized=st.booleans(),
)
def test_everything_sampled_was_inserted(
    capacity: int, batch_sizes: list[int], prioritized: bool
) -> None:
    cls = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    buffer = cls(capacity, **SPEC, seed=0)
    next_id = 0
    for n in batch_sizes:
        written = buffer.add(transitions(np.arange(next_id, next_id + n)))
        next_id += n
        assert len(written) == min(n, capacity)
        assert len(buffer) == min(next_id, capacity)
        if len(buffer) == 0:
            continue
        sample = draw(buffer, 16)
        ids = assert_consistent(sample)
        # the ring holds exactly the last `capacity` transitions inserted
        assert ((ids >= max(0, next_id - capacity)) & (ids < next_id)).all()
        assert ((sample.weights > 0) & (sample.weights <= 1 + 1e-6)).all()
    if len(buffer) == capacity:
        seen = set(assert_consistent(draw(buffer, 4000)).astype(int))
        assert seen == set(range(next_id - capacity, next_id))


def test_uniform_sample_fields() -> None:
    buffer = ReplayBuffer(10, **SPEC, seed=0)
    buffer.add(transitions(np.arange(7)))
    sample = buffer.sample(5)
    assert isinstance(sample, ReplaySample)
    np.testing.assert_array_equal(sample.weights, np.ones(5, np.float32))
    assert sample.indices.dtype == np.int64 and sample.indices.max() < 7
    assert buffer.capacity == 10


def test_seeded_sampling_is_reproducible() -> None:
    a, b = ReplayBuffer(50, **SPEC, seed=3), ReplayBuffer(50, **SPEC, seed=3)
    for buffer in (a, b):
        buffer.add(transitions(np.arange(30)))
    np.testing.assert_array_equal(a.sample(20).indices, b.sample(20).indices)


def test_empty_buffer_refuses_to_sample() -> None:
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(4, **SPEC).sample(1)
    buffer = PrioritizedReplayBuffer(4, **SPEC)
    buffer.add(transitions(np.arange(2)))
    with pytest.raises(ValueError, match="batch_size"):
        buffer.sample(0)


# --- validation -----------------------------------------------------------------------


def test_wrong_shapes_name_the_field() -> None:
    buffer = ReplayBuffer(8, **SPEC)
    good = transitions(np.arange(4))
    bad_obs = good._replace(obs=[good.obs[0], np.zeros((4, 2, 2))])
    with pytest.raises(ValueError, match=r"obs\[1\]: expected shape \[4, 2, 2, 1\]"):
        buffer.add(bad_obs)
    with pytest.raises(ValueError, match=r"next_obs: expected 2 arrays"):
        buffer.add(good._replace(next_obs=good.next_obs[:1]))
    with pytest.raises(ValueError, match=r"action_masks: expected shape \[4, 5\]"):
        buffer.add(good._replace(action_masks=np.ones((4, 4), bool)))
    with pytest.raises(ValueError, match=r"rewards\[curiosity\]: expected shape \[4\]"):
        buffer.add(good._replace(rewards={"extrinsic": np.zeros(4), "curiosity": np.zeros(3)}))
    with pytest.raises(ValueError, match=r"rewards: expected reward signals"):
        buffer.add(good._replace(rewards={"extrinsic": np.zeros(4)}))
    with pytest.raises(ValueError, match="discounts: required"):
        buffer.add(good._replace(discounts=None))
    with pytest.raises(TypeError, match="discrete_actions: expected integers"):
        buffer.add(good._replace(discrete_actions=np.zeros((4, 2))))
    with pytest.raises(ValueError, match=r"discrete_actions: expected branch b in"):
        buffer.add(good._replace(discrete_actions=np.full((4, 2), 2)))
    assert len(buffer) == 0


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0, **SPEC)
    with pytest.raises(ValueError, match="reward_signals"):
        ReplayBuffer(4, [(3,)], reward_signals=["a", "a"])
    with pytest.raises(ValueError, match="alpha"):
        PrioritizedReplayBuffer(4, [(3,)], alpha=1.5)


# --- prioritized replay ---------------------------------------------------------------


def prioritized_buffer(priorities: list[float], **kwargs) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(len(priorities), **SPEC, seed=0, **kwargs)
    indices = buffer.add(transitions(np.arange(len(priorities))))
    eps = buffer.eps
    buffer.update_priorities(indices, np.array(priorities) - eps)  # p_i = |td| + eps
    return buffer


def test_sampling_frequencies_follow_priorities_to_the_alpha() -> None:
    priorities = [0.1, 1.0, 2.0, 3.0, 5.0, 8.0, 0.5, 13.0]
    alpha = 0.6
    buffer = prioritized_buffer(priorities, alpha=alpha)
    n_draws = 100 * 1000
    counts = np.zeros(len(priorities))
    for _ in range(100):
        counts += np.bincount(buffer.sample(1000).indices, minlength=len(priorities))
    expected = np.array(priorities) ** alpha / np.sum(np.array(priorities) ** alpha) * n_draws
    chi_square = np.sum((counts - expected) ** 2 / expected)
    # 26.0 is the 0.999 quantile of chi-square with 7 degrees of freedom; stratified
    # sampling only lowers the statistic.
    assert chi_square < 26.0, (counts, expected)
    np.testing.assert_allclose(counts / n_draws, expected / n_draws, atol=0.003)


def test_importance_weights_by_hand() -> None:
    # alpha = 0.5: p^alpha = [1, 2, 3, 4], P = [0.1, 0.2, 0.3, 0.4], N = 4, N*P = [.4, .8, 1.2, 1.6]
    buffer = prioritized_buffer([1.0, 4.0, 9.0, 16.0], alpha=0.5)
    # beta = 1: w = 1 / (N*P) = [2.5, 1.25, 0.8333, 0.625], normalised by the max 2.5
    expected_beta_1 = np.array([1.0, 0.5, 1 / 3, 0.25])
    # beta = 0.5: w = (N*P)^-0.5 = [1.5811, 1.1180, 0.9129, 0.7906], over 1.5811
    expected_beta_half = np.array([1.0, 0.4**0.5 / 0.8**0.5, 0.4**0.5 / 1.2**0.5, 0.5])
    for beta, expected in ((1.0, expected_beta_1), (0.5, expected_beta_half)):
        buffer.beta = beta
        sample = buffer.sample(64)
        assert set(sample.indices) == {0, 1, 2, 3}
        np.testing.assert_allclose(sample.weights, expected[sample.indices], rtol=1e-5)
        assert_consistent(sample)


def test_weights_normalised_by_the_buffer_wide_maximum() -> None:
    # The least likely transition sets the normaliser even when it is not in the batch.
    buffer = prioritized_buffer([1e-3, 1.0, 1.0, 1.0], alpha=1.0)
    sample = buffer.sample(3)  # beta 1 by default
    assert 0 not in sample.indices
    np.testing.assert_allclose(sample.weights, 1e-3, rtol=1e-4)


def test_beta_is_the_callers() -> None:
    # The buffer keeps no schedule: a function given as beta is asked at every draw (the
    # trainer gives its importance_sampling_beta, which anneals over environment steps).
    asked = iter([0.5, 0.5, 1.0])
    buffer = prioritized_buffer([1.0, 4.0], alpha=1.0, beta=lambda: next(asked))
    half = {0: 1.0, 1: (2 * 0.2 / (2 * 0.8)) ** 0.5}  # (N * P)^-0.5 over the max
    full = {0: 1.0, 1: 0.25}  # (N * P)^-1 over the max
    for expected in (half, half, full):
        sample = buffer.sample(8)
        np.testing.assert_allclose(sample.weights, [expected[i] for i in sample.indices])
    buffer.beta = 1.5
    with pytest.raises(ValueError, match=r"beta: expected in \[0, 1\], got 1.5"):
        buffer.sample(2)


def test_prioritized_is_a_sampling_strategy_of_the_same_signature() -> None:
    """Code written for ReplayBuffer samples a prioritized buffer unchanged: ``sample`` and
    ``update_priorities`` take the same arguments (uniform sampling ignores priorities),
    ``sample_uniform`` draws uniformly from either."""
    import inspect

    uniform = ReplayBuffer(8, **SPEC, seed=0)
    prioritized = prioritized_buffer([1e-3] * 7 + [100.0], alpha=1.0)
    uniform.add(transitions(np.arange(8)))
    assert (prioritized.sample(64).indices == 7).mean() > 0.9  # by priority
    assert (uniform.sample(64).indices == 7).mean() < 0.5
    for buffer in (uniform, prioritized):
        sample = buffer.sample(4)
        buffer.update_priorities(sample.indices, np.ones(4))
        even = buffer.sample_uniform(2000)
        np.testing.assert_array_equal(even.weights, 1.0)
        assert np.bincount(even.indices, minlength=8).min() > 150  # about 250 each
    signature = inspect.signature(ReplayBuffer.sample)
    assert list(signature.parameters) == ["self", "batch_size"]


def test_deprecated_beta_argument_still_draws_with_that_beta() -> None:
    """0.1's ``sample(batch_size, beta)`` keeps working, with a warning, for that draw only."""
    buffer = prioritized_buffer([1.0, 4.0], alpha=1.0, beta=1.0)
    with pytest.warns(DeprecationWarning, match=r"sample\(batch_size, beta\) is deprecated"):
        sample = buffer.sample(8, beta=0.5)
    expected = {0: 1.0, 1: (2 * 0.2 / (2 * 0.8)) ** 0.5}
    np.testing.assert_allclose(sample.weights, [expected[i] for i in sample.indices])
    assert buffer.beta == 1.0


def test_new_transitions_get_the_max_priority() -> None:
    buffer = PrioritizedReplayBuffer(8, **SPEC, alpha=0.5, seed=0)
    assert buffer.priorities(buffer.add(transitions(np.arange(2)))).tolist() == [1.0, 1.0]
    buffer.update_priorities([0, 1], [15.0, 0.0])
    np.testing.assert_allclose(
        buffer.priorities([0, 1]), [(15 + buffer.eps) ** 0.5, buffer.eps**0.5]
    )
    new = buffer.add(transitions(np.arange(2, 5)))
    np.testing.assert_allclose(buffer.priorities(new), (15 + buffer.eps) ** 0.5)


def test_update_priorities_rejects_bad_input() -> None:
    buffer = prioritized_buffer([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        buffer.update_priorities([0], [np.nan])
    with pytest.raises(IndexError, match="indices"):
        buffer.update_priorities([3], [1.0])
    with pytest.raises(ValueError, match="td_errors: expected shape"):
        buffer.update_priorities([0, 1], [1.0])


# --- n-step returns -------------------------------------------------------------------

END_NONE, END_DONE, END_TRUNCATED = 0, 1, 2


def steps_batch(rows: list[tuple[int, int]], streams: list) -> Transitions:
    """Steps ``(agent, t)`` of ``streams``: obs = id, next_obs = id + 0.5, id = 1000 * agent + t."""
    ids = np.array([1000.0 * agent + t for agent, t in rows])
    rewards = np.array([streams[agent][0][t] for agent, t in rows]).reshape(-1, len(SIGNALS))
    ends = np.array([streams[agent][1][t] for agent, t in rows])
    return Transitions(
        obs=[ids[:, None]],
        continuous_actions=np.zeros((len(ends), 0)),
        discrete_actions=(ids[:, None] % 4).astype(np.int64),
        action_masks=np.ones((len(ends), 4), bool),
        rewards={s: rewards[:, i] for i, s in enumerate(SIGNALS)},
        dones=ends == END_DONE,
        truncated=ends == END_TRUNCATED,
        next_obs=[ids[:, None] + 0.5],
        next_action_masks=np.ones((len(ends), 4), bool),
    )


def brute_force_n_step(
    rewards: np.ndarray, ends: list[int], n: int, gammas: dict[str, float]
) -> dict[int, dict]:
    """Step t -> its n-step transition, straight from the definition, one step at a time.

    Steps after the agent's last episode end are flushed as truncated (by ``flush()``).
    """
    result = {}
    last = len(ends) - 1
    for t in range(len(ends)):
        # the end of t's episode: the first step >= t that ends it (or the last step)
        end = next((u for u in range(t, len(ends)) if ends[u] != END_NONE), last)
        k = min(n, end - t + 1)
        reaches_end = t + k - 1 == end
        result[t] = dict(
            next_obs=t + k - 1 + 0.5,
            rewards={
                s: sum(gammas[s] ** i * rewards[t + i, j] for i in range(k))
                for j, s in enumerate(SIGNALS)
            },
            discounts={s: gammas[s] ** k for s in SIGNALS},
            done=reaches_end and ends[end] == END_DONE,
            # flush() cuts only the windows shorter than n; a full one is emitted as usual
            truncated=reaches_end
            and (ends[end] == END_TRUNCATED or (ends[end] == END_NONE and k < n)),
        )
    return result


@st.composite
def agent_streams(draw: st.DrawFn) -> list[tuple[np.ndarray, list[int]]]:
    streams = []
    for _ in range(draw(st.integers(1, 4))):
        length = draw(st.integers(1, 14))
        ends = draw(
            st.lists(
                st.sampled_from([END_NONE] * 4 + [END_DONE, END_TRUNCATED]),
                min_size=length,
                max_size=length,
            )
        )
        rewards = np.array(
            draw(st.lists(st.integers(-3, 3), min_size=2 * length, max_size=2 * length)), float
        ).reshape(length, 2)
        streams.append((rewards, ends))
    return streams


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


# --- save / load ----------------------------------------------------------------------


def filled_prioritized_buffer(seed: int = 0) -> PrioritizedReplayBuffer:
    buffer = PrioritizedReplayBuffer(16, **SPEC, seed=seed)
    buffer.add(transitions(np.arange(21)))  # wraps around: position 5
    buffer.beta = 0.4
    sample = buffer.sample(8)
    buffer.update_priorities(sample.indices, np.linspace(0.1, 4.0, 8))
    return buffer


def draw(buffer: ReplayBuffer, batch_size: int) -> ReplaySample:
    """A sample of either kind of buffer (prioritized ones with beta 0.7)."""
    if isinstance(buffer, PrioritizedReplayBuffer):
        buffer.beta = 0.7
    return buffer.sample(batch_size)


def assert_same_samples(a: ReplaySample, b: ReplaySample) -> None:
    for field_a, field_b in zip(a, b, strict=True):
        if isinstance(field_a, dict):
            for key in field_a:
                np.testing.assert_array_equal(field_a[key], field_b[key])
        elif isinstance(field_a, list):
            for x, y in zip(field_a, field_b, strict=True):
                np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_array_equal(field_a, field_b)


@pytest.mark.parametrize("prioritized", [False, True])
def test_save_load_round_trip(tmp_path: Path, prioritized: bool) -> None:
    if prioritized:
        original = filled_prioritized_buffer()
        restored: ReplayBuffer = PrioritizedReplayBuffer(16, **SPEC, seed=99)
    else:
        original = ReplayBuffer(16, **SPEC, seed=0)
        original.add(transitions(np.arange(21)))
        restored = ReplayBuffer(16, **SPEC, seed=99)
    path = tmp_path / "replay.npz"
    original.save(path)
    restored.load(path)
    assert len(restored) == len(original)
    if isinstance(original, PrioritizedReplayBuffer) and isinstance(
        restored, PrioritizedReplayBuffer
    ):
        np.testing.assert_array_equal(
            restored.priorities(np.arange(16)), original.priorities(np.arange(16))
        )
    # sampling continues identically (generator state restored), and so do inserts
    for step in range(3):
        assert_same_samples(draw(original, 32), draw(restored, 32))
        ids = np.arange(100 + 3 * step, 103 + 3 * step)
        np.testing.assert_array_equal(
            original.add(transitions(ids)), restored.add(transitions(ids))
        )


def test_crash_during_save_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "replay.npz"
    buffer = filled_prioritized_buffer()
    buffer.save(path)
    saved_bytes = path.read_bytes()
    expected = filled_prioritized_buffer()

    def crash_midway(file, **arrays) -> None:
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    buffer.add(transitions(np.arange(50, 60)))
    monkeypatch.setattr(np, "savez", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        buffer.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == saved_bytes
    assert os.listdir(tmp_path) == ["replay.npz"]  # no temporary file left behind
    restored = PrioritizedReplayBuffer(16, **SPEC, seed=1)
    restored.load(path)
    assert_same_samples(draw(restored, 16), draw(expected, 16))


def test_load_refuses_a_different_spec(tmp_path: Path) -> None:
    path = tmp_path / "replay.npz"
    filled_prioritized_buffer().save(path)
    mismatches = {
        "capacity": PrioritizedReplayBuffer(32, **SPEC),
        "obs_shapes": PrioritizedReplayBuffer(16, **{**SPEC, "obs_shapes": [(3,), (2, 2, 3)]}),
        "discrete_branches": PrioritizedReplayBuffer(16, **{**SPEC, "discrete_branches": [2, 2]}),
        "reward_signals": PrioritizedReplayBuffer(16, **{**SPEC, "reward_signals": ["extrinsic"]}),
        "alpha": PrioritizedReplayBuffer(16, **SPEC, alpha=0.5),
        "kind": ReplayBuffer(16, **SPEC),
    }
    for field, buffer in mismatches.items():
        with pytest.raises(ValueError, match=f"saved replay buffer has {field}="):
            buffer.load(path)


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


def assert_same_buffers(a: ReplayBuffer, b: ReplayBuffer) -> None:
    assert (len(a), a._position) == (len(b), b._position)
    for key, array in a._storage.items():
        np.testing.assert_array_equal(array, b._storage[key], err_msg=key)
    if isinstance(a, PrioritizedReplayBuffer):
        slots = np.arange(a.capacity)
        np.testing.assert_array_equal(a.priorities(slots), b.priorities(slots))


def test_loads_a_file_with_the_old_beta_step_counter(tmp_path: Path) -> None:
    # Before the trainer owned beta, a prioritized buffer's meta also held "sample_steps"
    # (FORMAT_VERSION 1 all the same): such files still load and sample alike.
    path = tmp_path / "replay.npz"
    saved = filled_prioritized_buffer()
    saved.save(path, info={"step": 7})
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays["meta"]))
    assert meta["format_version"] == 1 and "sample_steps" not in meta
    arrays["meta"] = np.array(json.dumps({**meta, "sample_steps": 1234}))
    old = tmp_path / "old.npz"
    with open(old, "wb") as file:
        np.savez(file, **arrays)
    restored = PrioritizedReplayBuffer(16, **SPEC, seed=5)
    assert restored.load(old) == {"step": 7}
    np.testing.assert_array_equal(
        restored.priorities(np.arange(16)), saved.priorities(np.arange(16))
    )
    assert_same_samples(draw(restored, 16), draw(saved, 16))


def test_replay_re_exports_the_moved_names() -> None:
    # Plugins import these from replay, where they lived before nstep and transitions.
    import mla_plugin_core.replay
    import mla_plugin_core.replay.nstep
    import mla_plugin_core.replay.transitions

    assert mla_plugin_core.replay.NStepAccumulator is mla_plugin_core.replay.nstep.NStepAccumulator
    for name in ("Transitions", "ReplaySample", "select_rows", "concatenate_transitions"):
        assert getattr(mla_plugin_core.replay, name) is getattr(
            mla_plugin_core.replay.transitions, name
        )


def test_every_field_is_declared_once() -> None:
    # The buffer's storage, the sample and the AgentBuffer view follow FIELDS alone.
    from mla_plugin_core.replay.transitions import FIELDS, layout, to_agent_buffer

    assert [f.name for f in FIELDS] == list(Transitions._fields)
    buffer = ReplayBuffer(8, **SPEC)
    assert list(buffer._layout) == list(layout(OBS_SHAPES, 2, BRANCHES, SIGNALS))
    buffer.add(transitions(np.arange(5)))
    sample = buffer.sample(4)
    for field, value in zip(FIELDS, sample, strict=False):
        arrays = value.values() if isinstance(value, dict) else value
        for array in arrays if field.kind != "array" else [value]:
            assert array.dtype == field.dtype, field.name
    view = to_agent_buffer(sample)
    assert view.num_experiences == 4
    np.testing.assert_array_equal(view[BufferKey.DONE].get_batch(), sample.dones)
    np.testing.assert_array_equal(view[BufferKey.ACTION_MASK].get_batch(), sample.action_masks)
    np.testing.assert_array_equal(
        view[BufferKey.ENVIRONMENT_REWARDS].get_batch(), sample.rewards["extrinsic"]
    )
