"""The Unity side of the ML-Agents protocol, over real gRPC.

* :mod:`~mla_envs.protocol.messages`: protobuf messages in and out.
* :mod:`~mla_envs.protocol.side_channels`: engine configuration, environment
  parameters, stats.
* :mod:`~mla_envs.protocol.client`: the connection loop.
* :mod:`~mla_envs.protocol.lifeline`: exit when the trainer's processes are gone.
"""

from mla_envs.protocol.client import UnityClient

__all__ = ["UnityClient"]
