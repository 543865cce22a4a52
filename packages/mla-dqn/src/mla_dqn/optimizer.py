"""The maths of DQN: TD targets, losses and the gradient step on a replay sample.

For one sampled transition, reward signal ``s`` and action branch ``d`` (BDQ, Tavakoli et
al. 2018, https://arxiv.org/abs/1711.08946, with a shared target over branches)::

    a*_d        = argmax_a Q_d(next_obs, a)            over allowed a (next_action_masks)
                  online network (double DQN) or target network (plain DQN),
                  Q_d = sum_s Q_{s,d}: the joint return is the sum of the signals
    target_max  = mean_d Q^-_{s,d}(next_obs, a*_d)     target network, [B, S]
    td_target   = rewards[s] + discounts[s] * target_max * (1 - use_dones[s] * dones)
    td_error    = td_target - Q_{s,d}(obs, a_d)

``discounts[s] = gamma_s^K`` for the ``K <= n_step`` rewards summed in ``rewards[s]``
(core's n-step accumulator); ``dones`` is set only at real terminals, so an episode cut at
``max_step`` still bootstraps. ``use_dones[s]`` is 1 when signal ``s`` ends at a terminal
(extrinsic, GAIL) and 0 when its provider has ``ignore_done`` (curiosity, RND): an
intrinsic return keeps bootstrapping through a terminal, as in mlagents' SAC
(``use_dones_in_backup``) and PPO, and in mla-a2c. Averaging the branches' next values
into one target keeps every branch's estimate on the same return scale and lowers the
target's variance (BDQ's best variant); with one branch it is plain (double) DQN.

The loss is the Huber loss of ``td_error`` (Mnih et al. 2015), averaged over signals and
branches, weighted per transition by prioritized replay's importance weights; for expert
transitions the DQfD large-margin loss is added.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import TrainerSettings

from mla_dqn import recurrent
from mla_dqn.networks import QNetwork
from mla_dqn.settings import DQNSettings
from mla_plugin_core.networks.q_network import branch_masks, masked_q_values
from mla_plugin_core.networks.target_network import TargetUpdate, make_target
from mla_plugin_core.replay.batches import ReplayBatch
from mla_plugin_core.replay.step_replay import StepReplay
from mla_plugin_core.replay.transitions import ReplaySample, SequenceSample
from mla_plugin_core.trainers.off_policy import (
    OffPolicyOptimizer,
    ReplayUpdate,
    learning_rewards,
)


def taken_q(q_per_branch: list[torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
    """Q of the actions taken: ``[B, S, n_branches]``.

    :param q_per_branch: per branch ``[B, S, n_d]``.
    :param actions: long ``[B, n_branches]``.
    """
    taken = []
    for d, q in enumerate(q_per_branch):
        index = actions[:, d].view(-1, 1, 1).expand(-1, q.shape[1], 1)  # [B, S, 1]
        taken.append(q.gather(2, index).squeeze(2))  # [B, S]
    return torch.stack(taken, dim=2)


def next_actions(q_per_branch: list[torch.Tensor], masks: list[torch.Tensor]) -> torch.Tensor:
    """Per branch, the allowed action with the highest summed-over-signals Q:
    long ``[B, n_branches]``."""
    return torch.stack(
        [
            masked_q_values(q.sum(dim=1), mask).argmax(dim=1)
            for q, mask in zip(q_per_branch, masks, strict=True)
        ],
        dim=1,
    )


def td_targets(
    target_next_q: list[torch.Tensor],
    next_action_masks: list[torch.Tensor],
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    dones: torch.Tensor,
    online_next_q: list[torch.Tensor] | None = None,
    use_dones: torch.Tensor | None = None,
) -> torch.Tensor:
    """TD targets per reward signal, ``[B, S]``.

    :param target_next_q: the target network's Q at ``next_obs``, per branch ``[B, S, n_d]``.
    :param next_action_masks: per branch bool ``[B, n_d]``, True = allowed at ``next_obs``.
    :param rewards: n-step discounted reward sums ``[B, S]``.
    :param discounts: ``gamma_s^K`` ``[B, S]``.
    :param dones: ``[B]``, 1.0 where ``next_obs`` is terminal (not at max-step cuts).
    :param online_next_q: the online network's Q at ``next_obs`` (double DQN: it picks
        ``a*``); ``None`` for plain DQN (the target network picks).
    :param use_dones: ``[S]``, 1.0 where a terminal cuts signal ``s``'s bootstrap, 0.0 where
        it does not (the provider's ``ignore_done``); ``None``: every signal is cut.
    """
    chooser_q = target_next_q if online_next_q is None else online_next_q
    best = next_actions(chooser_q, next_action_masks)  # a*_d, [B, n_branches]
    target_max = taken_q(target_next_q, best).mean(dim=2)  # mean over branches, [B, S]
    if use_dones is None:
        use_dones = torch.ones(rewards.shape[1])
    not_done = 1.0 - dones.unsqueeze(1) * use_dones  # [B, S]
    return rewards + discounts * target_max * not_done


def large_margin_loss(
    q_per_branch: list[torch.Tensor],
    expert_actions: torch.Tensor,
    masks: list[torch.Tensor],
    margin: float,
) -> torch.Tensor:
    """DQfD's ``J_E = max_a [Q(s, a) + l(a_E, a)] - Q(s, a_E)`` per transition, averaged
    over branches: ``[B]``. ``Q`` sums the signals; the max is over allowed actions.

    :param expert_actions: long ``[B, n_branches]``.
    :param masks: per branch bool ``[B, n_d]``.
    :param margin: ``l(a_E, a)`` for every ``a != a_E``.
    """
    losses = []
    for d, (q, mask) in enumerate(zip(q_per_branch, masks, strict=True)):
        q_total = q.sum(dim=1)  # [B, n_d]
        a_expert = expert_actions[:, d : d + 1]  # [B, 1]
        l_margin = torch.full_like(q_total, margin).scatter(1, a_expert, 0.0)
        best = masked_q_values(q_total + l_margin, mask).max(dim=1).values
        losses.append(best - q_total.gather(1, a_expert).squeeze(1))
    return torch.stack(losses, dim=1).mean(dim=1)


class DQNOptimizer(OffPolicyOptimizer):
    """Online and target Q-networks, Adam, and one gradient step per replay sample.

    :param policy: the policy whose ``actor`` (a :class:`QNetwork`) is the online network.
    :param trainer_settings: the behavior's settings; ``hyperparameters`` a
        :class:`DQNSettings`.
    """

    def __init__(self, policy: TorchPolicy, trainer_settings: TrainerSettings):
        super().__init__(policy, trainer_settings)
        self.hyperparameters = cast(DQNSettings, trainer_settings.hyperparameters)
        self.q_network = cast(QNetwork, policy.actor)
        self.target_network = cast(QNetwork, make_target(self.q_network))
        self.signal_names = list(self.q_network.reward_signals)
        if sorted(self.signal_names) != sorted(self.reward_signals):
            raise ValueError(
                f"Q heads {self.signal_names} do not match reward signals "
                f"{list(self.reward_signals)}"
            )
        #: 1.0 per signal whose bootstrap a terminal cuts, 0.0 with ``ignore_done``, ``[S]``.
        self.use_dones = torch.tensor(
            [float(not self.reward_signals[s].ignore_done) for s in self.signal_names]
        )
        self._trained = [p for p in self.q_network.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            self._trained, lr=self.hyperparameters.learning_rate, foreach=True
        )
        #: Counts gradient steps (checkpointed) and updates the target network after each.
        self.updates = TargetUpdate(
            self.hyperparameters.target_update_interval, self.hyperparameters.tau
        )
        #: Expert transitions (DQfD); set by the trainer when ``demonstrations`` is given.
        self.expert_replay: StepReplay | None = None

    @property
    def critic(self) -> QNetwork:
        return self.q_network

    def checkpointed_modules(self) -> dict[str, object]:
        """Besides the policy, Adam (``Optimizer:optimizer``; ``Optimizer:adam`` in 0.1.x
        checkpoints, which still load) and the reward providers: the target network and the
        update count."""
        return {
            "Optimizer:target_network": self.target_network,
            "Optimizer:updates": self.updates,
        }

    # -- one gradient step ---------------------------------------------------------------

    def _tensors(self, sample: ReplaySample) -> ReplayBatch:
        """A replay sample as tensors, rewards and discounts ``[B, S]`` in Q-head order."""
        return self.replay_batch(sample, self.signal_names)

    def _online_q(self, batch: ReplayBatch) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Online Q at ``obs`` (with gradient) and, for double DQN, at ``next_obs``
        (detached), per branch ``[B, S, n_d]``; one network pass over both."""
        if not self.hyperparameters.double_dqn:
            return self.q_network.signal_q_values(batch.obs), None
        n = batch.rewards.shape[0]
        both = [torch.cat([o, o_next]) for o, o_next in zip(batch.obs, batch.next_obs, strict=True)]
        q_both = self.q_network.signal_q_values(both)
        return [q[:n] for q in q_both], [q[n:].detach() for q in q_both]

    def td_target(
        self, batch: ReplayBatch, online_next_q: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """TD targets ``[B, S]`` of a batch from :meth:`_tensors` (no gradient).

        :param online_next_q: the online Q at ``next_obs`` if already computed (double DQN).
        """
        with torch.no_grad():
            if self.hyperparameters.double_dqn and online_next_q is None:
                online_next_q = self.q_network.signal_q_values(batch.next_obs)
            target_next_q = self.target_network.signal_q_values(batch.next_obs)
            n = batch.rewards.shape[0]
            next_masks = branch_masks(batch.next_action_masks, self.q_network.branches, n)
            return td_targets(
                target_next_q,
                next_masks,
                batch.rewards,
                batch.discounts,
                batch.dones,
                online_next_q if self.hyperparameters.double_dqn else None,
                self.use_dones,
            )

    def _td_loss(self, batch: ReplayBatch) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Per-transition Huber TD loss ``[B]``, TD errors ``[B]`` and the online Q-values
        at ``obs`` (per branch ``[B, S, n_d]``)."""
        q_per_branch, online_next_q = self._online_q(batch)
        td_target = self.td_target(batch, online_next_q).unsqueeze(2)  # [B, S, 1]
        q_taken = taken_q(q_per_branch, batch.discrete_actions)  # [B, S, n_branches]
        loss = F.smooth_l1_loss(q_taken, td_target.expand_as(q_taken), reduction="none")
        # Priority: |error| of the summed return, averaged over branches.
        td_error = (td_target - q_taken).detach().sum(dim=1).abs().mean(dim=1)
        return loss.mean(dim=(1, 2)), td_error, q_per_branch

    def update_from_replay(self, sample: ReplaySample | SequenceSample) -> ReplayUpdate:
        """One gradient step on ``sample`` (plus an expert minibatch with demonstrations);
        on sequences with a recurrent network (R2D2, :meth:`update_from_sequences`).

        :return: stats for TensorBoard and TD errors ``[B]`` of the agent's transitions.
        """
        if isinstance(sample, SequenceSample):
            return self.update_from_sequences(sample)
        hp = self.hyperparameters
        # The target network sees observations exactly as the online network does.
        self.target_network.copy_normalization(self.q_network)
        batch = self._tensors(sample)
        td_loss, td_errors, q_per_branch = self._td_loss(batch)
        loss = (batch.weights * td_loss).mean()
        stats = {"Losses/Q Loss": td_loss.mean().item()}
        # (a watched folder's expert replay is empty until a first episode is streamed)
        if (
            self.expert_replay is not None
            and hp.demonstrations is not None
            and len(self.expert_replay) > 0
        ):
            expert_loss, expert_stats = self.expert_loss(hp.demonstrations.batch_size)
            # Weighted by the share of expert rows in the combined minibatch.
            share = hp.demonstrations.batch_size / (hp.demonstrations.batch_size + len(td_loss))
            loss = (1.0 - share) * loss + share * expert_loss
            stats.update(expert_stats)
        self._step(loss)
        q_mean = torch.stack([q.sum(dim=1).mean() for q in q_per_branch]).mean()
        stats["Policy/Q Mean"] = q_mean.item()
        stats["Policy/Learning Rate"] = self.optimizer.param_groups[0]["lr"]
        return ReplayUpdate(stats, td_errors.numpy())

    def update_from_sequences(self, sample: SequenceSample) -> ReplayUpdate:
        """One R2D2 gradient step on ``B`` sequences (see :mod:`mla_dqn.recurrent`).

        :return: stats and each sequence's new priority ``[B]`` (as its "TD error").
        """
        hp = self.hyperparameters
        self.target_network.copy_normalization(self.q_network)
        batch = recurrent.to_tensors(sample, self.signal_names)
        burn_in, length = hp.burn_in, batch.valid.shape[1]
        gammas = torch.tensor([self.reward_signals[s].gamma for s in self.signal_names])
        k, returns, discounts = recurrent.n_step_windows(
            batch.valid, batch.dones, batch.rewards, gammas, hp.n_step
        )
        online = recurrent.unroll(self.q_network, batch, burn_in)  # [B, T + 1, S, n_d]
        with torch.no_grad():
            target = recurrent.unroll(self.target_network, batch, burn_in)
        # learning steps t = burn_in .. L - 1; they bootstrap from u_{t+K}
        k = k[:, burn_in:]
        boot = torch.arange(length - burn_in).unsqueeze(0) + k  # in the unroll, [B, T]
        last = boot + burn_in - 1  # step t + K - 1 in the sequence
        learning = batch.valid[:, burn_in:]
        rows = int(learning.numel())

        def flat(x: torch.Tensor) -> torch.Tensor:  # [B, T, ...] -> [B * T, ...]
            return x.reshape(rows, *x.shape[2:])

        scale = recurrent.unrescale if hp.value_rescaling else (lambda x: x)
        with torch.no_grad():
            td_target = td_targets(
                [flat(scale(recurrent.at_steps(q, boot))) for q in target],
                branch_masks(
                    flat(recurrent.at_steps(batch.next_masks, last)), self.q_network.branches, rows
                ),
                flat(returns[:, burn_in:]),
                flat(discounts[:, burn_in:]),
                flat(recurrent.at_steps(batch.dones, last)),
                [flat(scale(recurrent.at_steps(q, boot))) for q in online]
                if hp.double_dqn
                else None,
                self.use_dones,
            )
            if hp.value_rescaling:
                td_target = recurrent.rescale(td_target)
        q_now = [flat(q[:, :-1]) for q in online]  # Q(u_t), [B * T, S, n_d]
        q_taken = taken_q(q_now, flat(batch.actions[:, burn_in:]))  # [B * T, S, n_branches]
        td_target = td_target.unsqueeze(2).expand_as(q_taken)
        loss = F.smooth_l1_loss(q_taken, td_target, reduction="none").mean(dim=(1, 2))
        steps = learning.float()
        count = steps.sum(dim=1).clamp(min=1.0)
        per_sequence = (loss.reshape(learning.shape) * steps).sum(dim=1) / count
        self._step((batch.weights * per_sequence).mean())
        # R2D2's priority: eta * max |delta| + (1 - eta) * mean |delta| over the steps
        delta = (td_target - q_taken).detach().sum(dim=1).abs().mean(dim=1).reshape(learning.shape)
        delta = delta * steps
        eta = hp.priority_eta
        priorities = eta * delta.max(dim=1).values + (1 - eta) * delta.sum(dim=1) / count
        q_mean = torch.stack([q.sum(dim=1).mean() for q in q_now]).mean()
        stats = {
            "Losses/Q Loss": per_sequence.mean().item(),
            "Policy/Q Mean": q_mean.item(),
            "Policy/Learning Rate": self.optimizer.param_groups[0]["lr"],
        }
        return ReplayUpdate(stats, priorities.numpy())

    def expert_loss(self, batch_size: int) -> tuple[torch.Tensor, dict[str, float]]:
        """TD loss plus ``margin_weight * J_E`` on ``batch_size`` expert transitions."""
        demos = self.hyperparameters.demonstrations
        assert self.expert_replay is not None and demos is not None
        # the learning signals (curiosity, GAIL, RND) as they score the expert rows now,
        # as for the agent's own samples; not as they did when the demonstrations loaded
        sample = self.expert_replay.sample(
            batch_size, rescore=learning_rewards(self.reward_signals)
        )
        batch = self._tensors(sample)
        td_loss, _, q_per_branch = self._td_loss(batch)
        masks = branch_masks(batch.action_masks, self.q_network.branches, batch_size)
        j_e = large_margin_loss(q_per_branch, batch.discrete_actions, masks, demos.large_margin)
        loss = td_loss.mean() + demos.margin_weight * j_e.mean()
        return loss, {
            "Losses/Expert Q Loss": td_loss.mean().item(),
            "Losses/Margin Loss": j_e.mean().item(),
        }

    def pretrain(self, updates: int) -> dict[str, float]:
        """DQfD pre-training: ``updates`` gradient steps on expert transitions only."""
        demos = self.hyperparameters.demonstrations
        assert self.expert_replay is not None and demos is not None
        stats: dict[str, float] = {}
        for _ in range(updates):
            self.target_network.copy_normalization(self.q_network)
            loss, stats = self.expert_loss(demos.batch_size)
            self._step(loss)
        return stats

    def _step(self, loss: torch.Tensor) -> None:
        """Adam step with gradient clipping, then the target network update."""
        self.apply_gradients(loss, self._trained, self.hyperparameters.max_grad_norm, foreach=True)
        self.updates.step(self.target_network, self.q_network)
