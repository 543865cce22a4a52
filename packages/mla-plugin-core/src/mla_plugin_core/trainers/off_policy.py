"""Base trainer for off-policy algorithms (DQN, SAC-likes) on a fast replay buffer.

An algorithm subclasses :class:`OffPolicyPluginTrainer` and writes:

- ``get_trainer_name()`` — the ``trainer_type`` of the YAML;
- ``create_policy()`` — a ``TorchPolicy`` (its ``actor`` is what ONNX export saves);
- ``create_optimizer()`` — an :class:`OffPolicyOptimizer` whose
  :meth:`~OffPolicyOptimizer.update_from_replay` does one gradient step on a
  :class:`~mla_plugin_core.replay.transitions.ReplaySample` and returns its stats (and TD errors for
  prioritized replay).

This class does the rest:

1. each trajectory becomes 1-step rows: observations and next observations, actions,
   action masks of the observation and of the next observation (the last one's comes with
   the agent's next trajectory), one reward per reward signal (evaluated now, scaled by
   its ``strength``), ``dones`` only at a real terminal and ``truncated`` at a max-step
   interruption (whose bootstrap stays valid);
2. they go, as written, to the agent's episode in a
   :class:`~mla_plugin_core.replay.step_replay.StepReplay` (or the prioritized one), which
   makes ``n_step`` transitions when it samples, exact at episode ends; the trajectories
   one ``advance()`` drains are stored together (one ``add_many``) before it updates;
3. every ``steps_per_update`` environment steps after ``buffer_init_steps``, one sample of
   ``batch_size`` goes through the optimizer; priorities are updated from its TD errors;
4. reward signals that learn (curiosity, GAIL, RND) are updated on uniform samples of
   1-step rows (also with prioritized replay and any ``n_step``) every
   ``reward_signal_steps_per_update`` steps, through :func:`sample_to_agent_buffer`;
5. with ``save_replay_buffer``, the replay is saved beside each checkpoint (write then
   rename) and loaded again on ``--resume``;
6. on mlagents' forced reset (``end_episode()``: a curriculum lesson change, a self-play
   swap) and at the end of a run, every running episode ends at its last step as
   truncated, so no transition spans the reset and none is lost.

Reward signals are evaluated when a step is stored. The learning ones (every signal but
``extrinsic``: curiosity, GAIL, RND) are evaluated again on each sample before its gradient
step, every step of each n-step window (:func:`learning_rewards`),
as mlagents' SAC does, so the Q-function learns the providers' current rewards, not those
of the time a step was stored. Replayed sequences (memory) use the stored rewards.
"""

from __future__ import annotations

import abc
import os
import threading
import warnings
from collections import defaultdict, deque
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
from mla_plugin_core.replay.batches import ReplayBatch
from mla_plugin_core.replay.step_replay import PrioritizedStepReplay, Rescore, StepReplay
from mla_plugin_core.replay.transitions import (
    ReplaySample,
    SequenceSample,
    Transitions,
    to_agent_buffer,
)
from mla_plugin_core.settings.memory import refuse_if_too_big, step_replay_bytes, step_row_bytes
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
    def update_from_replay(self, sample: ReplaySample | SequenceSample) -> ReplayUpdate:
        """One gradient step on ``sample``: n-step transitions (arrays ``[B, ...]``, see
        :class:`ReplaySample`; :meth:`replay_batch` gives them as tensors) or, with
        ``network_settings.memory``, sequences (:class:`SequenceSample`, ``[B, L, ...]``)."""

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
    """The reward signals that learn the 1-step dynamics, by name: curiosity (its forward
    and inverse models read the 1-step next observation) and GAIL with ``use_actions`` (the
    1-step ``done`` of ``(obs, action)``). Since 0.2 the trainer updates every learning
    signal on 1-step rows (:meth:`StepReplay.sample_steps`), so they train at any
    ``n_step``; 0.1 refused them with ``n_step > 1``.

    :param reward_signals: ``TrainerSettings.reward_signals``.
    """
    names = []
    for kind, settings in reward_signals.items():
        if kind == RewardSignalType.CURIOSITY or (
            kind == RewardSignalType.GAIL and getattr(settings, "use_actions", False)
        ):
            names.append(kind.value)
    return names


