"""The A2C loss and gradient step.

Advantage Actor-Critic (Mnih et al. 2016, https://arxiv.org/abs/1602.01783), on a
minibatch of B experiences whose advantages and returns the trainer computed with GAE
(Schulman et al. 2016, https://arxiv.org/abs/1506.02438) per reward signal::

    policy_loss  = -mean_t( A_t * log pi(a_t | s_t) )              # advantages held fixed
    value_loss   = mean_signals( mean_t( (G_t - V(s_t))^2 ) )      # one value head per signal
    entropy      = mean_t( H[pi(. | s_t)] )
    loss         = policy_loss + value_loss_coef * value_loss - beta * entropy

then one optimizer step on the gradient clipped to ``max_grad_norm``. The networks are
mlagents' own (``SimpleActor`` or ``SharedActorCritic``, ``ValueNetwork``), so observation
encoders, normalisation, action masks, memory and ONNX export are those of the built-in
trainers.
"""

from typing import NamedTuple, cast

import torch
from mlagents.trainers.buffer import AgentBuffer, BufferKey, RewardSignalUtil
from mlagents.trainers.optimizer.torch_optimizer import TorchOptimizer
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import TrainerSettings
from mlagents.trainers.torch_entities.agent_action import AgentAction
from mlagents.trainers.torch_entities.networks import ValueNetwork
from mlagents.trainers.torch_entities.utils import ModelUtils
from mlagents.trainers.trajectory import ObsUtil

from mla_a2c.settings import A2CSettings
from mla_plugin_core.activation import set_activation
from mla_plugin_core.schedules import scheduled_value

# Values the linear schedules reach at max_steps (those of mlagents' PPO): a learning rate
# of exactly 0 would make the last updates no-ops, and a small beta keeps some exploration.
FINAL_LEARNING_RATE = 1.0e-10
FINAL_BETA = 1.0e-5


class A2CLoss(NamedTuple):
    """The terms of the A2C loss (scalar tensors; ``total`` carries the gradient)."""

    total: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor


def a2c_loss(
    log_probs: torch.Tensor,
    entropy: torch.Tensor,
    advantages: torch.Tensor,
    values: dict[str, torch.Tensor],
    returns: dict[str, torch.Tensor],
    loss_masks: torch.Tensor,
    value_loss_coef: float,
    beta: float,
) -> A2CLoss:
    """The A2C loss of a minibatch of B experiences.

    :param log_probs: float [B, n_action_dims], log-probability of each continuous action
        dimension and each discrete branch of the action taken. The dimensions are
        independent, so ``log pi(a|s)`` is their sum.
    :param entropy: float [B], entropy of the policy at each state (summed over dimensions).
    :param advantages: float [B], the advantage estimates A_t (no gradient flows into them).
    :param values: signal name -> float [B], the critic's V(s_t) for that reward signal.
    :param returns: signal name -> float [B], the value targets G_t (GAE advantage + V_old).
    :param loss_masks: bool [B], False for padding added to recurrent sequences.
    :param value_loss_coef: weight of the value loss.
    :param beta: weight of the entropy bonus.
    """
    advantages = advantages.detach()
    log_prob = log_probs.sum(dim=-1)
    policy_loss = -ModelUtils.masked_mean(advantages * log_prob, loss_masks)
    value_losses = [
        ModelUtils.masked_mean((returns[name].detach() - values[name]) ** 2, loss_masks)
        for name in values
    ]
    value_loss = torch.stack(value_losses).mean()
    mean_entropy = ModelUtils.masked_mean(entropy, loss_masks)
    total = policy_loss + value_loss_coef * value_loss - beta * mean_entropy
    return A2CLoss(total, policy_loss, value_loss, mean_entropy)


def make_torch_optimizer(
    params: list[torch.nn.Parameter], hyperparameters: A2CSettings
) -> torch.optim.Optimizer:
    """The torch optimizer named by ``hyperparameters.optimizer`` (``rmsprop`` or ``adam``)."""
    if hyperparameters.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=hyperparameters.learning_rate, eps=hyperparameters.optimizer_eps
        )
    return torch.optim.RMSprop(
        params,
        lr=hyperparameters.learning_rate,
        alpha=hyperparameters.rmsprop_alpha,
        eps=hyperparameters.optimizer_eps,
    )


