"""Base trainer for off-policy algorithms (DQN, SAC-likes) on a fast replay buffer.

An algorithm subclasses :class:`OffPolicyPluginTrainer` and writes:

- ``get_trainer_name()`` — the ``trainer_type`` of the YAML;
- ``create_policy()`` — a ``TorchPolicy`` (its ``actor`` is what ONNX export saves);
- ``create_optimizer()`` — an :class:`OffPolicyOptimizer` whose
  :meth:`~OffPolicyOptimizer.update_from_replay` does one gradient step on a
  :class:`~mla_plugin_core.replay.transitions.ReplaySample` and returns its stats (and TD errors for
  prioritized replay).

This class does the rest:

1. each trajectory becomes 1-step transitions: observations and next observations,
   actions, action masks of the observation and of the next observation, one reward per
   reward signal (evaluated now, scaled by its ``strength``), ``dones`` only at a real
   terminal and ``truncated`` at a max-step interruption (whose bootstrap stays valid);
   the last step of a trajectory cut by ``time_horizon`` waits for the agent's next
   trajectory, which holds the mask of its next observation;
2. an :class:`~mla_plugin_core.replay.nstep.NStepAccumulator` per trainer turns them into
   ``n_step`` transitions per agent, exact at episode ends;
3. they go to a :class:`~mla_plugin_core.replay.ReplayBuffer` (or the prioritized one);
4. every ``steps_per_update`` environment steps after ``buffer_init_steps``, one sample of
   ``batch_size`` goes through the optimizer; priorities are updated from its TD errors;
5. reward signals that learn (curiosity, GAIL, RND) are updated on uniform replay samples
   (also with prioritized replay) every ``reward_signal_steps_per_update`` steps, through
   :func:`sample_to_agent_buffer`; :func:`one_step_reward_signals` names those that need
   1-step transitions (``n_step: 1``);
6. with ``save_replay_buffer``, the buffer is saved beside each checkpoint (write then
   rename) and loaded again on ``--resume``.
7. on mlagents' forced reset (``end_episode()``: a curriculum lesson change, a self-play
   swap), the steps still waiting are stored as truncated, so no transition spans the
   reset.

Reward signals are evaluated when a transition is stored. With ``n_step: 1`` the learning
ones (every signal but ``extrinsic``: curiosity, GAIL, RND) are evaluated again on each
sample before its gradient step (:meth:`OffPolicyPluginTrainer.rescore_reward_signals`), as
mlagents' SAC does, so the Q-function learns the providers' current rewards, not those of
the time a transition was stored (an early, large novelty bonus would otherwise stay in the
replay until overwritten). With ``n_step > 1`` a stored reward is a discounted sum over
steps not kept in the row, so it is used as stored: slightly stale intrinsic rewards, as in
most n-step implementations.
"""

from __future__ import annotations

import abc
import os
import threading
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents.trainers.buffer import AgentBuffer, BufferKey
from mlagents.trainers.policy import Policy
from mlagents.trainers.settings import RewardSignalType
from mlagents.trainers.trainer.off_policy_trainer import OffPolicyTrainer
from mlagents.trainers.trajectory import ObsUtil, Trajectory
from mlagents_envs.logging_util import get_logger

from mla_plugin_core.io.resume import ResumeError
from mla_plugin_core.replay import PrioritizedReplayBuffer, ReplayBuffer
from mla_plugin_core.replay.batches import ReplayBatch
from mla_plugin_core.replay.nstep import NStepAccumulator
from mla_plugin_core.replay.transitions import (
    ReplaySample,
    Transitions,
    select_rows,
    to_agent_buffer,
)
from mla_plugin_core.settings.memory import refuse_if_too_big, replay_bytes, transition_bytes
from mla_plugin_core.trainers.base import PluginTrainerMixin
from mla_plugin_core.trainers.optimizer import PluginOptimizer
from mla_plugin_core.trainers.schedules import ScheduledValue

logger = get_logger(__name__)

REPLAY_FILENAME = "replay_buffer.npz"


class ReplayUpdate(NamedTuple):
    """What one gradient step on a replay sample returns.

    :param stats: name -> value for TensorBoard, e.g. ``{"Losses/Q Loss": 0.12}``.
    :param td_errors: float ``[B]`` TD errors of the sample's transitions, used as new
        priorities with prioritized replay; ``None`` when the algorithm has none.
    """

    stats: dict[str, float]
    td_errors: np.ndarray | None = None


