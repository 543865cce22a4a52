import numpy as np
from hypothesis import settings

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
