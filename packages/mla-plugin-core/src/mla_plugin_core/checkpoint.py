"""A model saver whose checkpoints survive a crash or a kill in the middle of a save.

mlagents' ``TorchModelSaver`` writes ``<behavior>-<step>.pt`` and ``checkpoint.pt`` with
``torch.save`` straight onto the destination, so a kill during the write leaves a
truncated ``checkpoint.pt`` and ``--resume`` then fails. :class:`AtomicTorchModelSaver`
writes each file through :func:`~mla_plugin_core.atomic_file.atomic_write` instead; the
ONNX export goes to a temporary name first and is renamed too.
"""

from __future__ import annotations

import os

import torch
from mlagents.trainers.model_saver.torch_model_saver import (
    DEFAULT_CHECKPOINT_NAME,
    TorchModelSaver,
)

from mla_plugin_core.atomic_file import atomic_write
from mla_plugin_core.finite import REFUSED_SAVE, check_state, state_of
from mla_plugin_core.onnx_export import use_legacy_exporter


class AtomicTorchModelSaver(TorchModelSaver):
    """``TorchModelSaver`` with write-then-rename checkpoints (same files, same layout)."""

    def save_checkpoint(self, behavior_name: str, step: int) -> tuple[str, list[str]]:
        os.makedirs(self.model_path, exist_ok=True)
        checkpoint_path = os.path.join(self.model_path, f"{behavior_name}-{step}")
        state_dict = state_of(self.modules)
        check_state(state_dict, step=step, hint=REFUSED_SAVE, context=behavior_name)
        pytorch_path = f"{checkpoint_path}.pt"
        for destination in (pytorch_path, os.path.join(self.model_path, DEFAULT_CHECKPOINT_NAME)):
            with atomic_write(destination) as file:
                torch.save(state_dict, file)
        self.export(checkpoint_path, behavior_name)
        return f"{checkpoint_path}.onnx", [pytorch_path]

    def export(self, output_filepath: str, behavior_name: str) -> None:
        if self.exporter is None:
            return
        use_legacy_exporter()
        folder, name = os.path.split(output_filepath)
        temporary = os.path.join(folder, f".{name}.partial")
        self.exporter.export_policy_model(temporary)
        os.replace(f"{temporary}.onnx", f"{output_filepath}.onnx")
