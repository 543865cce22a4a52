"""What both base trainers add to mlagents' ``RLTrainer`` whatever the algorithm family."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mlagents.trainers.buffer import AgentBuffer, BufferKey
from mlagents.trainers.model_saver.model_saver import BaseModelSaver
from mlagents.trainers.policy import Policy
from mlagents.trainers.policy.checkpoint_manager import ModelCheckpoint
from mlagents.trainers.settings import TrainerSettings
from mlagents.trainers.stats import StatsReporter
from mlagents.trainers.trajectory import Trajectory
from mlagents_envs.logging_util import get_logger

from mla_plugin_core.io.checkpoint import AtomicTorchModelSaver, save_training_status
from mla_plugin_core.io.resume import refusing_resume
from mla_plugin_core.util import finite

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


logger = get_logger(__name__)

#: TensorBoard stat set to 1 when training stopped on a NaN or an infinity.
NON_FINITE_STAT = "Errors/Non-finite"


class PluginTrainerMixin:
    """Atomic checkpoints, a strict ``--resume`` that writes nothing when it refuses, a
    stop at the first NaN/inf, the single policy a (non self-play) trainer owns, and the
    work every trainer does with a trajectory and after an update, whatever its algorithm:
    :meth:`trajectory_buffer`, :meth:`update_normalization`, :meth:`evaluate_reward_signals`,
    :meth:`report_mean_stats`, :meth:`update_behavioral_cloning`.

    Put it first among the bases: ``class T(PluginTrainerMixin, OnPolicyTrainer)``.
    """

    policy: Policy
    # Set by mlagents' RLTrainer.
    brain_name: str
    is_training: bool
    collected_rewards: dict[str, dict[str, float]]
    hyperparameters: Any
    model_saver: BaseModelSaver
    optimizer: Any
    _step: int
    _stats_reporter: StatsReporter

    #: Why training stopped, once :meth:`stop_if_non_finite` found a NaN/inf.
    non_finite: finite.NonFiniteError | None = None

    @staticmethod
    def create_model_saver(
        trainer_settings: TrainerSettings, model_path: str, load: bool
    ) -> BaseModelSaver:
        return AtomicTorchModelSaver(trainer_settings, model_path, load)  # type: ignore[arg-type]

    def get_policy(self, name_behavior_id: str) -> Policy:
        return self.policy

    # -- trajectories and updates ----------------------------------------------------------

    def trajectory_buffer(self, trajectory: Trajectory) -> AgentBuffer:
        """``trajectory`` as an ``AgentBuffer`` (length T), with the observation
        normalisation updated on it (:meth:`update_normalization`); warns once if the
        environment sends group rewards, which these trainers do not learn from."""
        buffer = trajectory.to_agentbuffer()
        self._warn_if_group_reward(buffer)  # type: ignore[attr-defined]
        self.update_normalization(buffer)
        return buffer

    def update_normalization(self, buffer: AgentBuffer) -> None:
        """Update the running observation statistics of the actor and, if any, the critic.

        Only while training: a frozen (inference) run must not drift its normaliser.
        """
        if not self.is_training:
            return
        self.update_network_normalization(self.policy.actor, buffer)  # type: ignore[attr-defined]
        try:
            critic = self.optimizer.critic
        except (AttributeError, NotImplementedError):  # optimizers without a critic
            critic = None
        if critic is not None and critic is not self.policy.actor:  # type: ignore[attr-defined]
            self.update_network_normalization(critic, buffer)

    def update_network_normalization(self, network: Any, buffer: AgentBuffer) -> None:
        """Update one network's running observation statistics (mlagents' own update);
        override to change how, e.g. ``normalization.update_normalization``."""
        network.update_normalization(buffer)

    def evaluate_reward_signals(self, buffer: AgentBuffer, agent_id: str) -> dict[str, np.ndarray]:
        """Evaluate every reward signal of the trainer on a trajectory and record the totals.

        :param buffer: the trajectory as an ``AgentBuffer`` (length T).
        :param agent_id: the trajectory's agent, whose running episode totals are updated
            (reported by mlagents at episode end as "Environment/Cumulative Reward" and
            "Policy/<Signal> Reward").
        :return: reward-signal name -> float32 array [T] of rewards already scaled by the
            signal's ``strength``.
        """
        self.collected_rewards["environment"][agent_id] += float(
            np.sum(buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch())
        )
        rewards: dict[str, np.ndarray] = {}
        for name, signal in self.optimizer.reward_signals.items():
            values = np.asarray(signal.evaluate(buffer), dtype=np.float32) * signal.strength
            rewards[name] = values
            self.collected_rewards[name][agent_id] += float(np.sum(values))
        return rewards

    def report_mean_stats(self, stats: Mapping[str, Sequence[float]]) -> None:
        """Send the mean of each stat's values (one per gradient step) to TensorBoard."""
        for name, values in stats.items():
            self._stats_reporter.add_stat(name, float(np.mean(values)))

    def update_behavioral_cloning(self) -> None:
        """One update of mlagents' ``behavioral_cloning`` module, if configured; its stats go
        to TensorBoard, a NaN/inf stops training (:meth:`stop_if_non_finite`)."""
        if not self.optimizer.bc_module:
            return
        bc_stats = self.optimizer.bc_module.update()
        self.stop_if_non_finite(bc_stats)
        for name, value in bc_stats.items():
            self._stats_reporter.add_stat(name, value)

    def non_finite_hint(self) -> str:
        """What to change after a NaN/inf: the learning rate(s), for the one-line message."""
        learning_rate = getattr(self.hyperparameters, "learning_rate", None)
        hint = "lower hyperparameters.learning_rate"
        if isinstance(learning_rate, (int, float)):
            hint += f" (now {learning_rate:g})"
        signals = getattr(self.optimizer, "reward_signals", {})
        if any(name != "extrinsic" for name in signals):
            hint += " or the learning_rate of a reward signal"
        return f"{hint}; checkpoints written before are kept and no non-finite model was saved"

    def stop_if_non_finite(
        self, values: Mapping[str, Any] | None = None, *, state: bool = False
    ) -> None:
        """Stop training if ``values`` (an update's stats) or, with ``state``, the
        parameters and optimizer state about to be checkpointed hold a NaN or an infinity.

        The finding is logged as the stat :data:`NON_FINITE_STAT` (with the offending
        stats) and written out at once; :class:`~mla_plugin_core.util.finite.NonFiniteError`
        is raised with the one-line message, and the end-of-run save is skipped
        (:meth:`save_model`).

        :raises finite.NonFiniteError: on the first NaN/inf found.
        """
        hint = self.non_finite_hint()
        try:
            if values is not None:
                finite.check_values(values, step=self._step, hint=hint, context=self.brain_name)
            if state:
                modules = getattr(self.model_saver, "modules", {})
                finite.check_state(
                    finite.state_of(modules), step=self._step, hint=hint, context=self.brain_name
                )
        except finite.NonFiniteError as err:
            self.non_finite = err
            for name, value in (values or {}).items():
                if isinstance(value, (int, float)):
                    self._stats_reporter.add_stat(name, float(value))
            self._stats_reporter.add_stat(NON_FINITE_STAT, 1.0)
            self._stats_reporter.write_stats(int(self._step))
            raise

    def _checkpoint(self) -> ModelCheckpoint:
        """mlagents' checkpoint (periodic and final), after checking the state is finite;
        then the run's ``training_status.json`` (:func:`save_training_status`), which
        mlagents writes only at the end, so that a killed run resumes with it."""
        self.stop_if_non_finite(state=True)
        checkpoint = super()._checkpoint()  # type: ignore[misc]
        save_training_status(self.artifact_path)  # type: ignore[attr-defined]
        return checkpoint

    def save_model(self) -> None:
        """mlagents' end-of-run save, skipped in two cases.

        - While a refused ``--resume`` unwinds (a
          :class:`~mla_plugin_core.host.config_errors.ResumeError`): the files it refused to load
          must stay as they are, and the model in memory was never trained. The TensorBoard
          file mlagents opened for this trainer is removed too: the attempt leaves no trace.
        - After a NaN/inf: the model in memory is not finite, and the last (finite)
          checkpoint files must stay as they are.
        """
        if refusing_resume():
            remove_events_files_of_this_process(self.artifact_path)  # type: ignore[attr-defined]
            return
        if self.non_finite is not None:
            logger.debug(f"{self.brain_name}: final model not saved ({self.non_finite})")
            return
        super().save_model()  # type: ignore[misc]
