"""Turn a trainer class into the callable mlagents' plugin registry expects.

mlagents calls every entry point of the ``mlagents.trainer_type`` group and expects
``({trainer_type: TrainerClass}, {trainer_type: SettingsClass})``. In a package's
pyproject::

    [project.entry-points."mlagents.trainer_type"]
    dqn = "mla_dqn.trainer:get_type_and_setting"

and in ``mla_dqn/trainer.py``::

    get_type_and_setting = make_entry_point(DQNTrainer, DQNSettings)

The returned callable also installs what mla-plugin-core changes in ``mlagents-learn``
(:func:`install_runtime_fixes`): one-line configuration errors (:mod:`.config_errors`) and a
working ONNX export on current torch (:mod:`mla_plugin_core.io.onnx_export`), unless the
environment variable :data:`SWITCH` is ``off``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attr
from mlagents.trainers.trainer.rl_trainer import RLTrainer

from mla_plugin_core.host import config_errors
from mla_plugin_core.io import onnx_export

EntryPoint = Callable[[], tuple[dict[str, Any], dict[str, Any]]]

#: The environment variable that turns off every change mla-plugin-core makes to
#: ``mlagents-learn`` (set it to one of :data:`OFF_VALUES`); plugins still register.
SWITCH = "MLA_PLUGIN_HOST"
OFF_VALUES = ("0", "false", "no", "off")


def host_changes_on() -> bool:
    """Whether :data:`SWITCH` leaves mla-plugin-core's changes to mlagents-learn on."""
    return os.environ.get(SWITCH, "").strip().lower() not in OFF_VALUES


def install_runtime_fixes() -> tuple[dict[str, Any], dict[str, Any]]:
    """Entry point of mla-plugin-core itself: registers no trainer, installs the fixes.

    Declared in core's pyproject, so that any ``mlagents-learn`` run with core installed —
    built-in PPO/SAC/POCA included — gets one-line configuration errors and an ONNX export
    that works on current torch. Does nothing when :data:`SWITCH` is off.
    """
    if not host_changes_on():
        return {}, {}
    config_errors.install()
    onnx_export.use_legacy_exporter()
    return {}, {}


def make_entry_point(trainer_cls: type, settings_cls: type) -> EntryPoint:
    """Build the ``mlagents.trainer_type`` entry-point callable for one trainer.

    :param trainer_cls: an :class:`RLTrainer` subclass whose static ``get_trainer_name()``
        is the ``trainer_type`` users write in their YAML.
    :param settings_cls: the ``attr.s`` class of its ``hyperparameters:`` block.
    :raises TypeError: at import time, if either class has the wrong kind; mlagents would
        otherwise drop the plugin later with only a log line.
    """
    if not (isinstance(trainer_cls, type) and issubclass(trainer_cls, RLTrainer)):
        raise TypeError(f"{trainer_cls!r} is not a subclass of mlagents' RLTrainer")
    if not attr.has(settings_cls):
        raise TypeError(f"{settings_cls!r} is not an attrs class (decorate it with @attr.s)")
    postponed = [f.name for f in attr.fields(settings_cls) if isinstance(f.type, str)]
    if postponed:
        raise TypeError(
            f"{settings_cls.__name__} has string annotations for {postponed}: remove "
            "'from __future__ import annotations' from its module (cattrs needs real types)"
        )
    name = trainer_cls.get_trainer_name()  # type: ignore[attr-defined]
    if not isinstance(name, str) or not name:
        raise TypeError(f"{trainer_cls.__name__}.get_trainer_name() must return a non-empty str")

    def get_type_and_setting() -> tuple[dict[str, Any], dict[str, Any]]:
        install_runtime_fixes()
        return {name: trainer_cls}, {name: settings_cls}

    get_type_and_setting.__doc__ = f"mlagents.trainer_type entry point for {name!r}."
    return get_type_and_setting
