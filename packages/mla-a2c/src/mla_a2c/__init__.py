"""mla-a2c."""

from mla_a2c.version import __version__

__all__ = ["__version__"]
