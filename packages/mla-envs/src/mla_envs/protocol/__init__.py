"""The Unity side of the ML-Agents protocol, over real gRPC.

* :mod:`~mla_envs.protocol.messages`: protobuf messages in and out.
* :mod:`~mla_envs.protocol.side_channels`: engine configuration, environment
  parameters, stats.
* :mod:`~mla_envs.protocol.client`: the connection loop.
* :mod:`~mla_envs.protocol.lifeline`: exit when the trainer's processes are gone.
"""

import os

# gRPC's core logs every closed connection at INFO level on stderr ("Got goaway"), and a
# trainer closing is routine here. Set before grpc is imported; a user's choice wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from mla_envs.protocol.client import UnityClient  # noqa: E402

__all__ = ["UnityClient"]
