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
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import TrainerSettings
from mlagents.trainers.torch_entities.utils import ModelUtils

from mla_a2c.settings import A2CSettings
from mla_plugin_core.activation import set_activation
from mla_plugin_core.optimizer import OnPolicyOptimizer

# Where the linear beta schedule ends at max_steps (that of mlagents' PPO): a small beta
# keeps some exploration. (The learning rate's floor is core's FINAL_LEARNING_RATE.)
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


class A2COptimizer(OnPolicyOptimizer):
    """Owns the critic and the torch optimizer; ``update`` is one A2C gradient step.

    Checkpoints hold ``Optimizer:optimizer`` (RMSprop or Adam), ``Optimizer:critic`` and
    the reward providers (checkpoints of 0.1.x named the optimizer
    ``Optimizer:a2c_optimizer``; they still load).
    """

    def __init__(self, policy: TorchPolicy, trainer_settings: TrainerSettings):
        hyperparameters = cast(A2CSettings, trainer_settings.hyperparameters)
        super().__init__(policy, trainer_settings, shared_critic=hyperparameters.shared_critic)
        self.hyperparameters = hyperparameters
        if not hyperparameters.shared_critic:
            set_activation(self.critic, hyperparameters.activation)
        self.params = self.trainable_parameters()
        self.optimizer = make_torch_optimizer(self.params, hyperparameters)

    def update(self, batch: AgentBuffer, num_sequences: int) -> dict[str, float]:
        """One gradient step of A2C on a minibatch.

        :param batch: B experiences with observations, actions, action masks, advantages
            and, per reward signal, returns (:class:`~mla_plugin_core.batches.Minibatch`).
        :param num_sequences: B / sequence_length (recurrent policies).
        :return: stats for mlagents' reporter.
        """
        hp = self.hyperparameters
        beta = self.scheduled(hp.beta, hp.beta_schedule, FINAL_BETA) if hp.beta > 0 else 0.0
        mb = self.minibatch(batch)
        log_probs, entropy = self.policy_stats(mb)
        loss = a2c_loss(
            log_probs,
            entropy,
            mb.advantages,
            self.values(mb),
            mb.returns,
            mb.loss_masks,
            hp.value_loss_coef,
            beta,
        )
        grad_norm = self.apply_gradients(loss.total, self.params, hp.max_grad_norm)
        return {
            "Losses/Policy Loss": loss.policy_loss.item(),
            "Losses/Value Loss": loss.value_loss.item(),
            "Losses/Entropy": loss.entropy.item(),
            "Losses/Gradient Norm": float(grad_norm or 0.0),
            "Policy/Learning Rate": self.learning_rate(),
            "Policy/Beta": beta,
        }