class A2COptimizer(TorchOptimizer):
    """Owns the critic and the torch optimizer; ``update`` is one A2C gradient step."""

    def __init__(self, policy: TorchPolicy, trainer_settings: TrainerSettings):
        super().__init__(policy, trainer_settings)
        self.hyperparameters = cast(A2CSettings, trainer_settings.hyperparameters)
        stream_names = [signal.value for signal in trainer_settings.reward_signals]
        params = list(policy.actor.parameters())
        if self.hyperparameters.shared_critic:
            self._critic = policy.actor
        else:
            self._critic = ValueNetwork(
                stream_names,
                policy.behavior_spec.observation_specs,
                network_settings=trainer_settings.network_settings,
            )
            set_activation(self._critic, self.hyperparameters.activation)
            params += list(self._critic.parameters())
        self.params = params
        self.optimizer = make_torch_optimizer(params, self.hyperparameters)
        self.stream_names = list(self.reward_signals.keys())

    @property
    def critic(self):
        return self._critic

    def scheduled(self, initial: float, schedule, final: float) -> float:
        """A hyperparameter's value at the policy's current step under its schedule."""
        return scheduled_value(
            schedule,
            initial,
            final,
            self.policy.get_current_step(),
            self.trainer_settings.max_steps,
        )

    def _memories(self, batch: AgentBuffer, key: BufferKey) -> torch.Tensor | None:
        """The initial memory of each sequence of the batch, [1, n_sequences, memory_size]."""
        stored = batch[key]
        first_of_sequences = [
            ModelUtils.list_to_tensor(stored[i])
            for i in range(0, len(stored), self.policy.sequence_length)
        ]
        if not first_of_sequences:
            return None
        return torch.stack(first_of_sequences).unsqueeze(0)

    def update(self, batch: AgentBuffer, num_sequences: int) -> dict[str, float]:
        """One gradient step of A2C on a minibatch.

        :param batch: B experiences with observations, actions, action masks, advantages
            (``BufferKey.ADVANTAGES``) and, per reward signal, returns.
        :param num_sequences: B / sequence_length (recurrent policies).
        :return: stats for mlagents' reporter.
        """
        hp = self.hyperparameters
        step_size = self.scheduled(hp.learning_rate, hp.learning_rate_schedule, FINAL_LEARNING_RATE)
        beta = self.scheduled(hp.beta, hp.beta_schedule, FINAL_BETA) if hp.beta > 0 else 0.0

        n_obs = len(self.policy.behavior_spec.observation_specs)
        b_obs = [ModelUtils.list_to_tensor(obs) for obs in ObsUtil.from_buffer(batch, n_obs)]
        b_actions = AgentAction.from_buffer(batch)
        b_action_masks = ModelUtils.list_to_tensor(batch[BufferKey.ACTION_MASK])
        b_advantages = ModelUtils.list_to_tensor(batch[BufferKey.ADVANTAGES])
        b_returns = {
            name: ModelUtils.list_to_tensor(batch[RewardSignalUtil.returns_key(name)])
            for name in self.reward_signals
        }
        b_loss_masks = ModelUtils.list_to_tensor(batch[BufferKey.MASKS], dtype=torch.bool)

        stats = self.policy.actor.get_stats(
            b_obs,
            b_actions,
            masks=b_action_masks,
            memories=self._memories(batch, BufferKey.MEMORY),
            sequence_length=self.policy.sequence_length,
        )
        b_values, _ = self.critic.critic_pass(
            b_obs,
            memories=self._memories(batch, BufferKey.CRITIC_MEMORY),
            sequence_length=self.policy.sequence_length,
        )
        loss = a2c_loss(
            stats["log_probs"].flatten(),
            stats["entropy"],
            b_advantages,
            b_values,
            b_returns,
            b_loss_masks,
            hp.value_loss_coef,
            beta,
        )

        ModelUtils.update_learning_rate(self.optimizer, step_size)
        self.optimizer.zero_grad()
        loss.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, hp.max_grad_norm)
        self.optimizer.step()
        return {
            "Losses/Policy Loss": loss.policy_loss.item(),
            "Losses/Value Loss": loss.value_loss.item(),
            "Losses/Entropy": loss.entropy.item(),
            "Losses/Gradient Norm": grad_norm.item(),
            "Policy/Learning Rate": step_size,
            "Policy/Beta": beta,
        }

    def get_modules(self) -> dict[str, object]:
        """What a checkpoint saves and ``--resume`` restores, besides the policy."""
        modules: dict[str, object] = {
            "Optimizer:a2c_optimizer": self.optimizer,
            "Optimizer:critic": self._critic,
        }
        for reward_provider in self.reward_signals.values():
            modules.update(reward_provider.get_modules())
        return modules
