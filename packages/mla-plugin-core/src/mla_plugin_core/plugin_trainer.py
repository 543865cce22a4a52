"""What both base trainers add to mlagents' ``RLTrainer`` whatever the algorithm family."""

from __future__ import annotations

import contextlib
import os
import re
import time

from mlagents.trainers.model_saver.model_saver import BaseModelSaver
from mlagents.trainers.policy import Policy
from mlagents.trainers.settings import TrainerSettings

from mla_plugin_core.checkpoint import AtomicTorchModelSaver
from mla_plugin_core.config_errors import refusing_resume

#: When this process loaded the trainers (before any of them opened a TensorBoard file).
_STARTED = int(time.time())

#: TensorBoard's event files: ``events.out.tfevents.<seconds>.<host>.<pid>.<n>[suffix]``.
_EVENTS_NAME = re.compile(r"^events\.out\.tfevents\.(\d+)\..*\.(\d+)\.\d+$")


def remove_events_files_of_this_process(folder: str) -> list[str]:
    """Delete the TensorBoard event files this process created in ``folder``.

    mlagents opens one for each trainer as soon as it exists (it writes the
    hyperparameters there); after a refused ``--resume`` that file is the only trace of
    the attempt. Only files named with this process id and created since it started are
    touched.

    :return: the paths removed.
    """
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            match = _EVENTS_NAME.match(name)
            if match and int(match[2]) == os.getpid() and int(match[1]) >= _STARTED:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))
                    removed.append(os.path.join(folder, name))
    return removed


class PluginTrainerMixin:
    """Atomic checkpoints, a strict ``--resume`` that writes nothing when it refuses, and
    the single policy a (non self-play) trainer owns.

    Put it first among the bases: ``class T(PluginTrainerMixin, OnPolicyTrainer)``.
    """

    policy: Policy

    @staticmethod
    def create_model_saver(
        trainer_settings: TrainerSettings, model_path: str, load: bool
    ) -> BaseModelSaver:
        return AtomicTorchModelSaver(trainer_settings, model_path, load)  # type: ignore[arg-type]

    def get_policy(self, name_behavior_id: str) -> Policy:
        return self.policy

    def save_model(self) -> None:
        """mlagents' end-of-run save, skipped while a refused ``--resume`` unwinds (a
        :class:`~mla_plugin_core.config_errors.ResumeError`): the files it refused to load
        must stay as they are, and the model in memory was never trained. The TensorBoard
        file mlagents opened for this trainer is removed too: the attempt leaves no trace."""
        if refusing_resume():
            remove_events_files_of_this_process(self.artifact_path)  # type: ignore[attr-defined]
            return
        super().save_model()  # type: ignore[misc]
