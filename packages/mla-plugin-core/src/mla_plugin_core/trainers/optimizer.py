"""Base optimizers: what every plugin optimizer does besides its loss.

- :class:`PluginOptimizer`: the torch optimizer (``self.optimizer``), the checkpointed
  modules (always with the reward providers' networks), the learning-rate schedule and the
  gradient step;
- :class:`OnPolicyOptimizer`: adds the critic (mlagents' ``ValueNetwork``, or the actor's
  own value heads) and the :class:`~mla_plugin_core.replay.batches.Minibatch` of an update.

The off-policy base, :class:`~mla_plugin_core.trainers.off_policy.OffPolicyOptimizer`, derives from
:class:`PluginOptimizer` too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import torch
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.optimizer.torch_optimizer import TorchOptimizer
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import TrainerSettings
from mlagents.trainers.torch_entities.networks import ValueNetwork

from mla_plugin_core.replay.batches import Minibatch
from mla_plugin_core.trainers.schedules import FINAL_LEARNING_RATE, ScheduledValue

#: The checkpoint name of ``PluginOptimizer.optimizer`` (the torch optimizer).
OPTIMIZER_MODULE = "Optimizer:optimizer"


class PluginOptimizer(TorchOptimizer):
    """A ``TorchOptimizer`` with one torch optimizer and complete checkpoints.

    A subclass creates its networks, then ``self.optimizer`` (a ``torch.optim.Optimizer``
    over what it trains), and lists its other checkpointed modules in
    :meth:`checkpointed_modules`. ``get_modules()`` (what checkpoints save and ``--resume``
    restores) is then ``self.optimizer`` as ``"Optimizer:optimizer"``, those modules, and
    every reward provider's own networks (curiosity, GAIL, RND).
    """

    #: The torch optimizer, set by the subclass.
    optimizer: torch.optim.Optimizer

    def __init__(self, policy: TorchPolicy, trainer_settings: TrainerSettings):
        super().__init__(policy, trainer_settings)
        self.max_steps = int(trainer_settings.max_steps)

    def checkpointed_modules(self) -> dict[str, Any]:
        """The subclass's modules (``nn.Module``, or anything with ``state_dict``) to
        checkpoint besides the policy and ``self.optimizer``, by name
        (``"Optimizer:<name>"``); none by default."""
        return {}

    def get_modules(self) -> dict[str, Any]:
        """What a checkpoint saves besides the policy."""
        modules: dict[str, Any] = {OPTIMIZER_MODULE: self.optimizer}
        modules.update(self.checkpointed_modules())
        for provider in self.reward_signals.values():
            modules.update(provider.get_modules())
        return modules

    def scheduled(self, initial: float, schedule: Any, final: float) -> float:
        """Deprecated since mla-plugin-core 0.2, for the one way to schedule a value:
        ``ScheduledValue(schedule, initial, final, self.max_steps)(self.current_step)``."""
        warnings.warn(
            "PluginOptimizer.scheduled() is deprecated since mla-plugin-core 0.2: use "
            "ScheduledValue(schedule, initial, final, self.max_steps)(self.current_step)",
            DeprecationWarning,
            stacklevel=2,
        )
        return ScheduledValue(schedule, initial, final, self.max_steps)(self.current_step)

    @property
    def current_step(self) -> int:
        """The policy's environment step, the clock of every schedule."""
        return int(self.policy.get_current_step())

    def learning_rate(self) -> float:
        """``hyperparameters.learning_rate`` under ``learning_rate_schedule`` now: a linear
        schedule ends at :data:`~mla_plugin_core.trainers.schedules.FINAL_LEARNING_RATE` at
        ``learning_rate_decay_steps`` if the settings have it, else at ``max_steps``."""
        hp = self.trainer_settings.hyperparameters
        decay_steps = getattr(hp, "learning_rate_decay_steps", None) or self.max_steps
        schedule = ScheduledValue(
            hp.learning_rate_schedule, hp.learning_rate, FINAL_LEARNING_RATE, decay_steps
        )
        return schedule(self.current_step)

    def apply_gradients(
        self,
        loss: torch.Tensor,
        parameters: Iterable[torch.nn.Parameter],
        max_grad_norm: float | None = None,
        foreach: bool | None = None,
    ) -> float | None:
        """One step of ``self.optimizer`` on ``loss`` at :meth:`learning_rate`.

        :param parameters: what the optimizer trains (their gradients are clipped).
        :param max_grad_norm: clip the gradients' global norm to this; ``None``: no clip.
        :param foreach: torch's ``foreach`` for the clipping (``None``: torch's choice).
        :return: the gradient norm before clipping, ``None`` without clipping.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.optimizer.zero_grad()
        loss.backward()
        grad_norm = None
        if max_grad_norm is not None:
            grad_norm = float(
                torch.nn.utils.clip_grad_norm_(list(parameters), max_grad_norm, foreach=foreach)
            )
        self.optimizer.step()
        return grad_norm


class OnPolicyOptimizer(PluginOptimizer):
    """A :class:`PluginOptimizer` with a critic, for
    :class:`~mla_plugin_core.trainers.on_policy.OnPolicyPluginTrainer`.

    :param shared_critic: the policy's actor has the value heads (mlagents'
        ``SharedActorCritic``); otherwise a ``ValueNetwork`` with one head per reward
        signal is created on the behavior's observations and ``network_settings``.

    ``self.critic`` is checkpointed as ``"Optimizer:critic"``.
    """

    def __init__(
        self,
        policy: TorchPolicy,
        trainer_settings: TrainerSettings,
        shared_critic: bool = False,
    ):
        super().__init__(policy, trainer_settings)
        self.shared_critic = shared_critic
        self._critic: Any = policy.actor
        if not shared_critic:
            self._critic = ValueNetwork(
                [signal.value for signal in trainer_settings.reward_signals],
                policy.behavior_spec.observation_specs,
                network_settings=trainer_settings.network_settings,
            )

    @property
    def critic(self) -> Any:
        """The value network: mlagents' ``ValueNetwork`` with one head per reward signal, or
        the actor itself when the policy shares it; both answer
        ``critic_pass(obs, memories)`` with ``({signal: values [B]}, memories)``."""
        return self._critic

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The actor's parameters, then the critic's unless it is the actor."""
        params = list(self.policy.actor.parameters())
        if not self.shared_critic:
            params += list(self._critic.parameters())
        return params

    def checkpointed_modules(self) -> dict[str, Any]:
        return {"Optimizer:critic": self._critic}

    def minibatch(self, batch: AgentBuffer) -> Minibatch:
        """The tensors of a minibatch the trainer passes to ``update``."""
        return Minibatch.from_buffer(
            batch,
            len(self.policy.behavior_spec.observation_specs),
            list(self.reward_signals),
            self.policy.sequence_length,
        )

    def policy_stats(self, batch: Minibatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The policy's log-probabilities of the taken actions, float32 ``[B, n_dims]``
        (one column per continuous dimension and per discrete branch: sum them for
        ``log pi(a|s)``), and its entropy ``[B]`` (summed over dimensions)."""
        stats = self.policy.actor.get_stats(
            batch.obs,
            batch.actions,
            masks=batch.action_masks,
            memories=batch.memories,
            sequence_length=self.policy.sequence_length,
        )
        return stats["log_probs"].flatten(), stats["entropy"]

    def values(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        """The critic's ``V(s_t)`` per reward signal, float32 ``[B]`` each (with gradient)."""
        values, _ = self.critic.critic_pass(
            batch.obs,
            memories=batch.critic_memories,
            sequence_length=self.policy.sequence_length,
        )
        return values
