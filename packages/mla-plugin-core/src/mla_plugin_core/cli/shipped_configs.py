"""Find the example YAMLs that installed packages ship, whichever package ships them.

A distribution declares the folder of its YAMLs in the ``mla_plugins.configs`` entry-point
group, its value naming the folder as a dotted path inside an importable package::

    [project.entry-points."mla_plugins.configs"]
    mla_dqn = "mla_dqn.configs"

mla-dqn, mla-a2c and mla-envs (its PPO/SAC configs) declare theirs, as do the packages
``mla-plugin new`` writes. Trainer plugins written before the group existed are still
found through their ``mlagents.trainer_type`` entry point when their package holds a
``configs/`` folder.

``mla-plugin configs`` lists them all; ``mla-plugin config dqn_basic.yaml`` prints the path
of one, so a README command works wherever the package was installed::

    mlagents-learn "$(mla-plugin config dqn_basic.yaml)" --run-id first --env "$(command -v mla-env-basic)"
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from mla_plugin_core.util.naming import distribution_name

#: The entry-point group that names a distribution's folder of example YAMLs.
CONFIGS_GROUP = "mla_plugins.configs"
#: Trainer plugins made before :data:`CONFIGS_GROUP`: their package's ``configs/`` folder.
TRAINER_GROUP = "mlagents.trainer_type"
LEGACY_FOLDER = "configs"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShippedConfig:
    """One example YAML an installed distribution ships.

    :param name: the file name, e.g. ``dqn_basic.yaml`` (what ``mla-plugin config`` takes).
    :param package: the distribution that ships it, e.g. ``mla-dqn``.
    :param trainer_types: the ``trainer_type`` of each of its behaviors, sorted, unique.
    :param path: where it is installed.
    """

    name: str
    package: str
    trainer_types: tuple[str, ...]
    path: Path


def _folder(dotted: str) -> Path | None:
    """The folder of ``package.sub.folder`` (any depth), or None if it is not there."""
    package, _, leaf = dotted.rpartition(".")
    try:
        root = resources.files(package or dotted)
    except ModuleNotFoundError:
        return None
    folder = root / leaf if package else root
    return Path(str(folder)) if folder.is_dir() else None


def _trainer_types(path: Path) -> tuple[str, ...]:
    """The ``trainer_type`` values of the behaviors of the YAML at ``path`` (empty when the
    file is no trainer configuration)."""
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return ()
    behaviors = config.get("behaviors") if isinstance(config, dict) else None
    if not isinstance(behaviors, dict):
        return ()
    found = {
        str(settings.get("trainer_type", "ppo"))  # mlagents' default trainer_type
        for settings in behaviors.values()
        if isinstance(settings, dict)
    }
    return tuple(sorted(found))


def _folders() -> dict[Path, str]:
    """Folder of example YAMLs -> the distribution that ships it."""
    folders: dict[Path, str] = {}
    for entry_point in importlib.metadata.entry_points(group=CONFIGS_GROUP):
        distribution = entry_point.dist.name if entry_point.dist else entry_point.name
        folder = _folder(entry_point.value)
        if folder is None:
            logger.warning(
                "%s declares %s = %r in %s, but that folder is not installed",
                distribution,
                entry_point.name,
                entry_point.value,
                CONFIGS_GROUP,
            )
            continue
        folders.setdefault(folder, distribution)
    for entry_point in importlib.metadata.entry_points(group=TRAINER_GROUP):
        package = entry_point.value.split(":")[0].split(".")[0]
        if package == "mlagents":  # the built-in trainers ship no configs folder
            continue
        folder = _folder(f"{package}.{LEGACY_FOLDER}")
        if folder is not None and folder not in folders:
            folders[folder] = entry_point.dist.name if entry_point.dist else package
    return folders


def shipped_configs() -> list[ShippedConfig]:
    """Every example YAML of every installed distribution, sorted by name then package."""
    found = [
        ShippedConfig(path.name, distribution, _trainer_types(path), path)
        for folder, distribution in _folders().items()
        for path in folder.iterdir()
        if path.suffix == ".yaml" and path.is_file()
    ]
    return sorted(found, key=lambda config: (config.name, config.package))


#: Trainer types of mlagents itself: their example YAMLs come with no plugin of that name.
BUILT_IN_TRAINER_TYPES = ("ppo", "sac", "poca")


def _trainer_type_of_name(file_name: str) -> str | None:
    """The trainer type in a config's name, as plugins name them
    (``<trainer_type>_<environment>.yaml``: ``a2c_3DBall.yaml`` -> ``a2c``), or None for a
    name of another shape or of one of mlagents' own trainers."""
    stem = file_name.removesuffix(".yaml")
    trainer_type, underscore, environment = stem.rpartition("_")
    if not (underscore and trainer_type and environment) or trainer_type in BUILT_IN_TRAINER_TYPES:
        return None
    if not trainer_type.replace("_", "").isalnum() or not trainer_type[0].isalpha():
        return None
    return trainer_type.lower()


def config_path(name: str) -> Path:
    """The path of the shipped config ``name`` (``dqn_basic.yaml``; ``.yaml`` optional).

    :raises LookupError: naming the configs that are installed, or the packages that ship
        one of that name when there are several.
    """
    configs = shipped_configs()
    key = name if name.endswith(".yaml") else f"{name}.yaml"
    matches = [config for config in configs if config.name == key]
    if not matches:
        available = ", ".join(dict.fromkeys(c.name for c in configs)) or "none"
        missing = f"no shipped config {name!r}"
        trainer_type = _trainer_type_of_name(key)
        if trainer_type is not None:
            package = distribution_name(trainer_type)
            missing += (
                f": {key} would come with the plugin of trainer_type {trainer_type}, "
                f"{package}, which is not installed (pip install {package})"
            )
        raise LookupError(f"{missing}; installed: {available}")
    if len(matches) > 1:
        raise LookupError(
            f"{key} is shipped by {' and '.join(c.package for c in matches)}: "
            f"use its path ({', '.join(str(c.path) for c in matches)})"
        )
    return matches[0].path
