"""Array-based segment trees for prioritized experience replay.

Prioritized replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952, Appendix B.2.1)
samples transition ``i`` with probability ``p_i / sum_k p_k``. A sum tree answers
"which leaf holds the prefix sum ``u``" in ``O(log N)``, and a min tree gives
``min_k p_k`` for the importance-weight normaliser, both after ``O(log N)`` updates.

Layout (as in OpenAI baselines' ``segment_tree.py``): ``nodes`` has ``2 * n_leaves`` entries,
``n_leaves`` a power of two; node ``1`` is the root, node ``i`` has children ``2i`` and
``2i + 1``; leaf ``j`` lives at node ``n_leaves + j``. Node ``0`` is unused.

Every operation takes a whole batch of indices and loops over the ``log2(n_leaves)`` tree
levels only, never over the items of the batch.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class SegmentTree:
    """A complete binary tree whose inner nodes combine their children with ``operation``.

    :param capacity: number of leaves that can be addressed, ``>= 1``.
    :param operation: an associative, commutative numpy ufunc (``np.add``, ``np.minimum``).
    :param neutral: the identity of ``operation`` (``0.0`` for sums, ``inf`` for minima);
        every leaf starts at this value.
    """

    def __init__(self, capacity: int, operation: np.ufunc, neutral: float) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.operation = operation
        self.neutral = float(neutral)
        self.depth = max(int(np.ceil(np.log2(self.capacity))), 0)
        self.n_leaves = 1 << self.depth
        self.nodes = np.full(2 * self.n_leaves, self.neutral, dtype=np.float64)

    def _leaf_nodes(self, indices: npt.ArrayLike) -> npt.NDArray[np.int64]:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            raise IndexError(
                f"leaf indices must be in [0, {self.capacity}), "
                f"got range [{idx.min()}, {idx.max()}]"
            )
        return idx + self.n_leaves

    def update(self, indices: npt.ArrayLike, values: npt.ArrayLike) -> None:
        """Set leaves ``indices`` to ``values`` and recompute their ancestors.

        :param indices: leaf indices, int ``[B]``; with repeats, the last value wins.
        :param values: new leaf values, float ``[B]`` (or a scalar for all of them).
        """
        nodes = self._leaf_nodes(indices)
        self.nodes[nodes] = np.broadcast_to(np.asarray(values, np.float64), nodes.shape)
        for _ in range(self.depth):
            # Repeated parents are harmless: each gets the same value from its children.
            nodes = nodes // 2
            self.nodes[nodes] = self.operation(self.nodes[2 * nodes], self.nodes[2 * nodes + 1])

    def __getitem__(self, indices: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Leaf values at ``indices`` (int ``[B]``), float64 ``[B]``."""
        return self.nodes[self._leaf_nodes(indices)]

    @property
    def leaves(self) -> npt.NDArray[np.float64]:
        """All ``capacity`` leaf values, float64 ``[capacity]`` (a view)."""
        return self.nodes[self.n_leaves : self.n_leaves + self.capacity]

    def reduce(self) -> float:
        """``operation`` over all leaves (the root)."""
        return float(self.nodes[1])


class SumTree(SegmentTree):
    """Sums of leaf priorities with a batched prefix-sum search.

    :param capacity: number of leaves, ``>= 1``. All leaves start at ``0``.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, np.add, 0.0)

    @property
    def total(self) -> float:
        """Sum of all leaves."""
        return self.reduce()

    def find_prefix_sum(self, prefix_sums: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """For each ``u`` the leaf ``j`` with ``sum_{k<j} p_k <= u < sum_{k<=j} p_k``.

        Descends all queries together, one tree level per step. A query never enters a
        subtree whose sum is ``0``, so a leaf of priority ``0`` is never returned while the
        total is positive, even when rounding pushes ``u`` up to the total.

        :param prefix_sums: float ``[B]`` in ``[0, total)``; values outside are clipped.
        :return: leaf indices, int64 ``[B]``.
        """
        if self.total <= 0.0:
            raise ValueError("cannot search a sum tree whose total is 0")
        u = np.clip(np.asarray(prefix_sums, dtype=np.float64).reshape(-1), 0.0, None)
        node = np.ones(u.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            left_sum = self.nodes[left]
            go_right = (u >= left_sum) & (self.nodes[left + 1] > 0.0)
            u = np.where(go_right, u - left_sum, u)
            node = left + go_right
        return node - self.n_leaves


class MinTree(SegmentTree):
    """Minimum over leaves; leaves never set count as ``+inf``.

    :param capacity: number of leaves, ``>= 1``.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, np.minimum, float("inf"))

    @property
    def min(self) -> float:
        """Smallest leaf value (``inf`` when no leaf was set)."""
        return self.reduce()
