import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from replay_kit import (
    DETERMINISTIC,
    SPEC,
    assert_consistent,
    transitions,
)

from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.replay.transitions import (
    ReplaySample,
)


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
