"""One small step message, built the same way under any protobuf (shared by the tests)."""

from mlagents_envs.communicator_objects.agent_info_pb2 import AgentInfoProto
from mlagents_envs.communicator_objects.observation_pb2 import NONE, ObservationProto
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto


def step_message() -> UnityMessageProto:
    """A trainer-bound message: one behavior, two agents, one 3-float observation each."""
    message = UnityMessageProto()
    message.header.status = 200
    infos = message.unity_output.rl_output.agentInfos["Basic?team=0"]
    for agent in range(2):
        info = AgentInfoProto(reward=0.5 * agent - 0.01, done=agent == 1, id=agent)
        observation = ObservationProto(shape=[3], compression_type=NONE)
        observation.float_data.data.extend([agent, 1.5, -2.0])
        info.observations.append(observation)
        info.action_mask.extend([False, True])
        infos.value.append(info)
    return message


#: ``step_message().SerializeToString()`` under protobuf 3.20.3 (pure Python, old modules).
STEP_MESSAGE_BYTES = bytes.fromhex(
    "0a0308c80112580a5612540a0c42617369633f7465616d3d3012440a1e3d0ad723bc5a0200016a130a0103"
    "220e0a0c000000000000c03f000000c00a223d48e1fa3e400150015a0200016a130a0103220e0a0c0000803f"
    "0000c03f000000c0"
)