class OffPolicyOptimizer(PluginOptimizer):
    """A :class:`~mla_plugin_core.trainers.optimizer.PluginOptimizer` that learns from replay
    samples instead of ``AgentBuffer`` batches."""

    @abc.abstractmethod
    def update_from_replay(self, sample: ReplaySample) -> ReplayUpdate:
        """One gradient step on ``sample`` (arrays ``[B, ...]``, see :class:`ReplaySample`;
        :meth:`replay_batch` gives them as tensors)."""

    def replay_batch(
        self, sample: ReplaySample, signal_names: list[str] | None = None
    ) -> ReplayBatch:
        """``sample`` as tensors, rewards and discounts ``[B, S]`` with one column per
        reward signal (``signal_names``' order, default that of ``self.reward_signals``)."""
        return ReplayBatch.from_sample(
            sample, list(self.reward_signals) if signal_names is None else signal_names
        )

    def update(self, batch: AgentBuffer, num_sequences: int) -> dict[str, float]:
        raise NotImplementedError(
            f"{type(self).__name__} learns from replay samples: call update_from_replay()"
        )


def sample_to_agent_buffer(sample: ReplaySample) -> AgentBuffer:
    """An ``AgentBuffer`` view of a replay sample, for mlagents' reward providers.

    Every key their ``update`` reads (mlagents 0.30.0 to 1.1.0): observations (GAIL, RND,
    curiosity), next observations and both action kinds (curiosity; GAIL with
    ``use_actions``), ``DONE`` (GAIL with ``use_actions``) and ``MASKS``, all ones (curiosity
    averages its losses over it: without it they are NaN and it never learns). Also the
    action masks and the extrinsic reward (as ``ENVIRONMENT_REWARDS``): the fields that
    declare an ``AgentBuffer`` key in :data:`~mla_plugin_core.replay.transitions.FIELDS`.
    """
    return to_agent_buffer(sample)


def one_step_reward_signals(reward_signals: Mapping[RewardSignalType, object]) -> list[str]:
    """The reward signals that must learn from 1-step transitions, by name.

    :func:`sample_to_agent_buffer` of an ``n_step`` transition holds ``next_obs`` and
    ``dones`` of its last step, ``K <= n`` steps later. Curiosity's forward and inverse
    models need the 1-step next observation (they are evaluated on it when a transition is
    stored), and GAIL with ``use_actions`` feeds the discriminator the 1-step ``done`` of
    ``(obs, action)`` (as in the demonstrations). Neither is in an n-step replay row, so
    with ``n_step > 1`` these signals would learn something else than what they reward;
    RND and GAIL without actions read observations only and are fine.

    :param reward_signals: ``TrainerSettings.reward_signals``.
    """
    names = []
    for kind, settings in reward_signals.items():
        if kind == RewardSignalType.CURIOSITY or (
            kind == RewardSignalType.GAIL and getattr(settings, "use_actions", False)
        ):
            names.append(kind.value)
    return names


def rescore_reward_signals(
    sample: ReplaySample, reward_signals: Mapping[str, Any], n_step: int
) -> ReplaySample:
    """``sample`` with its learning reward signals re-evaluated by their providers now.

    With ``n_step: 1`` each row is one step, so every reward signal but ``extrinsic``
    (curiosity, GAIL, RND) is evaluated again on the sample (:func:`sample_to_agent_buffer`),
    scaled by its ``strength``, and replaces the value stored at insert time, as mlagents'
    SAC does on each minibatch: a novelty bonus or a discriminator reward from long ago no
    longer pulls the Q-function. The extrinsic rewards, discounts and everything else are
    the stored ones. With ``n_step > 1`` a row's reward is a discounted sum over steps whose
    observations are not in the replay row, so the stored sums are kept (stale by up to the
    buffer's age). The off-policy trainer applies it to its replay samples, DQN also to its
    expert samples (DQfD).

    :param sample: a replay sample ``[B, ...]``.
    :param reward_signals: name -> mlagents reward provider (``evaluate``, ``strength``).
    :param n_step: the rewards summed per row.
    :return: the same sample, ``rewards`` replaced for the learning signals.
    """
    if n_step > 1:
        return sample
    learning = {name: signal for name, signal in reward_signals.items() if name != "extrinsic"}
    if not learning:
        return sample
    view = sample_to_agent_buffer(sample)
    rewards = dict(sample.rewards)
    for name, signal in learning.items():
        rewards[name] = np.asarray(signal.evaluate(view), np.float32) * signal.strength
    return sample._replace(rewards=rewards)


