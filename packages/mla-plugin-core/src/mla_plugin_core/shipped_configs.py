"""Find the example YAMLs that installed trainer plugins ship in their ``configs/`` folder.

``mla-plugin config dqn_basic.yaml`` prints the path of one, so a README command works
wherever the package was installed::

    mlagents-learn "$(mla-plugin config dqn_basic.yaml)" --run-id first --env "$(command -v mla-env-basic)"
"""

from __future__ import annotations

import importlib.metadata
from importlib import resources
from pathlib import Path

TRAINER_GROUP = "mlagents.trainer_type"


def shipped_configs() -> dict[str, Path]:
    """File name -> path of every ``configs/*.yaml`` of the installed trainer plugins."""
    found: dict[str, Path] = {}
    packages = sorted(
        {
            ep.value.split(":")[0].split(".")[0]
            for ep in importlib.metadata.entry_points(group=TRAINER_GROUP)
        }
    )
    for package in packages:
        if package == "mlagents":  # the built-in trainers ship no configs folder
            continue
        try:
            folder = resources.files(package) / "configs"
        except ModuleNotFoundError:
            continue
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.endswith(".yaml"):
                found[entry.name] = Path(str(entry))
    return dict(sorted(found.items()))


def config_path(name: str) -> Path:
    """The path of the shipped config ``name`` (``dqn_basic.yaml``; ``.yaml`` optional).

    :raises LookupError: naming the configs that are installed.
    """
    configs = shipped_configs()
    key = name if name.endswith(".yaml") else f"{name}.yaml"
    if key not in configs:
        available = ", ".join(configs) or "none (install a plugin such as mla-dqn)"
        raise LookupError(f"no shipped config {name!r}; installed: {available}")
    return configs[key]
