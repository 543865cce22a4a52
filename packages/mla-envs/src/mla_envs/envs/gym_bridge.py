"""Any registered Gymnasium environment as one ML-Agents behavior with N agents.

Each agent is its own copy of the Gymnasium environment (``gymnasium.make(env_id)``),
so ``num_agents`` copies run side by side and one trainer message carries them all.

Spaces:

* Observation ``Box`` (any shape; sent flattened to 1-D, float32) or ``Discrete(n)``
  (sent one-hot, size n).
* Action ``Box`` -> continuous actions. The trainer's actions lie in [-1, 1]; they are
  rescaled linearly to ``[low, high]`` per dimension (dimensions with an infinite bound
  get the raw value).
* Action ``Discrete(n, start)`` -> one branch of n; ``MultiDiscrete(nvec)`` -> one
  branch per entry (``start`` offsets added back); ``MultiBinary(n)`` -> n branches of 2.
* Action masks: when ``reset``/``step`` return ``info["action_mask"]`` (the Gymnasium
  convention, 1 = allowed; a tuple of per-branch masks for ``MultiDiscrete``) they are
  passed on.

Other spaces (``Dict``, ``Tuple``, ``Text``, ``Graph``, ...) raise
:class:`UnsupportedSpaceError` naming the space.

Episodes: ``terminated`` ends the episode; ``truncated`` (e.g. a ``TimeLimit``) ends it
with ``max_step_reached``. The copy is then reset at once. Copy ``i`` is seeded with
``seed + i`` at its first reset.

Behavior name: the id with every character other than letters, digits, ``-``, ``_`` and
``.`` replaced by ``_`` (``ALE/Pong-v5`` -> ``ALE_Pong-v5``; ``CartPole-v1`` stays), as
mlagents uses behavior names in file names and gives ``?`` a meaning.
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from mla_envs.envs import UnsupportedSpaceError
from mla_envs.envs.base import Actions, AgentBatch, BehaviorSpec, VectorEnv
from mla_envs.parameters import EnvironmentParameters

SUPPORTED_OBSERVATION_SPACES = ("Box", "Discrete")
SUPPORTED_ACTION_SPACES = ("Box", "Discrete", "MultiDiscrete", "MultiBinary")
#: Steps per simulated second for environments that declare no ``render_fps``.
DEFAULT_FPS = 50


def behavior_name(env_id: str) -> str:
    """The behavior name for a Gymnasium id (see the module docstring)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", env_id)


def _unsupported(kind: str, env_id: str, space: spaces.Space, allowed) -> None:
    raise UnsupportedSpaceError(
        f"{env_id}: {kind} space {space!r} is not supported; "
        f"supported {kind} spaces: {', '.join(allowed)}"
    )


class ObservationCodec:
    """Turns one Gymnasium observation into a flat float32 vector."""

    def __init__(self, env_id: str, space: spaces.Space) -> None:
        if isinstance(space, spaces.Box):
            self.size = int(np.prod(space.shape))
            self.one_hot = None
        elif isinstance(space, spaces.Discrete):
            self.size = int(space.n)
            self.one_hot = int(space.start)
        else:
            _unsupported("observation", env_id, space, SUPPORTED_OBSERVATION_SPACES)

    def encode(self, observation: Any) -> np.ndarray:
        """``[size]`` float32."""
        if self.one_hot is None:
            return np.asarray(observation, dtype=np.float32).reshape(-1)
        vector = np.zeros(self.size, dtype=np.float32)
        vector[int(observation) - self.one_hot] = 1.0
        return vector


class ActionCodec:
    """Maps ML-Agents actions of one agent to a Gymnasium action, and masks back."""

    def __init__(self, env_id: str, space: spaces.Space) -> None:
        self.space = space
        self.continuous_size = 0
        self.branches: tuple[int, ...] = ()
        self.offset = np.zeros(0, dtype=np.int64)
        if isinstance(space, spaces.Box):
            self.continuous_size = int(np.prod(space.shape))
            low = np.broadcast_to(space.low, space.shape).reshape(-1).astype(np.float64)
            high = np.broadcast_to(space.high, space.shape).reshape(-1).astype(np.float64)
            self.finite = np.isfinite(low) & np.isfinite(high)
            self.center = np.where(self.finite, (low + high) / 2, 0.0)
            self.half_range = np.where(self.finite, (high - low) / 2, 1.0)
        elif isinstance(space, spaces.Discrete):
            self.branches = (int(space.n),)
            self.offset = np.array([int(space.start)])
        elif isinstance(space, spaces.MultiDiscrete):
            self.branches = tuple(int(n) for n in np.asarray(space.nvec).reshape(-1))
            start = getattr(space, "start", None)
            self.offset = (
                np.zeros(len(self.branches), dtype=np.int64)
                if start is None
                else np.asarray(start).reshape(-1).astype(np.int64)
            )
        elif isinstance(space, spaces.MultiBinary):
            self.branches = (2,) * int(np.prod(space.shape))
            self.offset = np.zeros(len(self.branches), dtype=np.int64)
        else:
            _unsupported("action", env_id, space, SUPPORTED_ACTION_SPACES)

    def decode(self, continuous: np.ndarray, discrete: np.ndarray) -> Any:
        """One agent's ML-Agents action -> a member of the Gymnasium action space."""
        space = self.space
        if isinstance(space, spaces.Box):
            value = self.center + self.half_range * continuous.astype(np.float64)
            return value.reshape(space.shape).astype(space.dtype)
        value = discrete.astype(np.int64) + self.offset
        if isinstance(space, spaces.Discrete):
            return int(value[0])
        return value.reshape(space.shape).astype(space.dtype)

    def mask(self, info: dict) -> np.ndarray | None:
        """ML-Agents mask (True = forbidden) from ``info["action_mask"]``, if any."""
        allowed = info.get("action_mask")
        if allowed is None or not self.branches:
            return None
        if isinstance(allowed, tuple | list):
            allowed = np.concatenate([np.asarray(a).reshape(-1) for a in allowed])
        allowed = np.asarray(allowed).reshape(-1)
        if len(allowed) != sum(self.branches):
            return None
        return allowed == 0


