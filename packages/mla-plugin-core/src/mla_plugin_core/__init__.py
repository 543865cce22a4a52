"""mla-plugin-core."""

from mla_plugin_core.version import __version__

__all__ = ["__version__"]
