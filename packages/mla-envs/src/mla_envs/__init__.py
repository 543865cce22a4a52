"""mla-envs."""
from mla_envs.version import __version__

__all__ = ["__version__"]
