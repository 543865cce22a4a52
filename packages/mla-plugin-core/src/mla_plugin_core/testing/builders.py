"""Builders for unit tests of a trainer plugin: behavior specs, trainers, trajectories.

mlagents' wheels do not ship ``mlagents.trainers.tests`` (its mock brains); these are
written on mlagents' public classes only::

    spec = vector_behavior_spec(ActionSpec.create_discrete((3,)))
    trainer = make_trainer(MyTrainer, MySettings(batch_size=32), spec, tmp_path)
    update = update_once(trainer)  # random episodes until it is ready, then one update
    assert update.updated and update.changed("q_head.weight")
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
import torch
from mlagents.trainers.settings import (
    NetworkSettings,
    RewardSignalSettings,
    RewardSignalType,
    TrainerSettings,
)
from mlagents.trainers.torch_entities.action_log_probs import LogProbsTuple
from mlagents.trainers.trajectory import AgentExperience, Trajectory
from mlagents_envs.base_env import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

from mla_plugin_core.testing.trainers import add_policy_like_mlagents

#: Behavior name of the builders' trainers and trajectories (``<name>?team=0``).
BEHAVIOR = "Test"


def vector_behavior_spec(
    action_spec: ActionSpec, obs_size: int = 4, name: str = "vector"
) -> BehaviorSpec:
    """A behavior with one vector observation of ``obs_size`` floats and ``action_spec``."""
    observation = ObservationSpec(
        shape=(obs_size,),
        dimension_property=(DimensionProperty.NONE,),
        observation_type=ObservationType.DEFAULT,
        name=name,
    )
    return BehaviorSpec(observation_specs=[observation], action_spec=action_spec)


def trainer_settings(
    trainer_type: str,
    hyperparameters: Any,
    *,
    gamma: float = 0.9,
    extra_signals: dict[RewardSignalType, RewardSignalSettings] | None = None,
    hidden_units: int = 16,
    num_layers: int = 1,
    normalize: bool = False,
    memory: NetworkSettings.MemorySettings | None = None,
    max_steps: int = 10_000,
) -> TrainerSettings:
    """The ``TrainerSettings`` of one behavior, with a small network.

    :param trainer_type: the YAML's ``trainer_type``.
    :param hyperparameters: an instance of the plugin's settings class.
    :param gamma: discount of the extrinsic reward signal (strength 1).
    :param extra_signals: reward signals besides the extrinsic one (curiosity, GAIL, ...).
    :param hidden_units, num_layers, normalize, memory: ``network_settings``.
    :param max_steps: the run's length, which linear schedules decay over.
    """
    signals = {RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=gamma, strength=1.0)}
    signals.update(extra_signals or {})
    return TrainerSettings(
        trainer_type=trainer_type,
        hyperparameters=hyperparameters,
        network_settings=NetworkSettings(
            hidden_units=hidden_units, num_layers=num_layers, normalize=normalize, memory=memory
        ),
        reward_signals=signals,
        max_steps=max_steps,
    )


def make_trainer(
    trainer_cls: type,
    settings: TrainerSettings,
    spec: BehaviorSpec,
    artifact_path: str | PathLike[str],
    *,
    load: bool = False,
    seed: int = 1337,
    reward_buff_cap: int = 100,
) -> Any:
    """A trainer of ``trainer_cls`` with its policy (and optimizer) added, as mlagents does.

    :param settings: see :func:`trainer_settings`.
    :param spec: the behavior's spec (see :func:`vector_behavior_spec`).
    :param artifact_path: where checkpoints go (a test's ``tmp_path``).
    :param load: resume from the checkpoints there, as ``--resume``.
    :param seed: the run's seed.
    :param reward_buff_cap: episodes kept for the reward statistics.
    :return: the trainer; as in mlagents' ``TrainerController``, a failure while adding the
        policy is followed by the end-of-run ``save_model`` (:func:`add_policy_like_mlagents`).
    """
    trainer = trainer_cls(BEHAVIOR, reward_buff_cap, settings, True, load, seed, str(artifact_path))
    return add_policy_like_mlagents(trainer, spec)


def random_action(spec: ActionSpec, rng: np.random.Generator) -> ActionTuple:
    """One agent's random action: 1-D arrays, as mlagents stores them in an experience."""
    continuous = rng.uniform(-1, 1, spec.continuous_size).astype(np.float32)
    discrete = np.array([rng.integers(n) for n in spec.discrete_branches], dtype=np.int32)
    return ActionTuple(continuous=continuous, discrete=discrete)


def random_trajectory(
    spec: BehaviorSpec,
    rewards: list[float],
    done: bool,
    interrupted: bool = False,
    memory_size: int = 0,
    seed: int = 0,
    agent_id: str = "agent-0",
) -> Trajectory:
    """A trajectory of ``len(rewards)`` steps with random observations and actions.

    :param spec: a behavior with vector observations only (one array per observation spec).
    :param rewards: the reward of each step.
    :param done: the last step ends the episode.
    :param interrupted: that end is a max-step interruption (the value is bootstrapped).
    :param memory_size: floats of recurrent memory per step (0: no memory).
    :param seed: seed of the random observations and actions.
    """
    rng = np.random.default_rng(seed)
    action_spec = spec.action_spec
    shapes = [obs_spec.shape for obs_spec in spec.observation_specs]

    def observation() -> list[np.ndarray]:
        return [rng.normal(size=shape).astype(np.float32) for shape in shapes]

    # mlagents stores one array per discrete branch (True = forbidden), None without branches
    masks = [np.zeros(n, dtype=bool) for n in action_spec.discrete_branches] or None
    steps = []
    for t, reward in enumerate(rewards):
        last = t == len(rewards) - 1
        steps.append(
            AgentExperience(
                obs=observation(),
                reward=float(reward),
                done=done and last,
                action=random_action(action_spec, rng),
                action_probs=LogProbsTuple(
                    continuous=np.zeros(action_spec.continuous_size, dtype=np.float32),
                    discrete=np.zeros(len(action_spec.discrete_branches), dtype=np.float32),
                ),
                action_mask=masks,
                prev_action=np.zeros(len(action_spec.discrete_branches), dtype=np.float32),
                interrupted=interrupted and last,
                memory=np.zeros(memory_size, dtype=np.float32) if memory_size else None,
                group_status=[],
                group_reward=0.0,
            )
        )
    return Trajectory(
        steps=steps,
        next_obs=observation(),
        next_group_obs=[],
        agent_id=agent_id,
        behavior_id=f"{BEHAVIOR}?team=0",
    )


@dataclass
class UpdateRun:
    """What :func:`update_once` did.

    :param steps: environment steps fed before the trainer was ready.
    :param updated: the trainer's update reported a gradient step (always, once returned).
    :param before: the policy's trainable parameters before the update, by name.
    :param after: the same after it.
    """

    steps: int
    updated: bool
    before: dict[str, torch.Tensor]
    after: dict[str, torch.Tensor]

    def changed(self, name: str) -> bool:
        """Whether the update changed the parameter ``name`` (e.g. ``q_head.weight``)."""
        return not torch.equal(self.before[name], self.after[name])


def _policy_parameters(trainer: Any) -> dict[str, torch.Tensor]:
    return {
        name: parameter.detach().clone()
        for name, parameter in trainer.policy.actor.named_parameters()
        if parameter.requires_grad
    }


def update_once(
    trainer: Any,
    *,
    episode_length: int = 8,
    max_steps: int = 100_000,
    seed: int = 0,
) -> UpdateRun:
    """Drive one update of a trainer in a unit test, without ``mlagents-learn``.

    Random episodes (:func:`random_trajectory`, rewards uniform in [-1, 1], two agents in
    turn, every other episode ending in a terminal, the others in a time-out) go to the
    trainer as mlagents' ``advance()`` gives them, and whenever the trainer says it is ready
    its update runs, until one takes a gradient step (an off-policy trainer past
    ``buffer_init_steps`` may still wait for ``steps_per_update``). Works for on- and
    off-policy trainers and recurrent policies (memories of the policy's size).

    :param trainer: from :func:`make_trainer`.
    :param episode_length: steps per episode.
    :param max_steps: refuse (``AssertionError``) a trainer that made no update after this
        many steps.
    :param seed: seed of the episodes.
    :return: the steps fed and the policy's parameters just before and after that update.
    """
    spec = trainer.policy.behavior_spec
    memory_size = int(getattr(trainer.policy, "m_size", 0) or 0)
    rng = np.random.default_rng(seed)
    steps = episode = 0
    while True:
        assert steps < max_steps, f"{type(trainer).__name__} made no update in {steps} steps"
        trajectory = random_trajectory(
            spec,
            rewards=list(rng.uniform(-1.0, 1.0, episode_length)),
            done=True,
            interrupted=episode % 2 == 1,
            memory_size=memory_size,
            seed=seed * 100_003 + episode,
            agent_id=f"agent-{episode % 2}",
        )
        trainer._process_trajectory(trajectory)
        steps += episode_length
        episode += 1
        if trainer._is_ready_update():
            before = _policy_parameters(trainer)
            if trainer._update_policy():
                return UpdateRun(steps, True, before, _policy_parameters(trainer))
