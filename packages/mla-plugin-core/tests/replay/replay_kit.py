import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.replay.transitions import (
    ReplaySample,
    Transitions,
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


def assert_same_buffers(a: ReplayBuffer, b: ReplayBuffer) -> None:
    assert (len(a), a._position) == (len(b), b._position)
    for key, array in a._storage.items():
        np.testing.assert_array_equal(array, b._storage[key], err_msg=key)
    if isinstance(a, PrioritizedReplayBuffer):
        slots = np.arange(a.capacity)
        np.testing.assert_array_equal(a.priorities(slots), b.priorities(slots))


# --- per-agent step streams, the n-step definition ---------------------------------

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
