"""Building and reading the protobuf messages of the Unity side of ML-Agents.

Only the message classes shipped in ``mlagents_envs.communicator_objects`` are used.
protobuf is the pure-Python implementation here, so messages are built in one pass per
step: numpy batches are turned into Python lists once (``tolist``) and each agent info is
created in place with ``add()`` instead of being built apart and copied.

Message flow (the environment is the gRPC client and speaks first)::

    env -> trainer   rl_initialization_output (name, versions, capabilities)
    trainer -> env   rl_initialization_input (seed, trainer versions)
    env -> trainer   empty message
    trainer -> env   rl_input: RESET + side channels
    env -> trainer   rl_output: every agent's info
                     + rl_initialization_output.brain_parameters (action specs)
    trainer -> env   rl_input: STEP + one action per decision info (or RESET, QUIT)
    ...
"""

from __future__ import annotations

import numpy as np
from mlagents_envs.communicator_objects.agent_info_pb2 import AgentInfoProto
from mlagents_envs.communicator_objects.brain_parameters_pb2 import (
    ActionSpecProto,
    BrainParametersProto,
)
from mlagents_envs.communicator_objects.capabilities_pb2 import (
    UnityRLCapabilitiesProto,
)
from mlagents_envs.communicator_objects.space_type_pb2 import continuous, discrete
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.communicator_objects.unity_rl_input_pb2 import UnityRLInputProto
from mlagents_envs.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto

from mla_envs.envs.base import Actions, AgentBatch, BehaviorSpec

#: Version of the Unity <-> trainer protocol this side speaks; majors must match.
COMMUNICATION_VERSION = "1.5.0"
STATUS_OK = 200
#: Header status the trainer sends when it closes the connection.
STATUS_CLOSING = 400


def handshake_message(name: str, package_version: str, log_path: str = "") -> UnityMessageProto:
    """The first message: who we are and what we can do."""
    message = UnityMessageProto()
    message.header.status = STATUS_OK
    init = message.unity_output.rl_initialization_output
    init.name = name
    init.communication_version = COMMUNICATION_VERSION
    init.package_version = package_version
    init.log_path = log_path
    init.capabilities.CopyFrom(capabilities())
    return message


def capabilities() -> UnityRLCapabilitiesProto:
    """The protocol features this side supports.

    Training analytics are left out: we would only discard them.
    """
    return UnityRLCapabilitiesProto(
        baseRLCapabilities=True,
        concatenatedPngObservations=True,
        compressedChannelMapping=True,
        hybridActions=True,
        trainingAnalytics=False,
        variableLengthObservation=True,
        multiAgentGroups=True,
    )


def empty_message() -> UnityMessageProto:
    """The second handshake message: its content is discarded by the trainer."""
    message = UnityMessageProto()
    message.header.status = STATUS_OK
    return message


def brain_parameters(spec: BehaviorSpec) -> BrainParametersProto:
    """The action spec of one behavior (observation specs come from agent infos)."""
    action_spec = ActionSpecProto(
        num_continuous_actions=spec.continuous_size,
        num_discrete_actions=len(spec.discrete_branches),
        discrete_branch_sizes=list(spec.discrete_branches),
    )
    # Deprecated fields, still read by trainers that predate hybrid actions.
    if spec.continuous_size:
        space_type, sizes = continuous, [spec.continuous_size]
    else:
        space_type, sizes = discrete, list(spec.discrete_branches)
    return BrainParametersProto(
        brain_name=spec.name,
        is_training=True,
        action_spec=action_spec,
        vector_action_space_type_deprecated=space_type,
        vector_action_size_deprecated=sizes,
    )


def add_agent_infos(infos, batch: AgentBatch, done: bool) -> None:
    """Append one ``AgentInfoProto`` per agent of ``batch`` to a repeated field.

    :param infos: ``ListAgentInfoProto.value`` of one behavior.
    :param batch: the agents to report.
    :param done: whether these infos end the agents' episodes.
    """
    n = len(batch)
    if n == 0:
        return
    ids = batch.agent_ids.tolist()
    rewards = batch.rewards.tolist()
    shapes = [list(obs.shape[1:]) for obs in batch.observations]
    flat = [obs.reshape(n, -1).tolist() for obs in batch.observations]
    interrupted = batch.interrupted.tolist() if done else None
    masks = None if batch.action_masks is None else batch.action_masks.tolist()
    for i in range(n):
        info: AgentInfoProto = infos.add()
        info.id = ids[i]
        info.reward = rewards[i]
        if done:
            info.done = True
            info.max_step_reached = interrupted[i]
        for shape, values in zip(shapes, flat, strict=True):
            observation = info.observations.add()
            observation.shape.extend(shape)
            observation.float_data.data.extend(values[i])
        if masks is not None:
            info.action_mask.extend(masks[i])


def output_message(
    steps: list[tuple[BehaviorSpec, AgentBatch, AgentBatch]],
    side_channel: bytes,
    with_specs: bool,
) -> UnityMessageProto:
    """One reply to the trainer: every behavior's terminal and decision infos.

    :param steps: ``(spec, terminal, decision)`` per behavior.
    :param side_channel: the environment's side-channel blob.
    :param with_specs: also send the brain parameters (in replies to RESET).
    """
    message = UnityMessageProto()
    message.header.status = STATUS_OK
    rl_output: UnityRLOutputProto = message.unity_output.rl_output
    for spec, terminal, decision in steps:
        infos = rl_output.agentInfos[spec.name].value
        add_agent_infos(infos, terminal, done=True)
        add_agent_infos(infos, decision, done=False)
    rl_output.side_channel = side_channel
    if with_specs:
        init = message.unity_output.rl_initialization_output
        init.brain_parameters.extend(brain_parameters(spec) for spec, _, _ in steps)
    return message


def read_actions(rl_input: UnityRLInputProto, spec: BehaviorSpec, n: int) -> Actions:
    """The actions of one behavior's ``n`` deciding agents, in the order sent.

    Agents the trainer sent no action for get zeros (Unity does the same).

    :return: continuous ``[n, continuous_size]`` float32, discrete ``[n, branches]``.
    """
    continuous_actions = np.zeros((n, spec.continuous_size), dtype=np.float32)
    discrete_actions = np.zeros((n, len(spec.discrete_branches)), dtype=np.int32)
    # Indexing a protobuf map creates the key: test membership first.
    if spec.name not in rl_input.agent_actions:
        return Actions(continuous_actions, discrete_actions)
    values = rl_input.agent_actions[spec.name].value[:n]
    m = len(values)
    if m and spec.continuous_size:
        continuous_actions[:m] = [list(action.continuous_actions) for action in values]
    if m and spec.discrete_branches:
        discrete_actions[:m] = [list(action.discrete_actions) for action in values]
    return Actions(continuous_actions, discrete_actions)
