"""The import paths of mla-plugin-core 0.1, kept for one minor version.

0.2 laid the package out by layer (``util``, ``replay``, ``settings``, ``networks``, ``io``,
``trainers``, ``host``, ``testing``, ``cli``). ``import mla_plugin_core.checkpoint`` and every
other path of 0.1 still works until 0.3: it warns with a :class:`DeprecationWarning` naming the
new path, and gives the very module of the new path (not a copy), so its classes, functions
and monkeypatches are the same objects under both names; pickles that name an old path load.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

#: Path of 0.1 -> path of 0.2, under ``mla_plugin_core.``. ``replay``, ``settings`` and
#: ``cli`` are packages now whose names kept every public name of the 0.1 module.
MOVED = {
    "atomic_file": "util.atomic_file",
    "finite": "util.finite",
    "log_files": "util.log_files",
    "ports": "util.ports",
    "batches": "replay.batches",
    "nstep": "replay.nstep",
    "sum_tree": "replay.sum_tree",
    "transitions": "replay.transitions",
    "memory": "settings.memory",
    "setting_errors": "settings.errors",
    "activation": "networks.activation",
    "normalization": "networks.normalization",
    "q_network": "networks.q_network",
    "target_network": "networks.target_network",
    "checkpoint": "io.checkpoint",
    "model_check": "io.model_check",
    "onnx_export": "io.onnx_export",
    "off_policy": "trainers.off_policy",
    "on_policy": "trainers.on_policy",
    "optimizer": "trainers.optimizer",
    "plugin_trainer": "trainers.base",
    "schedules": "trainers.schedules",
    "config_errors": "host.config_errors",
    "entry_point": "host.entry_point",
    "run_errors": "host.run_errors",
    "doctor": "cli.doctor",
    "shipped_configs": "cli.shipped_configs",
    "scaffold": "cli.scaffold",
    "scaffold.generate": "cli.scaffold.generate",
}

_PREFIX = __name__.rpartition(".")[0] + "."


def _caller_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn` in :meth:`_Alias.create_module` that
    names the line with the old import. The import machinery's own frames are skipped by
    :mod:`warnings` itself, so they are not counted."""
    frame = sys._getframe(2)  # the caller of create_module
    level = 2
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith("<frozen importlib"):
            frame = frame.f_back  # type: ignore[assignment]
            continue
        if name != __file__:
            return level
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new} in mla-plugin-core 0.2; the old path goes in 0.3",
            DeprecationWarning,
            stacklevel=_caller_stacklevel(),
        )
        return importlib.import_module(self.new)

    def exec_module(self, module: ModuleType) -> None:
        """The module of the new path is already executed."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        new = MOVED.get(fullname[len(_PREFIX) :])
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(_PREFIX + new))


def install() -> None:
    """Answer the old paths (once per process)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
