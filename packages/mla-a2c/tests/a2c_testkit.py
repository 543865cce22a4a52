"""A2C trainers for unit tests, on mla-plugin-core's builders (``mla_plugin_core.testing``)."""

from __future__ import annotations

from mlagents.trainers.settings import NetworkSettings, RewardSignalSettings, RewardSignalType
from mlagents_envs.base_env import BehaviorSpec

from mla_a2c.settings import A2CSettings
from mla_a2c.trainer import A2CTrainer
from mla_plugin_core.testing import builders

#: Size of the vector observation of ``builders.vector_behavior_spec`` by default.
OBS_SIZE = 4


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
    (``load``: resumed from them, as ``--resume``); extrinsic gamma 0.9."""
    settings = builders.trainer_settings(
        "a2c",
        A2CSettings(**hyperparameters),
        extra_signals=extra_signals,
        hidden_units=hidden_units,
        num_layers=num_layers,
        normalize=normalize,
        memory=memory,
    )
    return builders.make_trainer(A2CTrainer, settings, spec, tmp_path, load=load)
