"""A tiny Gymnasium environment for the tests: two discrete branches with masks.

Imported by the environment process through Gymnasium's ``"module:Id"`` syntax
(``gym:branchy_env:Branchy-v0``), with this folder on ``PYTHONPATH``.

Actions: ``MultiDiscrete([3, 2])``. Observation ``[steps so far, last a0, last a1]``.
Reward ``a0 + 10 * a1``. Choosing ``(2, 1)`` terminates; otherwise the ``TimeLimit``
truncates after 5 steps. ``info["action_mask"]`` forbids ``a0 = 1`` on odd steps.
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Branchy(gym.Env):
    metadata = {"render_fps": 50}

    def __init__(self):
        self.observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.action_space = spaces.MultiDiscrete([3, 2])
        self.steps = 0

    def _mask(self):
        first = np.array([1, self.steps % 2 == 0, 1], dtype=np.int8)
        return (first, np.ones(2, dtype=np.int8))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return np.zeros(3, np.float32), {"action_mask": self._mask()}

    def step(self, action):
        self.steps += 1
        a0, a1 = int(action[0]), int(action[1])
        obs = np.array([self.steps, a0, a1], np.float32)
        terminated = (a0, a1) == (2, 1)
        return obs, float(a0 + 10 * a1), terminated, False, {"action_mask": self._mask()}


gym.register("Branchy-v0", entry_point=Branchy, max_episode_steps=5)
