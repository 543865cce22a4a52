"""A model saver whose checkpoints survive a kill, and whose ``--resume`` is exact or refused.

mlagents' ``TorchModelSaver`` writes ``<behavior>-<step>.pt`` and ``checkpoint.pt`` with
``torch.save`` straight onto the destination, so a kill during the write leaves a
truncated ``checkpoint.pt`` and ``--resume`` then fails. :class:`AtomicTorchModelSaver`
writes each file through :func:`~mla_plugin_core.util.atomic_file.atomic_write` instead; the
ONNX export goes to a temporary name first and is renamed too (mlagents' "Exported ..."
log line names the final file). Temporary files a kill left behind are removed when the
next run starts.

On ``--resume`` mlagents loads what fits and only logs what does not ("Failed to load for
module Policy. Initializing"): the run then trains a partly random network, or crashes at
its first gradient step, and its end-of-run save replaces the checkpoint. Here every
module's saved state must match exactly (same modules, same keys, same shapes, same
optimizer parameters) and the checkpoint must have been written by the same
``trainer_type``; otherwise :func:`resume_mismatch` names the first difference and a
:class:`~mla_plugin_core.host.config_errors.ResumeError` stops the run before anything is
written (one line, exit status 1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from mlagents.trainers.model_saver.torch_model_saver import (
    DEFAULT_CHECKPOINT_NAME,
    TorchModelSaver,
)
from mlagents.trainers.settings import SerializationSettings, TrainerSettings
from mlagents.trainers.torch_entities import model_serialization
from mlagents.trainers.training_status import GlobalTrainingStatus, StatusMetaData, StatusType

from mla_plugin_core.io.onnx_export import use_legacy_exporter
from mla_plugin_core.io.resume import ResumeError
from mla_plugin_core.util.atomic_file import atomic_write, remove_stale_temporaries
from mla_plugin_core.util.finite import REFUSED_SAVE, check_state, state_of

#: The entry of a checkpoint that is no module's state: ``{"trainer_type": str, "step": int}``.
METADATA_KEY = "mla_plugins"

#: ``<behavior>-<step>.pt``: the checkpoint of each step (``checkpoint.pt`` is the newest).
STEP_CHECKPOINT_NAME = re.compile(r"^.+-(?P<step>\d+)\.pt$")

#: Names of the ONNX exports a kill interrupted (see :meth:`AtomicTorchModelSaver.export`).
PARTIAL_ONNX_NAME = re.compile(r"^\..+\.partial\.onnx$")

#: The logger of mlagents' ONNX exporter ("Exported <path>").
SERIALIZATION_LOGGER = logging.getLogger(model_serialization.__name__)

#: What to do when the saved state does not fit, for the one-line message.
RESUME_ADVICE = (
    "resume with the settings it was saved with (configuration.yaml of the run), or start "
    "a new run (another --run-id, or --force without --resume)"
)


#: Module names of earlier releases' checkpoints -> the name they load under today (the
#: torch optimizer of every plugin optimizer is ``Optimizer:optimizer`` after 0.1.0).
RENAMED_MODULES = {
    "Optimizer:a2c_optimizer": "Optimizer:optimizer",
    "Optimizer:adam": "Optimizer:optimizer",
}


def renamed_modules(saved_names: Any, modules: Mapping[str, Any]) -> dict[str, str]:
    """Old name -> today's name for each module ``saved_names`` holds under an old name
    only (:data:`RENAMED_MODULES`) and ``modules`` wants under today's name."""
    saved_names = set(saved_names)
    return {
        old: new
        for old, new in RENAMED_MODULES.items()
        if old in saved_names and new not in saved_names and new in modules
    }


