"""Basic: Unity's simplest ML-Agents example, with its exact rules, vectorised.

Each agent walks on the integer positions 0..20 and starts at 10. A small goal lies at 7
(+0.1) and a large goal at 17 (+1). Every move costs 0.01. Reaching a goal ends the
episode and puts the agent back at 10. One discrete branch of 3 actions: 0 stay, 1 step
left, 2 step right. The observation is the one-hot position, of size 20 (position 20,
unreachable from 10 without crossing 17, has no slot, as in Unity). No step limit (the
Unity prefab's MaxStep is 0). Source: ``Examples/Basic/Scripts/BasicController.cs``.

An optimal agent walks right 7 steps: return 1 - 7 * 0.01 = 0.93.
"""

from __future__ import annotations

import numpy as np

from mla_envs.envs.base import Actions, AgentBatch, BehaviorSpec, VectorEnv
from mla_envs.parameters import EnvironmentParameters

MIN_POSITION = 0
MAX_POSITION = 20
START_POSITION = 10
SMALL_GOAL, SMALL_GOAL_REWARD = 7, 0.1
LARGE_GOAL, LARGE_GOAL_REWARD = 17, 1.0
STEP_PENALTY = -0.01
#: Position change per action: 0 stay, 1 left, 2 right.
MOVES = np.array([0, -1, 1])
#: Unity's fixed timestep; Basic decides at every physics step.
FIXED_DELTA_TIME = 0.02


class BasicEnv(VectorEnv):
    """``num_agents`` independent Basic agents.

    :param num_agents: number of agents (the Unity scene has 1; more is faster to
        train with, as one message then carries several agents).
    """

    seconds_per_step = FIXED_DELTA_TIME

    def __init__(
        self, num_agents: int = 8, parameters: EnvironmentParameters | None = None
    ) -> None:
        super().__init__(parameters)
        self.num_agents = num_agents
        self.spec = BehaviorSpec(
            "Basic",
            observation_shapes=((MAX_POSITION - MIN_POSITION,),),
            discrete_branches=(len(MOVES),),
        )
        self.agent_ids = np.arange(num_agents, dtype=np.int32)
        self.position = np.full(num_agents, START_POSITION, dtype=np.int64)

    def seed(self, seed: int) -> None:
        """Basic is deterministic: nothing to seed."""

    def reset(self) -> AgentBatch:
        self.position[:] = START_POSITION
        return self._batch(self.agent_ids, np.zeros(self.num_agents, dtype=np.float32))

    def step(self, actions: Actions) -> tuple[AgentBatch, AgentBatch]:
        move = MOVES[actions.discrete[:, 0]]
        self.position = np.clip(self.position + move, MIN_POSITION, MAX_POSITION)
        small = self.position == SMALL_GOAL
        large = self.position == LARGE_GOAL
        reward = (STEP_PENALTY + SMALL_GOAL_REWARD * small + LARGE_GOAL_REWARD * large).astype(
            np.float32
        )
        done = small | large
        terminal = self._batch(self.agent_ids[done], reward[done])
        self.position[done] = START_POSITION
        # Agents that just finished start their next episode with reward 0.
        decision = self._batch(self.agent_ids, np.where(done, 0.0, reward))
        return terminal, decision

    def _batch(self, agent_ids: np.ndarray, rewards: np.ndarray) -> AgentBatch:
        one_hot = np.zeros((len(agent_ids), MAX_POSITION - MIN_POSITION), np.float32)
        one_hot[np.arange(len(agent_ids)), self.position[agent_ids]] = 1.0
        return AgentBatch(
            agent_ids,
            (one_hot,),
            rewards.astype(np.float32),
            np.zeros(len(agent_ids), dtype=bool),
        )
