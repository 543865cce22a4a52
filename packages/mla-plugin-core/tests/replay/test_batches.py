"""mla_plugin_core.replay.batches: typed replay batches, one discount column per signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mla_plugin_core.replay.batches import ReplayBatch
from mla_plugin_core.replay.transitions import ReplaySample


def _sample(discounts: dict[str, list[float]]) -> ReplaySample:
    n = len(next(iter(discounts.values())))
    return ReplaySample(
        obs=[np.zeros((n, 2), np.float32)],
        continuous_actions=np.zeros((n, 0), np.float32),
        discrete_actions=np.zeros((n, 2), np.int32),
        action_masks=np.ones((n, 5), bool),
        rewards={name: np.full(n, i + 1.0, np.float32) for i, name in enumerate(discounts)},
        dones=np.array([True] + [False] * (n - 1)),
        truncated=np.zeros(n, bool),
        next_obs=[np.ones((n, 2), np.float32)],
        next_action_masks=np.ones((n, 5), bool),
        discounts={name: np.asarray(d, np.float32) for name, d in discounts.items()},
        indices=np.arange(n),
        weights=np.ones(n, np.float32),
    )


def test_replay_batch_has_one_discount_column_per_signal_in_the_order_asked():
    sample = _sample({"extrinsic": [0.99, 0.9801], "curiosity": [0.9, 0.81]})
    batch = ReplayBatch.from_sample(sample, ["curiosity", "extrinsic"])
    assert batch.signal_names == ("curiosity", "extrinsic")
    torch.testing.assert_close(batch.discounts, torch.tensor([[0.9, 0.99], [0.81, 0.9801]]))
    torch.testing.assert_close(batch.rewards, torch.tensor([[2.0, 1.0], [2.0, 1.0]]))
    assert batch.batch_size == 2
    assert batch.discrete_actions.dtype == torch.long
    assert batch.action_masks.dtype == torch.bool
    assert batch.dones.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match=r"\['gail'\] not in the replay sample"):
        ReplayBatch.from_sample(sample, ["gail"])
