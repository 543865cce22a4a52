"""Write ML-Agents ``.demo`` files for tests, in the format mlagents' demo_loader reads:
a length-delimited DemonstrationMetaProto, then (from byte 33) a BrainParametersProto and
one AgentInfoActionPairProto per recorded step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mlagents.trainers.demo_loader import write_demo
from mlagents_envs.communicator_objects.agent_action_pb2 import AgentActionProto
from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_envs.communicator_objects.agent_info_pb2 import AgentInfoProto
from mlagents_envs.communicator_objects.brain_parameters_pb2 import (
    ActionSpecProto,
    BrainParametersProto,
)
from mlagents_envs.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto
from mlagents_envs.communicator_objects.observation_pb2 import NONE, ObservationProto

N_POSITIONS = 20
START, GOAL = 10, 17
STEP_REWARD, GOAL_REWARD = -0.01, 1.0
RIGHT = 2


def _pair(position: int, reward: float, done: bool, action: int) -> AgentInfoActionPairProto:
    observation = ObservationProto(shape=[N_POSITIONS], compression_type=NONE)
    observation.float_data.data.extend(np.eye(N_POSITIONS, dtype=np.float32)[position].tolist())
    info = AgentInfoProto(reward=reward, done=done, id=0, observations=[observation])
    return AgentInfoActionPairProto(
        agent_info=info, action_info=AgentActionProto(discrete_actions=[action])
    )


def write_basic_expert_demo(path: Path, episodes: int = 2) -> Path:
    """An expert walking right from 10 to the large goal at 17, as in Basic: per episode 7
    decisions (action 2, reward -0.01 each, +1 at the goal) and the terminal record."""
    pairs = []
    for _ in range(episodes):
        reward = 0.0
        for position in range(START, GOAL):
            pairs.append(_pair(position, reward, False, RIGHT))
            reward = STEP_REWARD
        pairs.append(_pair(GOAL, STEP_REWARD + GOAL_REWARD, True, 0))
    meta = DemonstrationMetaProto(
        api_version=1,
        demonstration_name="expert",
        number_steps=len(pairs),
        number_episodes=episodes,
    )
    brain = BrainParametersProto(
        brain_name="Basic",
        is_training=True,
        action_spec=ActionSpecProto(num_discrete_actions=1, discrete_branch_sizes=[3]),
    )
    write_demo(str(path), meta, brain, pairs)
    return path