class _ReplayWrite:
    """``with trainer._replay_write:`` takes the trainer's replay lock for a change of the
    ring or of the steps waiting for it (held steps, n-step queues). An exception that
    leaves the block, above all a Ctrl-C that mlagents' main thread gets in the middle of
    a store, may have left them half-changed (slots reserved but not written, a held step
    without its queue): the trainer's ``replay_damaged`` says why, and the buffer is not
    saved from then on (the file keeps its last complete state)."""

    def __init__(self, trainer: OffPolicyPluginTrainer) -> None:
        self._trainer = trainer

    def __enter__(self) -> None:
        self._trainer._replay_lock.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: Any, traceback: Any) -> None:
        try:
            if kind is not None:
                trainer = self._trainer
                trainer.replay_damaged = f"{kind.__name__} at step {trainer._step}"
        finally:
            self._trainer._replay_lock.release()


class OffPolicyPluginTrainer(PluginTrainerMixin, OffPolicyTrainer):
    """mlagents ``OffPolicyTrainer`` that stores n-step transitions in our replay buffer.

    Replay settings are read from the hyperparameters (see
    :class:`~mla_plugin_core.settings.OffPolicySettings`): ``buffer_size``, ``batch_size``,
    ``n_step``, ``prioritized_replay`` with ``prioritized_replay_alpha``,
    ``prioritized_replay_beta`` and ``prioritized_replay_beta_steps``.
    """

    optimizer: OffPolicyOptimizer

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.replay: ReplayBuffer | None = None
        self.n_step_accumulator: NStepAccumulator | None = None
        # agent -> its last trajectory's steps; the last row waits for its next mask
        self._held_steps: dict[str, Transitions] = {}
        # With `threaded: true` the trainer's thread stores and samples while mlagents'
        # main thread may call end_episode (a lesson change, a self-play swap), which
        # stores too: one writer of the held steps, the n-step queues and the ring at a time.
        self._replay_lock = threading.RLock()
        # ``with self._replay_write:`` around every change of the ring and the steps waiting
        # for it; set to why when a change was cut short (see _ReplayWrite)
        self._replay_write = _ReplayWrite(self)
        self.replay_damaged: str | None = None

    # -- replay construction -------------------------------------------------------------

    @property
    def prioritized(self) -> bool:
        return bool(getattr(self.hyperparameters, "prioritized_replay", False))

    @property
    def n_step(self) -> int:
        """Rewards summed per replay row (``n_step``; 1 for settings without it)."""
        return int(getattr(self.hyperparameters, "n_step", 1))

    def create_replay_buffer(self) -> ReplayBuffer:
        """The replay buffer for this trainer's behavior spec and reward signals."""
        spec = self.policy.behavior_spec
        common = dict(
            capacity=self.hyperparameters.buffer_size,
            obs_shapes=[o.shape for o in spec.observation_specs],
            continuous_size=spec.action_spec.continuous_size,
            discrete_branches=spec.action_spec.discrete_branches,
            reward_signals=list(self.optimizer.reward_signals),
            seed=self.seed,
        )
        # Refused before anything is allocated (see mla_plugin_core.settings.memory).
        shape = (
            common["obs_shapes"],
            common["continuous_size"],
            common["discrete_branches"],
            common["reward_signals"],
        )
        capacity = self.hyperparameters.buffer_size
        refuse_if_too_big(
            replay_bytes(capacity, *shape, prioritized=self.prioritized),
            capacity,
            "the replay buffer",
            detail=f"{transition_bytes(*shape)} B per transition",
            behavior=self.brain_name,
        )
        if not self.prioritized:
            return ReplayBuffer(**common)
        return PrioritizedReplayBuffer(
            **common,
            alpha=self.hyperparameters.prioritized_replay_alpha,
            beta=self.importance_sampling_beta,
        )

    def add_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: Policy) -> None:
        super().add_policy(parsed_behavior_id, policy)
        # mlagents sets the update counts of a resumed run to step / steps_per_update, but
        # its update loop counts from buffer_init_steps: a run resumed at step s would make
        # no update until s + buffer_init_steps and lose those updates. Count as the loop
        # does, so the run goes on at the pace it had.
        init_steps = self.hyperparameters.buffer_init_steps
        self.update_steps = int(max(1, (self._step - init_steps) / self.steps_per_update))
        self.reward_signal_update_steps = int(
            max(1, (self._step - init_steps) / self.reward_signal_steps_per_update)
        )
        self.replay = self.create_replay_buffer()
        gammas = {name: signal.gamma for name, signal in self.optimizer.reward_signals.items()}
        self.n_step_accumulator = NStepAccumulator(self.n_step, gammas)
        self.maybe_load_replay_buffer()

    # -- saving and loading --------------------------------------------------------------

    @property
    def replay_path(self) -> str:
        return os.path.join(self.artifact_path, REPLAY_FILENAME)

    #: The step of the last replay buffer save (the buffer only changes when steps do).
    _replay_saved_at_step: int | None = None
    #: Whether the warning that a damaged replay buffer is not saved was given.
    _replay_damage_reported = False

    def save_replay_buffer(self) -> None:
        """Save the replay buffer beside the checkpoints, with the step of the checkpoint
        it goes with; the old file survives a crash.

        Once per step: mlagents' end-of-run ``save_model`` calls ``_checkpoint``, which
        saves the buffer, and then saves it again; the second call does nothing.
        """
        if self.replay is None:
            return
        with self._replay_lock:  # a consistent ring, not one end_episode writes into
            if self.replay_damaged is not None:
                if not self._replay_damage_reported:
                    logger.warning(
                        f"Replay buffer not saved: a change of it was cut short "
                        f"({self.replay_damaged}); {self.replay_path} is left as it was."
                    )
                    self._replay_damage_reported = True
                return
            step = int(self._step)
            if self._replay_saved_at_step == step:
                logger.debug(f"Replay buffer already saved at step {step}.")
                return
            self.replay.save(self.replay_path, info={"step": step})
            self._replay_saved_at_step = step
            saved = len(self.replay)
        logger.info(
            f"Saved replay buffer ({saved} transitions, "
            f"{os.path.getsize(self.replay_path)} bytes) to {self.replay_path}."
        )

    def load_replay_buffer(self) -> None:
        """Load the saved buffer, or stop with a one-line
        :class:`~mla_plugin_core.host.config_errors.ResumeError` (nothing written) when it does
        not fit this configuration.

        A buffer saved at another step than the checkpoint (a kill between the two
        writes) is loaded with a warning: its transitions are valid experience, only
        older (or newer) than the network.
        """
        assert self.replay is not None
        path = self.replay_path
        try:
            info = self.replay.load(path)
        except Exception as err:  # a mismatch (ValueError) or a foreign/damaged file
            reason = str(err).removeprefix(f"{path}: ")
            if not isinstance(err, ValueError):
                reason = f"unreadable ({type(err).__name__}: {reason})"
            raise ResumeError(
                f"cannot resume {path}: {' '.join(reason.split())}; resume with the settings "
                "it was saved with, move the file away, or set save_replay_buffer: false to "
                "start with an empty buffer"
            ) from err
        saved_step = info.get("step")
        if saved_step is not None and int(saved_step) != self._step:
            logger.warning(
                f"{path} was saved at step {saved_step} and the checkpoint at step "
                f"{self._step} (the run was killed between the two writes): resuming with "
                f"its {len(self.replay)} transitions."
            )
        self._replay_saved_at_step = None if saved_step is None else int(saved_step)
        logger.info(f"Loaded {len(self.replay)} transitions from {path}.")

    def maybe_load_replay_buffer(self) -> None:
        if self.replay is None or not (self.load and self.checkpoint_replay_buffer):
            return
        if not os.path.exists(self.replay_path):
            logger.warning(f"No replay buffer at {self.replay_path}; starting with an empty one.")
            return
        self.load_replay_buffer()

    # -- trajectories to transitions -----------------------------------------------------

    def _transitions(
        self, buffer: AgentBuffer, trajectory: Trajectory, rewards: dict[str, np.ndarray]
    ) -> Transitions:
        """1-step transitions ``[T, ...]`` of one trajectory."""
        spec = self.policy.behavior_spec
        n_obs = len(spec.observation_specs)
        length = buffer.num_experiences
        n_mask = int(sum(spec.action_spec.discrete_branches))
        masks = np.asarray(buffer[BufferKey.ACTION_MASK].get_batch(), dtype=bool)
        if masks.shape != (length, n_mask):  # the env sent no mask: everything allowed
            masks = np.ones((length, n_mask), dtype=bool)
        # The mask of step t+1's observation; unknown after the last step (see _store).
        next_masks = np.concatenate([masks[1:], np.ones((1, n_mask), dtype=bool)])
        dones = np.zeros(length, dtype=bool)
        truncated = np.zeros(length, dtype=bool)
        if trajectory.done_reached:
            if trajectory.interrupted:
                truncated[-1] = True
            else:
                dones[-1] = True
        return Transitions(
            obs=ObsUtil.from_buffer(buffer, n_obs),
            continuous_actions=np.asarray(
                buffer[BufferKey.CONTINUOUS_ACTION].get_batch(), np.float32
            ).reshape(length, spec.action_spec.continuous_size),
            discrete_actions=np.asarray(
                buffer[BufferKey.DISCRETE_ACTION].get_batch(), np.int32
            ).reshape(length, len(spec.action_spec.discrete_branches)),
            action_masks=masks,
            rewards=rewards,
            dones=dones,
            truncated=truncated,
            next_obs=ObsUtil.from_buffer_next(buffer, n_obs),
            next_action_masks=next_masks,
        )

    def _store(self, agent_id: str, steps: Transitions, episode_ended: bool) -> None:
        """Pass one agent's steps through the n-step accumulator into the replay buffer.

        Nothing is copied on the way: the step held from the agent's previous trajectory
        (its last row, kept as that batch and row) and this trajectory's rows go to
        :meth:`NStepAccumulator.add_to`, which writes the transitions straight into the
        replay buffer's ring.
        """
        assert self.n_step_accumulator is not None and self.replay is not None
        size = len(np.asarray(steps.dones))
        parts = []
        held = self._held_steps.pop(agent_id, None)
        if held is not None:
            # The held step's next observation is this trajectory's first one.
            if size:
                np.asarray(held.next_action_masks)[-1] = np.asarray(steps.action_masks)[0]
            parts.append((held, len(np.asarray(held.dones)) - 1, len(np.asarray(held.dones))))
        if not episode_ended and size:
            self._held_steps[agent_id] = steps
            size -= 1
        parts.append((steps, 0, size))
        self.n_step_accumulator.add_to(self.replay, agent_id, parts)

    def end_episode(self) -> None:
        """End every running episode: mlagents' forced reset (lesson change, self-play swap).

        mlagents' agent processors drop their partial trajectories, so each agent's next
        trajectory starts a new episode. The steps still waiting here, the step held from
        each agent's last trajectory and its n-step queue, are stored now as truncated:
        their next observations are real, so the bootstrap from them stays valid (the held
        step's next mask is unknown, all actions allowed, as at a max-step interruption).
        Dropping them instead would lose up to ``n_step`` transitions per agent and reset.
        """
        super().end_episode()
        self._store_waiting_steps()

    def save_model(self) -> None:
        """mlagents' end-of-run save, with every step of the run in the replay buffer.

        The steps still waiting (each agent's held step and n-step queue, up to ``n_step``
        per agent) are stored first as truncated, as :meth:`end_episode` does: a resumed
        run starts new episodes, and their next observations are real, so the bootstrap
        from them stays valid. Without this a run's last steps never reached the saved
        buffer. (With ``threaded: true`` mlagents may still be running the trainer's
        thread, which can hold a trajectory back after this.)

        mlagents also saves after an error or Ctrl-C. If that cut a change of the replay
        short (:attr:`replay_damaged`), nothing is stored and the buffer is not saved; if
        storing the waiting steps fails, the model is saved all the same.
        """
        if self.checkpoint_replay_buffer:
            try:
                self._store_waiting_steps()
            except Exception as err:  # the replay is marked damaged: not saved
                logger.warning(f"{self.brain_name}: the steps still waiting not stored: {err}")
        super().save_model()

    def _store_waiting_steps(self) -> None:
        """Store each agent's held step and n-step queue as truncated (see :meth:`end_episode`)."""
        if self.n_step_accumulator is None or self.replay is None:
            return
        with self._replay_write:
            if self.replay_damaged is not None:
                return
            if not (self._held_steps or len(self.n_step_accumulator)):
                return
            for agent_id in list(self._held_steps):
                held = select_rows(self._held_steps.pop(agent_id), slice(-1, None))
                truncated = held._replace(truncated=np.ones(1, bool))
                self._store(agent_id, truncated, episode_ended=True)
            if len(self.n_step_accumulator):  # queues without a held step: none in this flow
                self.replay.add(self.n_step_accumulator.flush())
            self._replay_saved_at_step = None  # the buffer changed at the same step

    def _process_trajectory(self, trajectory: Trajectory) -> None:
        super()._process_trajectory(trajectory)
        agent_id = trajectory.agent_id
        buffer = self.trajectory_buffer(trajectory)
        rewards = self.evaluate_reward_signals(buffer, agent_id)
        if self.should_still_train:
            steps = self._transitions(buffer, trajectory, rewards)
            with self._replay_write:
                self._store(agent_id, steps, trajectory.done_reached)
        if trajectory.done_reached:
            self._update_end_episode_stats(agent_id, self.optimizer)

    # -- updates -------------------------------------------------------------------------

    def _is_ready_update(self) -> bool:
        return (
            self.replay is not None
            and len(self.replay) >= self.hyperparameters.batch_size
            and self._step >= self.hyperparameters.buffer_init_steps
        )

    def importance_sampling_beta(self) -> float:
        """Prioritized replay's beta now, annealed linearly to 1 over
        ``prioritized_replay_beta_steps`` environment steps (``0``: over ``max_steps``); the
        prioritized buffer calls it at each draw."""
        horizon = int(self.hyperparameters.prioritized_replay_beta_steps) or self.get_max_steps
        beta = ScheduledValue(
            "linear", self.hyperparameters.prioritized_replay_beta, 1.0, max(horizon, 1)
        )
        return beta(self._step)

    def sample_replay(self) -> ReplaySample:
        """One batch of ``batch_size`` transitions, drawn as the replay buffer draws them."""
        assert self.replay is not None
        with self._replay_lock:
            return self.replay.sample(self.hyperparameters.batch_size)

    def rescore_reward_signals(self, sample: ReplaySample) -> ReplaySample:
        """``sample`` with its learning reward signals re-evaluated now: see
        :func:`rescore_reward_signals` (module function), with this trainer's providers."""
        return rescore_reward_signals(sample, self.optimizer.reward_signals, self.n_step)

    def _update_policy(self) -> bool:
        """Gradient steps until ``steps_per_update`` environment steps per update is met.

        Stops training (:meth:`stop_if_non_finite`) at the first NaN/inf loss or TD error
        (parameters are checked before each checkpoint).
        """
        self.cumulative_returns_since_policy_update.clear()
        stats: dict[str, list[float]] = defaultdict(list)
        init_steps = self.hyperparameters.buffer_init_steps
        while (self._step - init_steps) / self.update_steps > self.steps_per_update:
            sample = self.rescore_reward_signals(self.sample_replay())
            result = self.optimizer.update_from_replay(sample)
            self.stop_if_non_finite({**result.stats, "TD errors": result.td_errors})
            if result.td_errors is not None:  # prioritized replay's new priorities
                assert self.replay is not None
                with self._replay_lock:
                    self.replay.update_priorities(sample.indices, result.td_errors)
            for name, value in result.stats.items():
                stats[name].append(value)
            self.update_steps += 1
        self.report_mean_stats(stats)
        self.update_behavioral_cloning()
        self._update_reward_signals()
        return bool(stats)

    def _update_reward_signals(self) -> None:
        """Train learning reward signals (curiosity, GAIL, RND) on replay samples.

        The samples are uniform even with prioritized replay, as mlagents' SAC draws them:
        TD-error priorities describe the Q-network's mistakes, not the data distribution a
        discriminator or a forward model should fit. A NaN/inf loss stops training
        (:meth:`stop_if_non_finite`).
        """
        init_steps = self.hyperparameters.buffer_init_steps
        learning = any(
            name != "extrinsic" for name in self.optimizer.reward_signals
        )  # the extrinsic signal has nothing to learn
        stats: dict[str, list[float]] = defaultdict(list)
        while (
            self._step - init_steps
        ) / self.reward_signal_update_steps > self.reward_signal_steps_per_update:
            if learning:
                assert self.replay is not None
                with self._replay_lock:
                    uniform = self.replay.sample_uniform(self.hyperparameters.batch_size)
                batch = sample_to_agent_buffer(uniform)
                signal_stats = self.optimizer.update_reward_signals(batch)
                self.stop_if_non_finite(signal_stats)
                for name, value in signal_stats.items():
                    stats[name].append(value)
            self.reward_signal_update_steps += 1
        self.report_mean_stats(stats)
