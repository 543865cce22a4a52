"""What both base trainers add to mlagents' ``RLTrainer`` whatever the algorithm family."""

from __future__ import annotations

from mlagents.trainers.model_saver.model_saver import BaseModelSaver
from mlagents.trainers.policy import Policy
from mlagents.trainers.settings import TrainerSettings

from mla_plugin_core.checkpoint import AtomicTorchModelSaver
from mla_plugin_core.config_errors import refusing_resume


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
        must stay as they are, and the model in memory was never trained."""
        if refusing_resume():
            return
        super().save_model()  # type: ignore[misc]
