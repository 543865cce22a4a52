"""Small builders shared by the tests: behavior specs, settings, policies, replay samples."""

from __future__ import annotations

import numpy as np
from mlagents.trainers.settings import NetworkSettings, TrainerSettings
from mlagents_envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

from mla_dqn.optimizer import DQNOptimizer
from mla_dqn.settings import DQNSettings
from mla_dqn.trainer import DQNPolicy
from mla_plugin_core.replay import ReplaySample


def behavior_spec(obs_size: int = 4, branches: tuple[int, ...] = (3,), continuous: int = 0):
    observation = ObservationSpec(
        (obs_size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "obs"
    )
    return BehaviorSpec([observation], ActionSpec(continuous, branches))


def trainer_settings(**hyperparameters) -> TrainerSettings:
    return TrainerSettings(
        trainer_type="dqn",
        hyperparameters=DQNSettings(**hyperparameters),
        network_settings=NetworkSettings(hidden_units=16, num_layers=1),
    )


def make_optimizer(spec: BehaviorSpec, settings: TrainerSettings, seed: int = 0) -> DQNOptimizer:
    signals = [s.value for s in settings.reward_signals]
    policy = DQNPolicy(seed, spec, settings.network_settings, settings.hyperparameters, signals)
    return DQNOptimizer(policy, settings)


def replay_sample(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: dict[str, np.ndarray],
    discounts: dict[str, np.ndarray],
    next_obs: np.ndarray,
    dones: np.ndarray | None = None,
    truncated: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    next_masks: np.ndarray | None = None,
    n_mask: int = 3,
) -> ReplaySample:
    b = len(obs)
    return ReplaySample(
        obs=[np.asarray(obs, np.float32)],
        continuous_actions=np.zeros((b, 0), np.float32),
        discrete_actions=np.asarray(actions, np.int32).reshape(b, -1),
        action_masks=np.ones((b, n_mask), bool) if masks is None else masks,
        rewards={k: np.asarray(v, np.float32) for k, v in rewards.items()},
        dones=np.zeros(b, bool) if dones is None else np.asarray(dones, bool),
        truncated=np.zeros(b, bool) if truncated is None else np.asarray(truncated, bool),
        next_obs=[np.asarray(next_obs, np.float32)],
        next_action_masks=np.ones((b, n_mask), bool) if next_masks is None else next_masks,
        discounts={k: np.asarray(v, np.float32) for k, v in discounts.items()},
        indices=np.arange(b, dtype=np.int64),
        weights=np.ones(b, np.float32),
    )
