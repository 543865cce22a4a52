"""The A2C loss and gradient step.

Advantage Actor-Critic (Mnih et al. 2016, https://arxiv.org/abs/1602.01783), on a
minibatch of B experiences whose advantages and returns the trainer computed with GAE
(Schulman et al. 2016, https://arxiv.org/abs/1506.02438) per reward signal::

    policy_loss  = -mean_t( A_t * log pi(a_t | s_t) )              # advantages held fixed
    value_loss   = mean_signals( mean_t( (G_t - V(s_t))^2 ) )      # one value head per signal
    entropy      = mean_t( H[pi(. | s_t)] )
    bound_loss   = mean_t( sum_dims max(|mu(s_t)| - 3, 0)^2 )      # Gaussian means mu
    loss         = policy_loss + value_loss_coef * value_loss - beta * entropy
                   + action_bound_coef * bound_loss

then one optimizer step on the gradient clipped to ``max_grad_norm``. The bound loss keeps
continuous means inside the [-3, 3] mlagents clips actions to (:func:`mean_bound_loss`).
Besides the loss terms, each update reports what explains an unstable run
(:func:`explained_variance`, :func:`gaussian_stats`; the base trainer adds the advantages'
raw scale and the update's KL). The networks are mlagents' own (``SimpleActor`` or
``SharedActorCritic``, ``ValueNetwork``), so observation encoders, normalisation, action
masks, memory and ONNX export are those of the built-in trainers.
"""

from typing import NamedTuple, cast

import torch
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import TrainerSettings
from mlagents.trainers.torch_entities.utils import ModelUtils

from mla_a2c.settings import A2CSettings
from mla_plugin_core.networks.activation import set_activation
from mla_plugin_core.replay.batches import Minibatch
from mla_plugin_core.trainers.optimizer import OnPolicyOptimizer
from mla_plugin_core.trainers.schedules import ScheduledValue

# Where the linear beta schedule ends at max_steps (that of mlagents' PPO): a small beta
# keeps some exploration. (The learning rate's floor is core's FINAL_LEARNING_RATE.)
FINAL_BETA = 1.0e-5


class A2CLoss(NamedTuple):
    """The terms of the A2C loss (scalar tensors; ``total`` carries the gradient)."""

    total: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    entropy: torch.Tensor
    bound_loss: torch.Tensor = torch.zeros(())


def a2c_loss(
    log_probs: torch.Tensor,
    entropy: torch.Tensor,
    advantages: torch.Tensor,
    values: dict[str, torch.Tensor],
    returns: dict[str, torch.Tensor],
    loss_masks: torch.Tensor,
    value_loss_coef: float,
    beta: float,
    bound_loss: torch.Tensor | None = None,
    action_bound_coef: float = 0.0,
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
    :param bound_loss: scalar, :func:`mean_bound_loss` of the Gaussian's means (continuous
        actions); ``None``: no such term.
    :param action_bound_coef: its weight.
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
    if bound_loss is None:
        bound_loss = torch.zeros(())
    total = total + action_bound_coef * bound_loss
    return A2CLoss(total, policy_loss, value_loss, mean_entropy, bound_loss)


def explained_variance(
    value_estimates: dict[str, torch.Tensor], returns: dict[str, torch.Tensor]
) -> float | None:
    """``1 - Var(G - V) / Var(G)`` of the critic's estimates ``V`` (as stored when the
    trajectory was processed) against the value targets ``G``, over all signals: 1 for a
    perfect critic, 0 for one no better than a constant, negative for a worse one; ``None``
    when the targets do not vary (undefined)."""
    values = torch.cat([value_estimates[name] for name in returns])
    targets = torch.cat([returns[name] for name in returns])
    variance = torch.var(targets) if len(targets) > 1 else torch.zeros(())
    if not variance > 0:
        return None
    return float(1.0 - torch.var(targets - values) / variance)


#: mlagents clips a continuous action to [-ACTION_CLIP, ACTION_CLIP] and divides it by that
#: before the environment sees it (``ActionModel``, ``TorchPolicy``).
ACTION_CLIP = 3.0