class GymnasiumEnv(VectorEnv):
    """``num_agents`` copies of ``gymnasium.make(env_id, **kwargs)``.

    :param env_id: a registered Gymnasium id, or ``"module:Id"`` to import ``module``
        first (Gymnasium's own syntax for third-party environments).
    :param num_agents: number of copies.
    :param kwargs: passed to ``gymnasium.make``.
    """

    def __init__(
        self,
        env_id: str,
        num_agents: int = 8,
        parameters: EnvironmentParameters | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(parameters)
        self.env_id = env_id
        self.num_agents = num_agents
        self.copies = [gym.make(env_id, **kwargs) for _ in range(num_agents)]
        first = self.copies[0]
        self.observation = ObservationCodec(env_id, first.observation_space)
        self.action = ActionCodec(env_id, first.action_space)
        name = behavior_name(env_id.split(":")[-1])
        self.spec = BehaviorSpec(
            name,
            observation_shapes=((self.observation.size,),),
            continuous_size=self.action.continuous_size,
            discrete_branches=self.action.branches,
        )
        fps = first.metadata.get("render_fps") or DEFAULT_FPS
        self.seconds_per_step = 1.0 / fps
        self.agent_ids = np.arange(num_agents, dtype=np.int32)
        self._seed: int | None = None
        self._seeded = False
        self._last_obs = np.zeros((num_agents, self.observation.size), np.float32)
        self._masks = np.zeros((num_agents, self.spec.mask_size), dtype=bool)
        self._has_masks = False

    def seed(self, seed: int) -> None:
        self._seed = seed
        self._seeded = False

    def reset(self) -> AgentBatch:
        for i in range(self.num_agents):
            self._reset_copy(i)
        self._seeded = True
        return self._decision(np.zeros(self.num_agents, np.float32))

    def step(self, actions: Actions) -> tuple[AgentBatch, AgentBatch]:
        n = self.num_agents
        rewards = np.zeros(n, np.float32)
        done = np.zeros(n, dtype=bool)
        interrupted = np.zeros(n, dtype=bool)
        final_obs = np.zeros_like(self._last_obs)
        for i, env in enumerate(self.copies):
            action = self.action.decode(actions.continuous[i], actions.discrete[i])
            obs, reward, terminated, truncated, info = env.step(action)
            rewards[i] = reward
            self._remember(i, obs, info)
            if terminated or truncated:
                done[i] = True
                interrupted[i] = truncated and not terminated
                final_obs[i] = self._last_obs[i]
                self._reset_copy(i)
        terminal = AgentBatch(
            self.agent_ids[done],
            (final_obs[done],),
            rewards[done],
            interrupted[done],
        )
        return terminal, self._decision(np.where(done, 0.0, rewards))

    def close(self) -> None:
        for env in self.copies:
            env.close()

    def _reset_copy(self, i: int) -> None:
        seed = None
        if not self._seeded and self._seed is not None:
            seed = self._seed + i
            self.copies[i].action_space.seed(seed)
        obs, info = self.copies[i].reset(seed=seed)
        self._remember(i, obs, info)

    def _remember(self, i: int, obs: Any, info: dict) -> None:
        self._last_obs[i] = self.observation.encode(obs)
        mask = self.action.mask(info)
        if mask is not None:
            self._masks[i] = mask
            self._has_masks = True

    def _decision(self, rewards: np.ndarray) -> AgentBatch:
        return AgentBatch(
            self.agent_ids,
            (self._last_obs.copy(),),
            rewards.astype(np.float32),
            np.zeros(self.num_agents, dtype=bool),
            self._masks.copy() if self._has_masks else None,
        )
