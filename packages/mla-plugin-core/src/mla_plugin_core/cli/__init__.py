"""Layer 8, the ``mla-plugin`` command: :mod:`.main` (its sub-commands), ``doctor``,
``new`` (:mod:`.scaffold`), ``configs`` (:mod:`.shipped_configs`) and ``check-model``.
May import every other layer."""

from mla_plugin_core.cli.main import main

__all__ = ["main"]
