"""Small builders for unit tests: behavior specs, A2C trainers and hand-made trajectories.

mlagents' wheels do not ship ``mlagents.trainers.tests`` (its mock brains), so these are
written here, on the public classes only.
"""

from __future__ import annotations

import numpy as np
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

from mla_a2c.settings import A2CSettings
from mla_a2c.trainer import A2CTrainer
from mla_plugin_core.testing import add_policy_like_mlagents

OBS_SIZE = 4


def behavior_spec(action_spec: ActionSpec, obs_size: int = OBS_SIZE) -> BehaviorSpec:
    """One vector observation of ``obs_size`` floats and the given actions."""
    observation = ObservationSpec(
        shape=(obs_size,),
        dimension_property=(DimensionProperty.NONE,),
        observation_type=ObservationType.DEFAULT,
        name="vector",
    )
    return BehaviorSpec(observation_specs=[observation], action_spec=action_spec)


def make_trainer(
    spec: BehaviorSpec,
    tmp_path,
    memory: NetworkSettings.MemorySettings | None = None,
    extra_signals: dict[RewardSignalType, RewardSignalSettings] | None = None,
    normalize: bool = False,
    hidden_units: int = 16,
    num_layers: int = 1,
    load: bool = False,
    **hyperparameters,
) -> A2CTrainer:
    """An A2C trainer with its policy and optimizer, checkpoints under ``tmp_path``
    (``load``: resumed from them, as ``--resume``).

    As in mlagents' TrainerController, the end-of-run ``save_model`` follows whatever
    happens in ``add_policy`` (its ``finally``).
    """
    signals = {RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=0.9, strength=1.0)}
    signals.update(extra_signals or {})
    settings = TrainerSettings(
        trainer_type="a2c",
        hyperparameters=A2CSettings(**hyperparameters),
        network_settings=NetworkSettings(
            hidden_units=hidden_units, num_layers=num_layers, normalize=normalize, memory=memory
        ),
        reward_signals=signals,
        max_steps=10_000,
    )
    trainer = A2CTrainer("Test", 100, settings, True, load, 1337, str(tmp_path))
    return add_policy_like_mlagents(trainer, spec)


def random_action(spec: ActionSpec, rng: np.random.Generator) -> ActionTuple:
    """One agent's action (1-D arrays, as mlagents stores them in an ``AgentExperience``)."""
    continuous = rng.uniform(-1, 1, spec.continuous_size).astype(np.float32)
    discrete = np.array([rng.integers(n) for n in spec.discrete_branches], dtype=np.int32)
    return ActionTuple(continuous=continuous, discrete=discrete)


def make_trajectory(
    spec: BehaviorSpec,
    rewards: list[float],
    done: bool,
    interrupted: bool = False,
    memory_size: int = 0,
    seed: int = 0,
) -> Trajectory:
    """A trajectory of ``len(rewards)`` steps with random observations and actions.

    ``done`` marks the last step as the end of an episode; ``interrupted`` makes that end
    a max-step interruption (the value must then be bootstrapped, as for a cut).
    """
    rng = np.random.default_rng(seed)
    action_spec = spec.action_spec
    obs_size = spec.observation_specs[0].shape[0]
    # mlagents stores one array per discrete branch (True = forbidden), None without branches
    masks = [np.zeros(n, dtype=bool) for n in action_spec.discrete_branches] or None
    steps = []
    for t, reward in enumerate(rewards):
        last = t == len(rewards) - 1
        action = random_action(action_spec, rng)
        steps.append(
            AgentExperience(
                obs=[rng.normal(size=obs_size).astype(np.float32)],
                reward=float(reward),
                done=done and last,
                action=action,
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
        next_obs=[rng.normal(size=obs_size).astype(np.float32)],
        next_group_obs=[],
        agent_id="agent-0",
        behavior_id="Test?team=0",
    )
