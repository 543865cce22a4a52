"""mla-dqn."""

from mla_dqn.version import __version__

__all__ = ["__version__"]
