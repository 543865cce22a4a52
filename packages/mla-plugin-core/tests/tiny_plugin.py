"""Tiny trainer plugins built only on mla_plugin_core's public API: ``TinyTrainer`` (PPO's
maths, our on-policy base) and ``RecordingTrainer`` (our off-policy base; it learns nothing
and records what it is given).

``tiny_ppo`` is registered in tests through a real ``mlagents.trainer_type`` entry point (a dist-info
folder on the path), exactly as an installed distribution would be.
"""

import attr
import numpy as np
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.ppo.optimizer_torch import TorchPPOOptimizer
from mlagents.trainers.settings import ScheduleType
from mlagents.trainers.torch_entities.networks import SimpleActor

from mla_plugin_core.host.entry_point import make_entry_point
from mla_plugin_core.settings import OnPolicySettings, hyperparameter
from mla_plugin_core.trainers.off_policy import (
    OffPolicyOptimizer,
    OffPolicyPluginTrainer,
    ReplayUpdate,
)
from mla_plugin_core.trainers.on_policy import OnPolicyPluginTrainer


@attr.s(auto_attribs=True)
class TinySettings(OnPolicySettings):
    beta: float = hyperparameter(5.0e-3, ge=0.0)
    epsilon: float = hyperparameter(0.2, gt=0.0, lt=1.0)
    lambd: float = hyperparameter(0.95, ge=0.0, le=1.0)
    shared_critic: bool = False
    beta_schedule: ScheduleType = ScheduleType.LINEAR
    epsilon_schedule: ScheduleType = ScheduleType.LINEAR


class TinyTrainer(OnPolicyPluginTrainer):
    @staticmethod
    def get_trainer_name() -> str:
        return "tiny_ppo"

    def create_policy(self, parsed_behavior_id, behavior_spec):
        return TorchPolicy(
            self.seed,
            behavior_spec,
            self.trainer_settings.network_settings,
            SimpleActor,
            {"conditional_sigma": False, "tanh_squash": False},
        )

    def create_optimizer(self):
        return TorchPPOOptimizer(self.policy, self.trainer_settings)


get_type_and_setting = make_entry_point(TinyTrainer, TinySettings)


class RecordingOptimizer(OffPolicyOptimizer):
    """Learns nothing; remembers the samples it was given and reports constant TD errors.
    Reward signals do learn; the batches they are given are remembered too."""

    def __init__(self, policy, trainer_settings):
        super().__init__(policy, trainer_settings)
        self.samples = []
        self.reward_signal_batches = []

    def update_from_replay(self, sample):
        self.samples.append(sample)
        return ReplayUpdate({"Losses/Fake": 1.0}, td_errors=np.full(len(sample.dones), 2.0))

    def update_reward_signals(self, batch):
        self.reward_signal_batches.append(batch)
        return super().update_reward_signals(batch)

    def get_modules(self):
        return {}


class RecordingTrainer(OffPolicyPluginTrainer):
    @staticmethod
    def get_trainer_name():
        return "recording"

    def create_policy(self, parsed_behavior_id, behavior_spec):
        return TorchPolicy(
            self.seed, behavior_spec, self.trainer_settings.network_settings, SimpleActor, {}
        )

    def create_optimizer(self):
        return RecordingOptimizer(self.policy, self.trainer_settings)
