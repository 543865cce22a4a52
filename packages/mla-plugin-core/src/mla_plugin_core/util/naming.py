"""How mla-plugins name a plugin's pip distribution after its trainer type."""

from __future__ import annotations


def distribution_name(trainer_type: str) -> str:
    """The pip name that mla-plugins (and ``mla-plugin new``) give the plugin of a trainer
    type: ``mla-`` and the type with dashes (``my_algo`` -> ``mla-my-algo``). A naming rule,
    not a list: core knows no plugin by name."""
    return "mla-" + trainer_type.replace("_", "-")
