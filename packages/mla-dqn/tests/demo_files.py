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


def _pair(
    position: int,
    reward: float,
    done: bool,
    action: int,
    max_step_reached: bool = False,
    size: int = N_POSITIONS,
) -> AgentInfoActionPairProto:
    observation = ObservationProto(shape=[size], compression_type=NONE)
    observation.float_data.data.extend(np.eye(size, dtype=np.float32)[position].tolist())
    info = AgentInfoProto(
        reward=reward,
        done=done,
        max_step_reached=max_step_reached,
        id=0,
        observations=[observation],
    )
    return AgentInfoActionPairProto(
        agent_info=info, action_info=AgentActionProto(discrete_actions=[action])
    )


def _episode(end: int = GOAL, trailing: bool = False, size: int = N_POSITIONS) -> list:
    """The records of one walk right from ``START``: decisions at ``START..end-1`` (action
    2, reward 0 then -0.01 each) and, unless ``trailing``, the terminal record at ``end``
    (+1 at ``GOAL``; at any other ``end`` the episode is cut at max step)."""
    # As Unity records: each record holds the action of the decision before it (none, 0,
    # at an episode's first), the terminal record the last decision's.
    pairs, reward, previous = [], 0.0, 0
    for position in range(START, end):
        pairs.append(_pair(position, reward, False, previous, size=size))
        reward, previous = STEP_REWARD, RIGHT
    if trailing:  # the recording stopped here, before the episode ended
        pairs.append(_pair(end, reward, False, previous, size=size))
        return pairs
    at_goal = end == GOAL
    last_reward = STEP_REWARD + (GOAL_REWARD if at_goal else 0.0)
    pairs.append(_pair(end, last_reward, True, previous, max_step_reached=not at_goal, size=size))
    return pairs


def write_basic_expert_demo(
    path: Path,
    episodes: int = 2,
    cut_at: int | None = None,
    trailing_to: int | None = None,
    size: int = N_POSITIONS,
) -> Path:
    """An expert walking right from 10 to the large goal at 17, as in Basic.

    :param episodes: complete episodes, each 7 decisions (action 2, reward -0.01 each, +1
        at the goal) and the terminal record.
    :param cut_at: then one episode cut at max step when it reaches this position.
    :param trailing_to: then the start of an episode the recording stopped in: decisions
        at ``START..trailing_to`` and no terminal record.
    :param size: observation size (another size gives a file of another spec).
    """
    pairs = []
    for _ in range(episodes):
        pairs += _episode(size=size)
    if cut_at is not None:
        pairs += _episode(cut_at, size=size)
    if trailing_to is not None:
        pairs += _episode(trailing_to, trailing=True, size=size)
    meta = DemonstrationMetaProto(
        api_version=1,
        demonstration_name="expert",
        number_steps=len(pairs),
        number_episodes=episodes + (cut_at is not None),
    )
    brain = BrainParametersProto(
        brain_name="Basic",
        is_training=True,
        action_spec=ActionSpecProto(num_discrete_actions=1, discrete_branch_sizes=[3]),
    )
    write_demo(str(path), meta, brain, pairs)
    return path
