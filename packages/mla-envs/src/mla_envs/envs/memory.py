"""Memory: a corridor whose rewarding end is shown once, at the first step only.

Each agent stands in the middle (position 5) of a corridor of positions 0..10. At the first
step of an episode the observation shows a cue, left or right (drawn at random); from then on
the cue is hidden. The cued end gives +1 and ends the episode, the other end -1 and ends it;
every step costs 0.01. The first step is the cue step: its action is ignored, so the agent's
position says nothing about the cue. Episodes are cut after 30 steps (``max_step_reached``).

Observation (size 13): the one-hot position (11), then the cue (2: left, right; zeros after
the first step). One discrete branch of 3 actions: 0 stay, 1 step left, 2 step right.

An agent that remembers the cue walks 5 steps to the cued end: return 1 - 6 * 0.01 = 0.94
(the cue step costs too). Without memory every step after the first looks the same whatever
the cue, so the best an agent can do is to pick one end: return 0.5 * 0.94 + 0.5 * (-1.06)
= -0.06 on average.
"""

from __future__ import annotations

import numpy as np

from mla_envs.envs.base import Actions, AgentBatch, BehaviorSpec, VectorEnv
from mla_envs.parameters import EnvironmentParameters

LENGTH = 11  # positions 0 .. 10
START = 5
GOAL_REWARD, WRONG_END_REWARD, STEP_PENALTY = 1.0, -1.0, -0.01
MAX_STEPS = 30
#: Position change per action: 0 stay, 1 left, 2 right.
MOVES = np.array([0, -1, 1])
#: The optimum's return: 5 moves and the cue step.
OPTIMAL_RETURN = GOAL_REWARD + 6 * STEP_PENALTY
FIXED_DELTA_TIME = 0.02


class MemoryEnv(VectorEnv):
    """``num_agents`` independent corridors, each with its own cue.

    :param num_agents: number of agents.
    """

    seconds_per_step = FIXED_DELTA_TIME

    def __init__(
        self, num_agents: int = 8, parameters: EnvironmentParameters | None = None
    ) -> None:
        super().__init__(parameters)
        self.num_agents = num_agents
        self.spec = BehaviorSpec(
            "Memory", observation_shapes=((LENGTH + 2,),), discrete_branches=(len(MOVES),)
        )
        self.agent_ids = np.arange(num_agents, dtype=np.int32)
        self.position = np.full(num_agents, START, dtype=np.int64)
        self.cue = np.zeros(num_agents, dtype=np.int64)  # 0: left end rewards, 1: right end
        self.steps = np.zeros(num_agents, dtype=np.int64)  # steps taken in the episode
        self.rng = np.random.default_rng(0)

    def seed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def _new_episodes(self, agents: np.ndarray) -> None:
        self.position[agents] = START
        self.steps[agents] = 0
        self.cue[agents] = self.rng.integers(0, 2, len(agents))

    def reset(self) -> AgentBatch:
        self._new_episodes(self.agent_ids)
        return self._batch(self.agent_ids, np.zeros(self.num_agents, np.float32))

    def step(self, actions: Actions) -> tuple[AgentBatch, AgentBatch]:
        move = MOVES[actions.discrete[:, 0]] * (self.steps > 0)  # the cue step: no move
        self.position = np.clip(self.position + move, 0, LENGTH - 1)
        self.steps += 1
        at_end = (self.position == 0) | (self.position == LENGTH - 1)
        right_end = self.position == (LENGTH - 1) * self.cue  # the cued end
        reward = STEP_PENALTY + np.where(
            at_end, np.where(right_end, GOAL_REWARD, WRONG_END_REWARD), 0.0
        )
        cut = ~at_end & (self.steps >= MAX_STEPS)
        done = at_end | cut
        terminal = self._batch(self.agent_ids[done], reward[done], interrupted=cut[done])
        self._new_episodes(self.agent_ids[done])
        decision = self._batch(self.agent_ids, np.where(done, 0.0, reward))
        return terminal, decision

    def _batch(
        self, agent_ids: np.ndarray, rewards: np.ndarray, interrupted: np.ndarray | None = None
    ) -> AgentBatch:
        obs = np.zeros((len(agent_ids), LENGTH + 2), np.float32)
        rows = np.arange(len(agent_ids))
        obs[rows, self.position[agent_ids]] = 1.0
        first = self.steps[agent_ids] == 0
        obs[rows[first], LENGTH + self.cue[agent_ids][first]] = 1.0  # the cue, first step only
        return AgentBatch(
            agent_ids,
            (obs,),
            rewards.astype(np.float32),
            np.zeros(len(agent_ids), bool) if interrupted is None else interrupted,
        )