def gaussian_means(policy: TorchPolicy, batch: Minibatch) -> tuple[torch.Tensor, torch.Tensor]:
    """The continuous Gaussian's means ``mu`` [B, c] (with gradient) and standard deviations
    [B, c] on ``batch``'s observations (rows of the recurrent padding dropped); empty [B, 0]
    without continuous actions."""
    actor = policy.actor
    distribution = actor.action_model._continuous_distribution
    if distribution is None:
        empty = torch.zeros(len(batch.loss_masks), 0)
        return empty, empty
    encoding, _ = actor.network_body(
        batch.obs, memories=batch.memories, sequence_length=policy.sequence_length
    )
    gaussian = distribution(encoding)
    mask = batch.loss_masks
    return gaussian.mean[mask], gaussian.std.expand_as(gaussian.mean)[mask]


def mean_bound_loss(mu: torch.Tensor) -> torch.Tensor:
    """``mean_t sum_dims max(|mu| - ACTION_CLIP, 0)^2``: zero while the Gaussian's means stay
    inside mlagents' action clip, a pull back towards it beyond (rl_games' bounds loss).

    Beyond the clip every sampled action is clipped to the same bound, so the policy
    gradient carries no signal that would bring the mean back: on 3DBall mean |mu| went from
    0.45 to 5.8 in 10k steps, then on to 267, and the run never recovered (README, "Why A2C
    collapsed on 3DBall").
    """
    if mu.numel() == 0:
        return torch.zeros(())
    return (torch.relu(mu.abs() - ACTION_CLIP) ** 2).sum(dim=-1).mean()


def gaussian_stats(mu: torch.Tensor, sigma: torch.Tensor) -> dict[str, float]:
    """TensorBoard stats of the Gaussian's means and standard deviations (empty without
    continuous actions): the mean sigma, the mean ``|mu|``, and the share of means beyond
    mlagents' action clip."""
    if mu.numel() == 0:
        return {}
    mu, sigma = mu.detach(), sigma.detach()
    return {
        "Policy/Sigma": float(sigma.mean()),
        "Policy/Mean |mu|": float(mu.abs().mean()),
        "Policy/Mu Beyond Clip": float((mu.abs() > ACTION_CLIP).float().mean()),
    }


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
            and, per reward signal, returns (:class:`~mla_plugin_core.replay.batches.Minibatch`).
        :param num_sequences: B / sequence_length (recurrent policies).
        :return: stats for mlagents' reporter.
        """
        hp = self.hyperparameters
        entropy_schedule = ScheduledValue(hp.beta_schedule, hp.beta, FINAL_BETA, self.max_steps)
        beta = entropy_schedule(self.current_step) if hp.beta > 0 else 0.0
        mb = self.minibatch(batch)
        log_probs, entropy = self.policy_stats(mb)
        mu, sigma = gaussian_means(self.policy, mb)
        loss = a2c_loss(
            log_probs,
            entropy,
            mb.advantages,
            self.values(mb),
            mb.returns,
            mb.loss_masks,
            hp.value_loss_coef,
            beta,
            mean_bound_loss(mu),
            hp.action_bound_coef,
        )
        diagnostics = gaussian_stats(mu, sigma)  # before the step, as the data was
        variance_explained = explained_variance(mb.value_estimates, mb.returns)
        if variance_explained is not None:
            diagnostics["Policy/Explained Variance"] = variance_explained
        grad_norm = self.apply_gradients(loss.total, self.params, hp.max_grad_norm)
        return {
            "Losses/Policy Loss": loss.policy_loss.item(),
            "Losses/Value Loss": loss.value_loss.item(),
            "Losses/Entropy": loss.entropy.item(),
            "Losses/Bound Loss": loss.bound_loss.item(),
            # the global norm before clipping: how far above max_grad_norm the steps are
            "Losses/Gradient Norm": float(grad_norm or 0.0),
            "Policy/Learning Rate": self.learning_rate(),
            "Policy/Beta": beta,
            **diagnostics,
        }
