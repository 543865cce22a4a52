"""Environment parameters: floats and samplers set by the trainer, read by environments.

This is the environment's end of mlagents' ``environment_parameters`` (trainer YAML) and
``EnvironmentParametersChannel``. As in Unity's ``Academy.EnvironmentParameters``, a key
holds either a constant or a sampler, and every read of a sampler key draws a new value
(3DBall reads ``mass`` and ``scale`` at the start of each episode, per agent).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Draws ``n`` values; ``n`` agents starting an episode at once.
Sampler = Callable[[int], np.ndarray]


def uniform_sampler(low: float, high: float, seed: int) -> Sampler:
    """Uniform on ``[low, high)``, with its own generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    return lambda n: rng.uniform(low, high, size=n)


def gaussian_sampler(mean: float, std: float, seed: int) -> Sampler:
    """Normal with mean ``mean`` and standard deviation ``std``."""
    rng = np.random.default_rng(seed)
    return lambda n: rng.normal(mean, std, size=n)


def multirange_uniform_sampler(intervals: list[float], seed: int) -> Sampler:
    """Uniform over a union of intervals ``[a0, b0, a1, b1, ...]``.

    An interval is picked with probability proportional to its length, then a value
    uniformly inside it.
    """
    if len(intervals) % 2 or not intervals:
        raise ValueError(f"a multirange sampler needs pairs (min, max), got {intervals!r}")
    bounds = np.asarray(intervals, dtype=np.float64).reshape(-1, 2)
    lengths = bounds[:, 1] - bounds[:, 0]
    probabilities = lengths / lengths.sum()
    rng = np.random.default_rng(seed)

    def sample(n: int) -> np.ndarray:
        which = rng.choice(len(bounds), size=n, p=probabilities)
        return rng.uniform(bounds[which, 0], bounds[which, 1])

    return sample


class EnvironmentParameters:
    """Named float parameters of the environment, each a constant or a sampler."""

    def __init__(self) -> None:
        self._constants: dict[str, float] = {}
        self._samplers: dict[str, Sampler] = {}

    def set_float(self, key: str, value: float) -> None:
        """Fix ``key`` to ``value`` (replaces a sampler)."""
        self._samplers.pop(key, None)
        self._constants[key] = float(value)

    def set_sampler(self, key: str, sampler: Sampler) -> None:
        """Draw ``key`` from ``sampler`` at every read (replaces a constant)."""
        self._constants.pop(key, None)
        self._samplers[key] = sampler

    def sample(self, key: str, default: float, n: int) -> np.ndarray:
        """``n`` values of ``key``: ``[n]`` float32, ``default`` when it is unset."""
        if key in self._samplers:
            return np.asarray(self._samplers[key](n), dtype=np.float32)
        return np.full(n, self._constants.get(key, default), dtype=np.float32)

    def get(self, key: str, default: float) -> float:
        """One value of ``key``, like Unity's ``GetWithDefault``."""
        return float(self.sample(key, default, 1)[0])

    def keys(self) -> list[str]:
        """The keys the trainer has set."""
        return sorted({*self._constants, *self._samplers})
