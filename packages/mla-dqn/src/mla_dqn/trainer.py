"""``trainer_type: dqn`` for ``mlagents-learn``: data flow and the plugin entry point.

Trajectories become n-step transitions in a (prioritized) replay buffer and gradient steps
follow ``steps_per_update``: all in :class:`~mla_plugin_core.trainers.off_policy.OffPolicyPluginTrainer`.
This module picks the network (:mod:`mla_dqn.networks`), the maths (:mod:`mla_dqn.optimizer`),
the exploration rate, and loads demonstrations (:mod:`mla_dqn.demonstrations`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import cast

import attr
from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.policy import Policy
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import NetworkSettings
from mlagents_envs.base_env import BehaviorSpec
from mlagents_envs.logging_util import get_logger

from mla_dqn.demonstrations import (
    EXPERT_ID,
    ExpertSteps,
    expert_replay,
    expert_rows,
    expert_steps,
    load_expert_steps,
    new_expert_replay,
)
from mla_dqn.networks import QNetwork
from mla_dqn.optimizer import DQNOptimizer
from mla_dqn.settings import DemonstrationSettings, DQNSettings
from mla_dqn.streaming import DemoWatcher
from mla_plugin_core.host.entry_point import make_entry_point
from mla_plugin_core.networks.q_network import EpsilonGreedyQPolicy
from mla_plugin_core.settings.errors import SettingError
from mla_plugin_core.trainers.off_policy import OffPolicyPluginTrainer
from mla_plugin_core.trainers.schedules import ScheduledValue

logger = get_logger(__name__)

TRAINER_NAME = "dqn"


def epsilon_schedule(settings: DQNSettings) -> ScheduledValue:
    """Epsilon by environment step: ``exploration_schedule`` from
    ``exploration_initial_eps`` to ``exploration_final_eps`` over ``exploration_steps``."""
    return ScheduledValue(
        settings.exploration_schedule,
        settings.exploration_initial_eps,
        settings.exploration_final_eps,
        settings.exploration_steps,
    )


def exploration_epsilon(settings: DQNSettings, step: int) -> float:
    """Epsilon at environment step ``step`` (a function of the step only, so ``--resume``
    continues where it stopped)."""
    return epsilon_schedule(settings)(step)


class DQNPolicy(EpsilonGreedyQPolicy):
    """Core's epsilon-greedy Q policy with a :class:`~mla_dqn.networks.QNetwork` (one Q
    head per reward signal) and DQN's exploration schedule.

    :param greedy: act greedily whatever the step (for runs that do not train).
    :param training_step: the step epsilon follows (default the policy's own; see
        :class:`~mla_plugin_core.networks.q_network.EpsilonGreedyQPolicy`).
    """

    def __init__(
        self,
        seed: int,
        behavior_spec: BehaviorSpec,
        network_settings: NetworkSettings,
        settings: DQNSettings,
        reward_signals: list[str],
        greedy: bool = False,
        training_step: Callable[[], int] | None = None,
    ):
        super().__init__(
            seed,
            behavior_spec,
            network_settings,
            epsilon_schedule(settings),
            QNetwork,
            {"reward_signals": reward_signals, "dueling": settings.dueling, "seed": seed},
            greedy,
            training_step,
        )
        self.settings = settings


class DQNTrainer(OffPolicyPluginTrainer):
    """Deep Q-Networks for discrete actions: double DQN, dueling heads, action branching,
    n-step returns, prioritized replay, per-signal discounts, DQfD demonstrations."""

    # Set by mlagents' OffPolicyTrainer from the trainer settings and by add_policy.
    hyperparameters: DQNSettings
    policy: DQNPolicy
    optimizer: DQNOptimizer
    #: With ``demonstrations.watch``: the thread reading the folder, and what it streamed.
    _watcher: DemoWatcher | None = None
    _streamed: dict[str, int]

    @staticmethod
    def get_trainer_name() -> str:
        return TRAINER_NAME

    def _refuse_unsupported(self, behavior_spec: BehaviorSpec) -> None:
        """Raise a :class:`SettingError` (``<behavior>: <key> = <value> is not allowed: ...``)
        for what DQN cannot do with this behavior."""
        name = self.brain_name
        action_spec = behavior_spec.action_spec
        if action_spec.continuous_size > 0:
            raise SettingError(
                ("trainer_type",), TRAINER_NAME,
                f"the behavior has {action_spec.continuous_size} continuous action(s) and DQN "
                "needs discrete actions only; use trainer_type sac, ppo or a2c for continuous "
                "or hybrid actions", behavior=name,
            )  # fmt: skip
        if action_spec.discrete_size == 0:
            raise SettingError(
                ("trainer_type",), TRAINER_NAME,
                "the behavior has no actions; DQN needs discrete ones", behavior=name,
            )  # fmt: skip
        memory = self.trainer_settings.network_settings.memory
        hp = self.hyperparameters
        if memory is not None:
            length = memory.sequence_length
            if hp.burn_in >= length:
                raise SettingError(
                    ("hyperparameters", "burn_in"), hp.burn_in,
                    f"must be < network_settings.memory.sequence_length ({length}): a sequence "
                    "needs steps to learn from after its burn-in", behavior=name,
                )  # fmt: skip
            if hp.sequence_overlap >= length:
                raise SettingError(
                    ("hyperparameters", "sequence_overlap"), hp.sequence_overlap,
                    f"must be < network_settings.memory.sequence_length ({length}) (-1: half "
                    "of it)", behavior=name,
                )  # fmt: skip
            if hp.demonstrations is not None:
                raise SettingError(
                    ("hyperparameters", "demonstrations"), attr.asdict(hp.demonstrations),
                    "demonstrations are not supported with network_settings.memory yet (the "
                    "expert replay holds transitions, not sequences); remove one of them",
                    behavior=name,
                )  # fmt: skip
        if self.trainer_settings.behavioral_cloning is not None:
            raise SettingError(
                ("behavioral_cloning",), attr.asdict(self.trainer_settings.behavioral_cloning),
                "DQN does not support it (it needs a stochastic policy); use "
                "hyperparameters.demonstrations (DQfD) instead", behavior=name,
            )  # fmt: skip

    def create_policy(
        self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: BehaviorSpec
    ) -> TorchPolicy:
        """A :class:`DQNPolicy` whose actor is a :class:`~mla_dqn.networks.QNetwork` with
        one head per reward signal of the YAML."""
        self._refuse_unsupported(behavior_spec)
        return DQNPolicy(
            self.seed,
            behavior_spec,
            self.trainer_settings.network_settings,
            self.hyperparameters,
            [signal.value for signal in self.trainer_settings.reward_signals],
            greedy=not self.is_training,
            # every copy mlagents makes (self-play's acting policies) explores as training
            # has advanced, not from its own step, which only the trainer's policy gets
            training_step=lambda: self.get_step,
        )

    def create_optimizer(self) -> DQNOptimizer:
        return DQNOptimizer(cast(TorchPolicy, self.policy), self.trainer_settings)

    def add_policy(self, parsed_behavior_id: BehaviorIdentifiers, policy: Policy) -> None:
        """mlagents' setup (checkpoint loaded on ``--resume``), then the demonstrations.

        A fresh training run (not ``--resume``) first updates the observation normaliser
        with the demonstrations' observations, once, so that ``pretrain_updates`` (and the
        first updates) see normalised expert data; then it pre-trains. A resumed run has
        both in its checkpoint and does neither again, even from a checkpoint at step 0.
        """
        super().add_policy(parsed_behavior_id, policy)
        demos = self.hyperparameters.demonstrations
        if demos is None:
            return
        spec = self.policy.behavior_spec
        fresh = self.is_training and not self.load
        if demos.watch:
            steps = self._start_watching(demos)
        else:
            try:
                steps = load_expert_steps(demos.path, spec)
            except (OSError, RuntimeError, ValueError) as err:
                raise TrainerConfigError(
                    f"Behavior {self.brain_name!r}: cannot use demonstrations {demos.path!r}: {err}"
                ) from err
            self.optimizer.expert_replay = expert_replay(
                steps, spec, self.optimizer.reward_signals, self.hyperparameters.n_step, self.seed
            )
        expert = self.optimizer.expert_replay
        if fresh and steps is not None:
            self.update_normalization(steps.buffer)
        logger.info(f"{self.brain_name}: {len(expert)} expert transitions from {demos.path}.")
        if demos.pretrain_updates and fresh and len(expert):
            stats = self.optimizer.pretrain(demos.pretrain_updates)
            logger.info(f"{self.brain_name}: pre-trained on demonstrations: {stats}")

    # -- demonstrations streamed while training (demonstrations.watch) ---------------------

    def _start_watching(self, demos: DemonstrationSettings) -> ExpertSteps | None:
        """The expert replay (``demos.buffer_size`` rows), the episodes of the files present
        now, then the watcher thread for what comes later; the steps read now."""
        if os.path.isfile(demos.path):
            raise TrainerConfigError(
                f"Behavior {self.brain_name!r}: demonstrations.path {demos.path!r} is a file; "
                "with watch: true it must be a folder (where the recorder writes)"
            )
        if not os.path.isdir(demos.path):
            logger.warning(
                f"{self.brain_name}: demonstrations folder {demos.path!r} does not exist yet; "
                "watching for it"
            )
        spec = self.policy.behavior_spec
        self.optimizer.expert_replay = new_expert_replay(
            demos.buffer_size,
            spec,
            self.optimizer.reward_signals,
            self.hyperparameters.n_step,
            self.seed,
        )
        self._streamed = {"steps": 0, "episodes": 0}
        self._watcher = DemoWatcher(demos.path, spec, demos.watch_interval, logger.warning)
        self._watcher.look()
        steps = self._take_streamed()
        self._watcher.start()
        return steps

    def _take_streamed(self) -> ExpertSteps | None:
        """Move the episodes the watcher has read into the expert replay (one ``add_many``);
        their steps, or None."""
        episodes = self._watcher.take()
        if not episodes:
            return None
        steps = expert_steps([e.steps for e in episodes])
        rows = expert_rows(steps, self.policy.behavior_spec, self.optimizer.reward_signals)
        replay = self.optimizer.expert_replay
        assert replay is not None
        replay.add_many([(EXPERT_ID, rows, None)])
        replay.end_episodes()  # an episode cut by the end of a recording
        self._streamed["steps"] += steps.buffer.num_experiences
        self._streamed["episodes"] += len(episodes)
        files = sorted({e.file for e in episodes})
        logger.info(
            f"{self.brain_name}: {len(episodes)} demonstration episode(s), "
            f"{steps.buffer.num_experiences} steps, streamed from {', '.join(files)}; "
            f"{self._streamed['episodes']} episodes, {self._streamed['steps']} steps so far; "
            f"{len(replay)} expert transitions held"
        )
        return steps

    def advance(self) -> None:
        """mlagents' step of the trainer, after taking the streamed demonstrations."""
        if self._watcher is not None:
            self._take_streamed()
            self._stats_reporter.set_stat("Demonstrations/Streamed Steps", self._streamed["steps"])
            self._stats_reporter.set_stat(
                "Demonstrations/Streamed Episodes", self._streamed["episodes"]
            )
        super().advance()

    def _update_policy(self) -> bool:
        self._stats_reporter.add_stat("Policy/Epsilon", self.policy.epsilon)
        return super()._update_policy()


get_type_and_setting = make_entry_point(DQNTrainer, DQNSettings)
