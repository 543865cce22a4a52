"""``trainer_type: a2c`` for ``mlagents-learn``: data flow and the plugin entry point.

The trajectory processing (reward signals, value bootstrap, GAE per signal) and the update
loop are those of :class:`~mla_plugin_core.trainers.on_policy.OnPolicyPluginTrainer`; this class
chooses the networks and the optimizer (:mod:`mla_a2c.optimizer`, the maths).
"""

from typing import Any, cast

from mlagents.torch_utils import torch
from mlagents.trainers.behavior_id_utils import BehaviorIdentifiers
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import TrainerSettings
from mlagents.trainers.torch_entities.networks import SharedActorCritic, SimpleActor
from mlagents_envs.base_env import BehaviorSpec

from mla_a2c.optimizer import A2COptimizer
from mla_a2c.settings import A2CSettings
from mla_plugin_core.host.entry_point import make_entry_point
from mla_plugin_core.networks.activation import set_activation
from mla_plugin_core.networks.normalization import update_normalization
from mla_plugin_core.trainers.on_policy import OnPolicyPluginTrainer

TRAINER_NAME = "a2c"


class A2CTrainer(OnPolicyPluginTrainer):
    """Synchronous Advantage Actor-Critic (A2C) with GAE, for every mlagents behavior kind:
    continuous (Gaussian) and discrete (masked, several branches) actions, recurrent
    networks (``network_settings.memory``), any mlagents reward signal."""

    def __init__(
        self,
        behavior_name: str,
        reward_buff_cap: int,
        trainer_settings: TrainerSettings,
        training: bool,
        load: bool,
        seed: int,
        artifact_path: str,
    ):
        """
        :param behavior_name: the behavior this trainer learns.
        :param reward_buff_cap: how many episode rewards to keep for curriculum decisions.
        :param trainer_settings: the behavior's YAML section, ``hyperparameters`` an
            :class:`A2CSettings`.
        :param training: False for inference-only runs.
        :param load: restore the last checkpoint (``--resume`` / ``--initialize-from``).
        :param seed: seed of the networks' initialisation.
        :param artifact_path: folder of this behavior's checkpoints.
        """
        super().__init__(
            behavior_name,
            reward_buff_cap,
            trainer_settings,
            training,
            load,
            seed,
            artifact_path,
        )
        self.hyperparameters: A2CSettings = cast(A2CSettings, trainer_settings.hyperparameters)
        self.policy: TorchPolicy = None  # type: ignore[assignment]
        self.optimizer: A2COptimizer = None  # type: ignore[assignment]

    @staticmethod
    def get_trainer_name() -> str:
        return TRAINER_NAME

    def create_policy(
        self, parsed_behavior_id: BehaviorIdentifiers, behavior_spec: BehaviorSpec
    ) -> TorchPolicy:
        """mlagents' ``SimpleActor`` (or ``SharedActorCritic`` with ``shared_critic``):
        a Gaussian without tanh squashing for continuous actions, one masked categorical
        per discrete branch; hidden layers use the ``activation`` hyperparameter."""
        actor_cls: type = SimpleActor
        actor_kwargs: dict[str, Any] = {
            "conditional_sigma": self.hyperparameters.conditional_sigma,
            "tanh_squash": False,
        }
        if self.hyperparameters.shared_critic:
            actor_cls = SharedActorCritic
            actor_kwargs["stream_names"] = [
                signal.value for signal in self.trainer_settings.reward_signals
            ]
        policy = TorchPolicy(
            self.seed,
            behavior_spec,
            self.trainer_settings.network_settings,
            actor_cls,
            actor_kwargs,
        )
        set_activation(policy.actor, self.hyperparameters.activation)
        set_log_sigma(policy, self.hyperparameters.log_sigma_init)
        return policy

    def create_optimizer(self) -> A2COptimizer:
        return A2COptimizer(self.policy, self.trainer_settings)

    def update_network_normalization(self, network: Any, buffer: AgentBuffer) -> None:
        """mlagents' running observation statistics; with ``stable_normalization`` the
        network is rescaled to compute the same function as before."""
        if self.hyperparameters.stable_normalization:
            update_normalization(network, buffer)
        else:
            super().update_network_normalization(network, buffer)


get_type_and_setting = make_entry_point(A2CTrainer, A2CSettings)


def set_log_sigma(policy: TorchPolicy, log_sigma: float) -> None:
    """Start the continuous Gaussian of ``policy`` at ``log(sigma) = log_sigma``: its
    state-independent parameter, or with ``conditional_sigma`` the bias of its output.
    No-op without continuous actions. A checkpoint loaded afterwards overrides it."""
    distribution = policy.actor.action_model._continuous_distribution
    if distribution is None:
        return
    with torch.no_grad():
        if isinstance(distribution.log_sigma, torch.nn.Parameter):
            distribution.log_sigma.fill_(log_sigma)
        else:
            distribution.log_sigma.bias.fill_(log_sigma)