def learning_rewards(reward_signals: Mapping[str, Any]) -> Rescore | None:
    """The rewards of the learning signals (every one but ``extrinsic``: curiosity, GAIL,
    RND) as their providers give them now, scaled by ``strength``, for 1-step rows: the
    ``rescore`` of :meth:`StepReplay.sample`, which sums them into n-step returns. ``None``
    when every signal is extrinsic.

    :param reward_signals: name -> mlagents reward provider (``evaluate``, ``strength``).
    """
    learning = {name: signal for name, signal in reward_signals.items() if name != "extrinsic"}
    if not learning:
        return None

    def rescore(steps: ReplaySample) -> dict[str, np.ndarray]:
        view = sample_to_agent_buffer(steps)
        return {
            name: np.asarray(signal.evaluate(view), np.float32) * signal.strength
            for name, signal in learning.items()
        }

    return rescore


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

    Since 0.2 the trainers rescore inside the replay's sampling, at any ``n_step``
    (:func:`learning_rewards`); this function remains for 1-step samples of 0.1's buffer.
    """
    rescore = learning_rewards(reward_signals)
    if n_step > 1 or rescore is None:
        return sample
    rescored = {name: np.asarray(value, np.float32) for name, value in rescore(sample).items()}
    return sample._replace(rewards={**sample.rewards, **rescored})


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
        self.replay: StepReplay | None = None
        # With `threaded: true` the trainer's thread stores and samples while mlagents'
        # main thread may call end_episode (a lesson change, a self-play swap), which
        # changes the replay too: one at a time. (A change cut short, by a Ctrl-C in the
        # main thread, leaves the replay consistent by itself: see StepReplay.add.)
        self._replay_lock = threading.RLock()
        # Trajectories an advance() drained, stored in the replay in one add_many before
        # it updates (agent, steps, memories); thread-safe appends and pops.
        self._drained: deque[tuple[str, Transitions, np.ndarray | None]] = deque()
        self._advancing = False

    # -- replay construction -------------------------------------------------------------

    @property
    def prioritized(self) -> bool:
        return bool(getattr(self.hyperparameters, "prioritized_replay", False))

    @property
    def sequence_length(self) -> int:
        """With ``network_settings.memory``: the steps of each replayed sequence (R2D2);
        ``0`` without memory (n-step transitions are replayed)."""
        memory = self.trainer_settings.network_settings.memory
        return 0 if memory is None else int(memory.sequence_length)

    @property
    def sequence_overlap(self) -> int:
        """Steps two consecutive sequences share: ``sequence_overlap`` of the
        hyperparameters, ``-1`` (or none) meaning half of ``sequence_length``."""
        overlap = int(getattr(self.hyperparameters, "sequence_overlap", -1))
        return self.sequence_length // 2 if overlap < 0 else overlap

    @property
    def samples_per_update(self) -> int:
        """Transitions per gradient step, or with memory sequences: ``batch_size`` steps in
        ``batch_size // sequence_length`` sequences (at least one), as mlagents' SAC."""
        batch = int(self.hyperparameters.batch_size)
        return max(1, batch // self.sequence_length) if self.sequence_length else batch

    @property
    def n_step(self) -> int:
        """Rewards summed per replay row (``n_step``; 1 for settings without it)."""
        return int(getattr(self.hyperparameters, "n_step", 1))

    def create_replay_buffer(self) -> StepReplay:
        """The replay for this trainer's behavior spec, reward signals and ``n_step``."""
        spec = self.policy.behavior_spec
        signals = self.optimizer.reward_signals
        common = dict(
            capacity=self.hyperparameters.buffer_size,
            obs_shapes=[o.shape for o in spec.observation_specs],
            continuous_size=spec.action_spec.continuous_size,
            discrete_branches=spec.action_spec.discrete_branches,
            gammas={name: signal.gamma for name, signal in signals.items()},
            n_step=self.n_step,
            seed=self.seed,
        )
        if self.sequence_length:
            common.update(
                sequence_length=self.sequence_length,
                sequence_overlap=self.sequence_overlap,
                memory_size=int(self.policy.m_size),
            )
        # Refused before anything is allocated (see mla_plugin_core.settings.memory).
        shape = (
            common["obs_shapes"],
            common["continuous_size"],
            common["discrete_branches"],
            list(signals),
        )
        capacity = self.hyperparameters.buffer_size
        memory_size = int(common.get("memory_size", 0))
        refuse_if_too_big(
            step_replay_bytes(capacity, *shape, self.prioritized, memory_size),
            capacity,
            "the replay buffer",
            detail=f"{step_row_bytes(*shape, memory_size)} B per step",
            behavior=self.brain_name,
        )
        if not self.prioritized:
            return StepReplay(**common)
        return PrioritizedStepReplay(
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
        self.replay = self._as_step_replay(self.create_replay_buffer())
        self.maybe_load_replay_buffer()

    def _as_step_replay(self, replay: Any) -> StepReplay:
        """``replay``, or for a 0.1 plugin whose ``create_replay_buffer`` returns a
        :class:`~mla_plugin_core.replay.buffer.ReplayBuffer`, a :class:`StepReplay` of the
        same capacity and kind (with a DeprecationWarning): since 0.2 the trainer stores
        steps, not finished n-step transitions."""
        if isinstance(replay, StepReplay):
            return replay
        from mla_plugin_core.replay.buffer import PrioritizedReplayBuffer, ReplayBuffer

        if not isinstance(replay, ReplayBuffer):
            raise TypeError(
                f"{type(self).__name__}.create_replay_buffer returned a "
                f"{type(replay).__name__}; expected a StepReplay"
            )
        warnings.warn(
            f"{type(self).__name__}.create_replay_buffer returns a ReplayBuffer, deprecated "
            "since mla-plugin-core 0.2 for off-policy trainers: return a StepReplay (or "
            "PrioritizedStepReplay); a StepReplay of the same capacity and kind is used",
            DeprecationWarning,
            stacklevel=2,
        )
        spec = self.policy.behavior_spec
        common = dict(
            capacity=replay.capacity,
            obs_shapes=replay.obs_shapes,
            continuous_size=spec.action_spec.continuous_size,
            discrete_branches=spec.action_spec.discrete_branches,
            gammas={n: s.gamma for n, s in self.optimizer.reward_signals.items()},
            n_step=self.n_step,
            seed=self.seed,
        )
        if isinstance(replay, PrioritizedReplayBuffer):
            return PrioritizedStepReplay(**common, alpha=replay.alpha, beta=replay.beta)
        return StepReplay(**common)

    # -- saving and loading --------------------------------------------------------------

    @property
    def replay_path(self) -> str:
        return os.path.join(self.artifact_path, REPLAY_FILENAME)

    #: The step of the last replay buffer save (the buffer only changes when steps do).
    _replay_saved_at_step: int | None = None

    def save_replay_buffer(self) -> None:
        """Save the replay buffer beside the checkpoints, with the step of the checkpoint
        it goes with; the old file survives a crash.

        Once per step: mlagents' end-of-run ``save_model`` calls ``_checkpoint``, which
        saves the buffer, and then saves it again; the second call does nothing.
        """
        if self.replay is None:
            return
        with self._replay_lock:  # a consistent ring, not one end_episode writes into
            self._store_drained()  # the steps counted so far are in the file
            step = int(self._step)
            if self._replay_saved_at_step == step:
                logger.debug(f"Replay buffer already saved at step {step}.")
                return
            self.replay.save(self.replay_path, info={"step": step})
            self._replay_saved_at_step = step
            saved = len(self.replay)
        logger.info(
            f"Saved replay buffer ({saved} steps, "
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
        # A resumed run starts new episodes: those running at the save end there.
        self.replay.end_episodes()
        logger.info(
            f"Loaded {len(self.replay)} transitions from {path} ({self.replay.rows_held} steps)."
        )

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
        # The mask of step t+1's observation; after the last step it comes with the
        # agent's next trajectory (the replay takes it from there), else all allowed.
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

    def _store(
        self,
        agent_id: str,
        steps: Transitions,
        episode_ended: bool = False,
        memories: np.ndarray | None = None,
    ) -> None:
        """Append one agent's steps (and with memory the recurrent state before each) to its
        episode in the replay (``episode_ended`` is read from the steps' flags; kept for 0.1
        callers)."""
        assert self.replay is not None
        with self._replay_lock:
            self.replay.add(agent_id, steps, memories=memories)

    def _store_drained(self) -> None:
        """Store the trajectories drained so far, in order, with one ``add_many``: the
        replay's per-call work is paid once per ``advance()``, not once per trajectory."""
        with self._replay_lock:
            batch = []
            while self._drained:
                batch.append(self._drained.popleft())
            if batch:
                assert self.replay is not None
                self.replay.add_many(batch)

    def advance(self) -> None:
        """mlagents' step of the trainer: drain the trajectory queues, then update if
        ready. The drained trajectories are stored together, before the update (see
        :meth:`_is_ready_update`) or, when there is none, at the end."""
        self._advancing = True
        try:
            super().advance()
        finally:
            self._advancing = False
            self._store_drained()

    def end_episode(self) -> None:
        """End every running episode: mlagents' forced reset (lesson change, self-play swap).

        mlagents' agent processors drop their partial trajectories, so each agent's next
        trajectory starts a new episode. Each running episode in the replay ends at its last
        stored step, as truncated: its next observation is real, so the bootstrap from it
        stays valid, and the steps that waited for more steps become transitions (shorter
        n-step sums) instead of being lost.
        """
        super().end_episode()
        self._end_replay_episodes()

    def save_model(self) -> None:
        """mlagents' end-of-run save, with every step of the run sampleable in the replay.

        The running episodes end first as truncated, as :meth:`end_episode` does: a
        resumed run starts new episodes. If that fails, the model is saved all the same.
        """
        if self.checkpoint_replay_buffer:
            try:
                self._end_replay_episodes()
            except Exception as err:
                logger.warning(f"{self.brain_name}: the running episodes not ended: {err}")
        super().save_model()

    def _end_replay_episodes(self) -> None:
        if self.replay is None:
            return
        with self._replay_lock:
            self._store_drained()  # they belong to the episodes that end
            if self.replay.end_episodes():
                self._replay_saved_at_step = None  # the replay changed at the same step

    def _process_trajectory(self, trajectory: Trajectory) -> None:
        super()._process_trajectory(trajectory)
        agent_id = trajectory.agent_id
        buffer = self.trajectory_buffer(trajectory)
        rewards = self.evaluate_reward_signals(buffer, agent_id)
        if self.should_still_train:
            steps = self._transitions(buffer, trajectory, rewards)
            memories = None
            if self.sequence_length:  # the policy's state before each step
                memories = np.asarray(buffer[BufferKey.MEMORY].get_batch(), np.float32)
            self._drained.append((agent_id, steps, memories))
            if not self._advancing:  # called on its own: stored at once
                self._store_drained()
        if trajectory.done_reached:
            self._update_end_episode_stats(agent_id, self.optimizer)

    # -- updates -------------------------------------------------------------------------

    def _is_ready_update(self) -> bool:
        # mlagents' advance() asks this once it has drained the queues: store them first
        self._store_drained()
        return (
            self.replay is not None
            and len(self.replay) >= self.samples_per_update
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

    def sample_replay(self) -> ReplaySample | SequenceSample:
        """One batch of ``batch_size`` n-step transitions, drawn as the replay draws them,
        the learning reward signals summed as their providers score each step now
        (:func:`learning_rewards`), as mlagents' SAC re-evaluates them on each minibatch: a
        novelty bonus or a discriminator reward from long ago no longer pulls the
        Q-function."""
        assert self.replay is not None
        if self.sequence_length:  # R2D2: sequences, their stored rewards
            with self._replay_lock:
                return self.replay.sample_sequences(self.samples_per_update)
        rescore = learning_rewards(self.optimizer.reward_signals)
        with self._replay_lock:
            return self.replay.sample(self.hyperparameters.batch_size, rescore=rescore)

    def rescore_reward_signals(self, sample: ReplaySample) -> ReplaySample:
        """0.1's re-scoring of a 1-step sample (:func:`rescore_reward_signals`); samples of
        :meth:`sample_replay` are rescored already."""
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
            sample = self.sample_replay()
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

        The samples are uniform 1-step rows even with prioritized replay and ``n_step > 1``,
        as mlagents' SAC draws them: TD-error priorities describe the Q-network's mistakes,
        not the data distribution a discriminator or a forward model should fit, and
        curiosity's models and GAIL with actions learn the 1-step dynamics. A NaN/inf loss stops training
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
                    steps = self.replay.sample_steps(self.hyperparameters.batch_size)
                batch = sample_to_agent_buffer(steps)
                signal_stats = self.optimizer.update_reward_signals(batch)
                self.stop_if_non_finite(signal_stats)
                for name, value in signal_stats.items():
                    stats[name].append(value)
            self.reward_signal_update_steps += 1
        self.report_mean_stats(stats)