def _names(keys: Any, limit: int = 3) -> str:
    keys = sorted(str(k) for k in keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _shape(value: Any) -> list[int] | None:
    return list(value.shape) if isinstance(value, torch.Tensor) else None


def _module_mismatch(saved: Any, now: Mapping[str, Any]) -> str | None:
    """The first difference between a saved ``nn.Module`` state dict and the current one."""
    if not isinstance(saved, Mapping):
        return f"saved as {type(saved).__name__}, not a state dict"
    only_saved, only_now = set(saved) - set(now), set(now) - set(saved)
    if only_saved or only_now:
        parts = [f"only in the checkpoint: {_names(only_saved)}"] if only_saved else []
        parts += [f"only in this configuration: {_names(only_now)}"] if only_now else []
        return f"network layers differ ({'; '.join(parts)})"
    for key, value in now.items():
        if _shape(saved[key]) != _shape(value):
            return f"network shape differs ({key} {_shape(saved[key])} saved, {_shape(value)} now)"
    return None


def _optimizer_mismatch(saved: Any, optimizer: torch.optim.Optimizer) -> str | None:
    """The first difference between a saved optimizer state dict and ``optimizer``."""
    if not isinstance(saved, Mapping) or "param_groups" not in saved:
        return "saved state is not an optimizer's"
    groups = [group["params"] for group in optimizer.param_groups]
    saved_groups = [group.get("params", []) for group in saved["param_groups"]]
    if [len(g) for g in saved_groups] != [len(g) for g in groups]:
        return (
            f"optimizer parameters differ ({[len(g) for g in saved_groups]} tensors per group "
            f"saved, {[len(g) for g in groups]} now)"
        )
    parameters = dict(
        zip(
            (index for group in saved_groups for index in group),
            (parameter for group in groups for parameter in group),
            strict=True,
        )
    )
    for index, state in saved.get("state", {}).items():
        parameter = parameters.get(index)
        for name, value in (state or {}).items():
            shape = _shape(value)
            if parameter is not None and shape not in (None, [], list(parameter.shape)):
                return (
                    f"optimizer state differs ({name} of parameter {index}: {shape} saved, "
                    f"{list(parameter.shape)} now)"
                )
    return None


def resume_mismatch(
    saved: Mapping[str, Any], modules: Mapping[str, Any], trainer_type: str
) -> str | None:
    """Why the checkpoint content ``saved`` cannot resume ``modules``; ``None`` if it can.

    :param saved: what ``torch.load`` returned for ``checkpoint.pt``.
    :param modules: module name -> ``nn.Module`` or ``torch.optim.Optimizer`` (or any
        object with ``load_state_dict``), as registered with the saver.
    :param trainer_type: the ``trainer_type`` of the configuration.
    """
    metadata = saved.get(METADATA_KEY)
    if isinstance(metadata, Mapping) and metadata.get("trainer_type") != trainer_type:
        return (
            f"saved by trainer_type {metadata.get('trainer_type')!r}, the configuration asks "
            f"for {trainer_type!r}"
        )
    renamed = renamed_modules(saved, modules)
    saved = {renamed.get(name, name): value for name, value in saved.items()}
    saved_names = set(saved) - {METADATA_KEY}
    only_saved, only_now = saved_names - set(modules), set(modules) - saved_names
    if only_saved or only_now:
        parts = [f"only in the checkpoint: {_names(only_saved)}"] if only_saved else []
        parts += [f"only in this configuration: {_names(only_now)}"] if only_now else []
        return f"modules differ ({'; '.join(parts)})"
    for name, module in modules.items():
        if isinstance(module, torch.nn.Module):
            problem = _module_mismatch(saved[name], module.state_dict())
        elif isinstance(module, torch.optim.Optimizer):
            problem = _optimizer_mismatch(saved[name], module)
        else:
            problem = None
        if problem is not None:
            return f"{name}: {problem}"
    return None


class _Renaming(logging.Filter):
    """Rewrites ``temporary`` as ``final`` in the messages of the logger it filters."""

    def __init__(self, temporary: str, final: str) -> None:
        super().__init__()
        self.temporary, self.final = temporary, final

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.temporary in message:
            record.msg, record.args = message.replace(self.temporary, self.final), ()
        return True


@contextlib.contextmanager
def logged_as(logger: logging.Logger, temporary: str, final: str) -> Iterator[None]:
    """While the block runs, ``logger``'s records name the file ``final`` where they would
    name ``temporary`` (a file written under a hidden name, then renamed)."""
    renaming = _Renaming(temporary, final)
    logger.addFilter(renaming)
    try:
        yield
    finally:
        logger.removeFilter(renaming)


class AtomicTorchModelSaver(TorchModelSaver):
    """``TorchModelSaver`` with write-then-rename checkpoints (same files, same layout), a
    strict ``--resume``, and the ``trainer_type`` and step recorded in each checkpoint."""

    #: Name -> module to save and load (set by mlagents' ``TorchModelSaver``).
    modules: dict[str, Any]

    def __init__(
        self, trainer_settings: TrainerSettings, model_path: str, load: bool = False
    ) -> None:
        super().__init__(trainer_settings, model_path, load)
        self.trainer_type = str(trainer_settings.trainer_type)
        self.keep_checkpoints = int(trainer_settings.keep_checkpoints)

    @property
    def checkpoint_path(self) -> str:
        """``<model_path>/checkpoint.pt``, what ``--resume`` loads."""
        return os.path.join(self.model_path, DEFAULT_CHECKPOINT_NAME)

    def save_checkpoint(self, behavior_name: str, step: int) -> tuple[str, list[str]]:
        os.makedirs(self.model_path, exist_ok=True)
        checkpoint_path = os.path.join(self.model_path, f"{behavior_name}-{step}")
        state_dict = state_of(self.modules)
        check_state(state_dict, step=step, hint=REFUSED_SAVE, context=behavior_name)
        content = {**state_dict, METADATA_KEY: {"trainer_type": self.trainer_type, "step": step}}
        pytorch_path = f"{checkpoint_path}.pt"
        for destination in (pytorch_path, self.checkpoint_path):
            with atomic_write(destination) as file:
                torch.save(content, file)
        self.export(checkpoint_path, behavior_name)
        self.prune_step_checkpoints(behavior_name, step)
        return f"{checkpoint_path}.onnx", [pytorch_path]

    def prune_step_checkpoints(self, behavior_name: str, step: int) -> list[str]:
        """Remove the ``<behavior>-<step>.pt``/``.onnx`` files that ``keep_checkpoints``
        does not keep: of the steps up to ``step``, only the newest ``keep_checkpoints``
        (``0``: all, as mlagents).

        mlagents prunes from the list it keeps in ``training_status.json``, which it writes
        only when the run ends: after a kill the list is gone, and the files of every killed
        attempt stayed for good. The files are found by name instead; steps after ``step``
        (an attempt that went further, resumed from an earlier copy) are left alone.

        :return: the paths removed.
        """
        keep = self.keep_checkpoints
        if keep <= 0:
            return []
        pattern = re.compile(rf"^{re.escape(behavior_name)}-(?P<step>\d+)\.(?:pt|onnx)$")
        by_step: dict[int, list[str]] = {}
        for name in os.listdir(self.model_path):
            found = pattern.match(name)
            if found and int(found["step"]) <= step:
                by_step.setdefault(int(found["step"]), []).append(name)
        removed = []
        for old in sorted(by_step, reverse=True)[keep:]:
            for name in by_step[old]:
                path = os.path.join(self.model_path, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
        return removed

    def export(self, output_filepath: str, behavior_name: str) -> None:
        """mlagents' ONNX export to a temporary name, renamed to ``<output_filepath>.onnx``;
        mlagents' log line names the final file ("Exported .../Basic-100.onnx")."""
        if self.exporter is None:
            return
        use_legacy_exporter()
        folder, name = os.path.split(output_filepath)
        temporary = os.path.join(folder, f".{name}.partial")
        with logged_as(SERIALIZATION_LOGGER, f"{temporary}.onnx", f"{output_filepath}.onnx"):
            self.exporter.export_policy_model(temporary)
        os.replace(f"{temporary}.onnx", f"{output_filepath}.onnx")

    def copy_final_model(self, source_nn_path: str) -> None:
        """mlagents' copy of the final model to ``<results>/<run>/<behavior>.onnx``, written
        to a temporary file and renamed (mlagents copies in place: a kill mid-copy left half
        a model where Unity users take it from)."""
        if not SerializationSettings.convert_to_onnx:
            return
        source = f"{os.path.splitext(source_nn_path)[0]}.onnx"
        destination = f"{self.model_path}.onnx"
        try:
            with open(source, "rb") as original, atomic_write(destination) as copy:
                shutil.copyfileobj(original, copy)
        except OSError:  # as mlagents: no exported model, nothing to copy
            return
        logging.getLogger(TorchModelSaver.__module__).info(f"Copied {source} to {destination}.")

    def check_resumable(self) -> None:
        """Raise :class:`ResumeError` unless ``checkpoint.pt`` restores every module exactly.

        Reads the file only; nothing is written.
        """
        path = self.checkpoint_path
        if not os.path.exists(path):
            complete = self._newest_complete_step_checkpoint()
            if complete is not None:  # killed between <behavior>-<step>.pt and checkpoint.pt
                raise ResumeError(
                    f"cannot resume {path}: it was not written (the run stopped while "
                    f"saving), but {complete} is complete: to resume from it, "
                    f"cp '{complete}' '{path}' and run again with --resume"
                )
            raise ResumeError(
                f"cannot resume {path}: no checkpoint yet (the run stopped before its first "
                "checkpoint); run without --resume (with --force to reuse the run id)"
            )
        try:
            saved = torch.load(path, map_location="cpu")
        except Exception as err:  # a foreign or damaged file: say what torch said, on one line
            reason = " ".join(f"{type(err).__name__}: {err}".split())
            raise ResumeError(
                f"cannot resume {path}: unreadable ({reason[:300]}); {RESUME_ADVICE}"
            ) from err
        problem = (
            resume_mismatch(saved, self.modules, self.trainer_type)
            if isinstance(saved, Mapping)
            else f"holds a {type(saved).__name__}, not a checkpoint"
        )
        if problem is not None:
            raise ResumeError(f"cannot resume {path}: {problem}; {RESUME_ADVICE}")

    def _newest_complete_step_checkpoint(self) -> str | None:
        """The ``<behavior>-<step>.pt`` of the highest step in the run's folder that loads
        as a checkpoint of ours, if any (read only)."""
        if not os.path.isdir(self.model_path):
            return None
        steps = []
        for name in os.listdir(self.model_path):
            found = STEP_CHECKPOINT_NAME.match(name)
            if found:
                steps.append((int(found["step"]), os.path.join(self.model_path, name)))
        for _, candidate in sorted(steps, reverse=True):
            try:
                saved = torch.load(candidate, map_location="cpu")
            except Exception:  # noqa: BLE001, S112 - a damaged one: try the one before
                continue
            if isinstance(saved, Mapping) and METADATA_KEY in saved:
                return candidate
        return None

    def _load_model(
        self, load_path: str, policy: Any = None, reset_global_steps: bool = False
    ) -> None:
        """mlagents' loading, with modules saved under an old name (:data:`RENAMED_MODULES`)
        loaded into today's."""
        renamed: dict[str, str] = {}
        if policy is None:
            renamed = renamed_modules(torch.load(load_path, map_location="cpu"), self.modules)
        if not renamed:
            super()._load_model(load_path, policy, reset_global_steps)
            return
        old_name = {new: old for old, new in renamed.items()}
        current = self.modules
        self.modules = {old_name.get(name, name): module for name, module in current.items()}
        try:
            super()._load_model(load_path, policy, reset_global_steps)
        finally:
            self.modules = current

    def initialize_or_load(self, policy: Any = None) -> None:
        """Remove the half-written files a killed run left (ours, never complete: a refused
        resume leaves none behind either), then mlagents' loading, after
        :meth:`check_resumable` on ``--resume``. Complete files are never touched here."""
        if policy is None and os.path.isdir(self.model_path):
            remove_stale_temporaries(self.model_path, [PARTIAL_ONNX_NAME])
        if self.load and self.initialize_path is None and policy is None:
            self.check_resumable()
        super().initialize_or_load(policy)


#: mlagents' record of a run's checkpoints, lessons and ELO, in ``<run>/run_logs``.
TRAINING_STATUS_FILE = "training_status.json"


def save_training_status(behavior_folder: str) -> str | None:
    """Write mlagents' ``training_status.json`` of the run now, atomically.

    mlagents writes it only when the run ends, so a killed run had none: its ``--resume``
    warned "Training status file not found" and lost the list of checkpoints that
    ``keep_checkpoints`` prunes from. Written at each checkpoint, it is the state of the
    last one.

    :param behavior_folder: ``<results>/<run>/<behavior>``; the file goes to
        ``<results>/<run>/run_logs`` if that folder exists (mlagents makes it at start).
    :return: the path written, or None.
    """
    run_logs = os.path.join(os.path.dirname(os.path.abspath(behavior_folder)), "run_logs")
    if not os.path.isdir(run_logs):
        return None
    return write_training_status(run_logs)


def write_training_status(run_logs: str) -> str:
    """Write ``<run_logs>/training_status.json`` atomically: mlagents' state of the run
    (``GlobalTrainingStatus``) with its version metadata, as mlagents' own save writes it.

    :return: the path written.
    """
    state = GlobalTrainingStatus.saved_state
    state[StatusType.STATS_METADATA.value] = StatusMetaData().to_dict()
    path = os.path.join(run_logs, TRAINING_STATUS_FILE)
    with atomic_write(path, "w") as file:
        json.dump(state, file, indent=4)
    return path
