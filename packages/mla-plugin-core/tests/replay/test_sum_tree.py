import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mla_plugin_core.replay.sum_tree import MinTree, SumTree

DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=60)


def test_total_and_leaves_after_updates() -> None:
    tree = SumTree(5)  # not a power of two: 8 leaves, 3 unused
    tree.update([0, 2, 4], [1.0, 2.0, 3.0])
    assert tree.total == 6.0
    np.testing.assert_array_equal(tree.leaves, [1.0, 0.0, 2.0, 0.0, 3.0])
    tree.update([2], [10.0])
    assert tree.total == 14.0
    np.testing.assert_array_equal(tree[[2, 4]], [10.0, 3.0])


def test_repeated_indices_last_value_wins() -> None:
    tree = SumTree(4)
    tree.update([1, 1, 1], [5.0, 6.0, 7.0])
    assert tree[[1]][0] == 7.0
    assert tree.total == 7.0


def test_prefix_search_by_hand() -> None:
    tree = SumTree(4)
    tree.update([0, 1, 2, 3], [1.0, 0.0, 2.0, 3.0])  # cumulative sums 1, 1, 3, 6
    found = tree.find_prefix_sum([0.0, 0.99, 1.0, 2.5, 3.0, 5.99])
    np.testing.assert_array_equal(found, [0, 0, 2, 2, 3, 3])


def test_prefix_search_never_returns_a_zero_leaf() -> None:
    tree = SumTree(6)
    tree.update([1, 3], [0.1, 0.2])
    # At and beyond the total (as rounding can produce), the last positive leaf is returned.
    found = tree.find_prefix_sum([0.0, tree.total, tree.total * (1 + 1e-12), 1e9, -1.0])
    np.testing.assert_array_equal(found, [1, 3, 3, 3, 1])


def test_single_leaf() -> None:
    tree = SumTree(1)
    tree.update([0], [2.5])
    assert tree.total == 2.5
    np.testing.assert_array_equal(tree.find_prefix_sum([0.0, 2.4]), [0, 0])


def test_empty_tree_and_bad_indices_raise() -> None:
    tree = SumTree(3)
    with pytest.raises(ValueError, match="total is 0"):
        tree.find_prefix_sum([0.0])
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        tree.update([3], [1.0])
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0)


def test_min_tree() -> None:
    tree = MinTree(5)
    assert tree.min == float("inf")
    tree.update([0, 3], [4.0, 2.0])
    assert tree.min == 2.0
    tree.update([3], [9.0])
    assert tree.min == 4.0


@DETERMINISTIC
@given(
    capacity=st.integers(1, 70),
    updates=st.lists(st.tuples(st.integers(0, 69), st.integers(0, 9)), min_size=1, max_size=60),
    data=st.data(),
)
def test_matches_brute_force(capacity: int, updates: list, data: st.DataObject) -> None:
    """Integer priorities keep every sum exact, so the search must match ``searchsorted``."""
    sum_tree, min_tree = SumTree(capacity), MinTree(capacity)
    leaves = np.zeros(capacity)
    indices = np.array([i % capacity for i, _ in updates])
    values = np.array([float(v) for _, v in updates])
    sum_tree.update(indices, values)
    min_tree.update(indices, values)
    for i, v in zip(indices, values, strict=True):
        leaves[i] = v
    assert sum_tree.total == leaves.sum()
    assert min_tree.min == leaves[np.unique(indices)].min()
    np.testing.assert_array_equal(sum_tree.leaves, leaves)
    if leaves.sum() == 0:
        return
    # Query the middle of each unit of mass: u = k + 0.5 for k < total.
    k = np.array(data.draw(st.lists(st.integers(0, int(leaves.sum()) - 1), min_size=1)))
    u = k + 0.5
    expected = np.searchsorted(np.cumsum(leaves), u, side="right")
    np.testing.assert_array_equal(sum_tree.find_prefix_sum(u), expected)
