"""mla-envs: ML-Agents environments in Python that speak the Unity side of the protocol.

Train with ``mlagents-learn --env "$(command -v mla-env-basic)"`` without Unity. See
:mod:`mla_envs.envs` for the environments and :mod:`mla_envs.protocol` for the
communicator.
"""

from mla_envs.version import __version__

__all__ = ["__version__"]
