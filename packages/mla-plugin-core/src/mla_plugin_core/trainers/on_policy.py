"""Base trainer for on-policy actor-critic algorithms (A2C, PPO-likes, REINFORCE with baseline).

An algorithm subclasses :class:`OnPolicyPluginTrainer` and writes three things:

- ``get_trainer_name()`` — the ``trainer_type`` of the YAML;
- ``create_policy()`` — usually ``TorchPolicy`` with one of mlagents' actors;
- ``create_optimizer()`` — a ``TorchOptimizer`` whose ``update(batch, n_sequences)``
  is the algorithm's loss and gradient step.

This class does the rest, for every trajectory an agent finishes:

1. update observation normalisation (actor and critic);
2. evaluate every reward signal (extrinsic, curiosity, GAIL, RND) and record its stats;
3. estimate values and bootstrap the last step — from ``V(next_obs)`` when the trajectory
   was cut by the time horizon or by a max-step interruption, from 0 after a real terminal
   (the distinction of Pardo et al. 2018, https://arxiv.org/abs/1712.00378);
4. compute advantages and returns per reward signal with GAE
   (Schulman et al. 2016, https://arxiv.org/abs/1506.02438), ``lambd = 1`` giving n-step
   Monte-Carlo returns with a value bootstrap;
5. append to the update buffer, and as soon as ``buffer_size`` experiences are there, run
   ``num_epoch`` passes of minibatches of ``batch_size`` through the optimizer.

Trajectories arrive whole, so the buffer often holds a little more than ``buffer_size``
when an update starts. Every experience is used: the last minibatch of a pass takes the
remainder (it holds between ``batch_size`` and ``2 * batch_size - 1`` experiences).
mlagents' own PPO instead waits for strictly more than ``buffer_size`` and drops the
remainder, which with small buffers (A2C's ``n_envs * n_steps``) can throw away half of
what was collected.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from mlagents.trainers.buffer import AgentBuffer, BufferKey, RewardSignalUtil
from mlagents.trainers.torch_entities.action_log_probs import ActionLogProbs
from mlagents.trainers.torch_entities.agent_action import AgentAction
from mlagents.trainers.torch_entities.utils import ModelUtils
from mlagents.trainers.trainer.on_policy_trainer import OnPolicyTrainer
from mlagents.trainers.trajectory import ObsUtil, Trajectory

from mla_plugin_core.replay.batches import value_estimates_key
from mla_plugin_core.trainers.base import PluginTrainerMixin

ADVANTAGE_EPSILON = 1e-8  # keeps advantage normalisation finite when all advantages agree


def generalized_advantages(
    rewards: np.ndarray,
    values: np.ndarray,
    value_next: float,
    gamma: float,
    lambd: float,
) -> np.ndarray:
    """GAE(gamma, lambda) advantages of one trajectory.

    :param rewards: float [T], reward after each step.
    :param values: float [T], V(s_t) for each step.
    :param value_next: V(s_T) of the observation after the last step; 0 after a terminal.
    :param gamma: discount in [0, 1].
    :param lambd: GAE lambda in [0, 1]; 1 gives Monte-Carlo returns minus V(s_t).
    :return: float32 [T] advantages A_t = sum_k (gamma*lambd)^k delta_{t+k}, with
        delta_t = r_t + gamma * V(s_{t+1}) - V(s_t).
    """
    next_values = np.append(values[1:], value_next)
    deltas = rewards + gamma * next_values - values
    advantages = np.zeros_like(deltas, dtype=np.float32)
    last_advantage = 0.0
    for t in reversed(range(len(deltas))):
        last_advantage = deltas[t] + gamma * lambd * last_advantage
        advantages[t] = last_advantage
    return advantages


def approx_kl(
    old_log_probs: torch.Tensor, new_log_probs: torch.Tensor, masks: torch.Tensor | None = None
) -> float:
    """How far the policy moved: ``KL(pi_old || pi_new)`` estimated on actions the
    old policy took, with the unbiased, always non-negative ``(r - 1) - log r``,
    ``r = pi_new(a|s) / pi_old(a|s)`` (Schulman 2020, "Approximating KL divergence").

    :param old_log_probs: float [B, n_action_dims], log-probabilities when acting.
    :param new_log_probs: the same under the updated policy.
    :param masks: bool [B], the rows to count (False: padding of recurrent sequences).
    """
    log_ratio = (new_log_probs - old_log_probs).sum(dim=-1).double()
    kl = (torch.exp(log_ratio) - 1) - log_ratio
    return float(kl[masks].mean() if masks is not None else kl.mean())


class OnPolicyPluginTrainer(PluginTrainerMixin, OnPolicyTrainer):
    """mlagents ``OnPolicyTrainer`` that owns trajectory processing and the update loop."""

    #: How far the last update moved the policy (:func:`approx_kl`, measured on its last
    #: minibatch); ``None`` before the first update and for recurrent policies.
    last_update_kl: float | None = None

    @property
    def gae_lambda(self) -> float:
        """lambda of GAE: the ``lambd`` hyperparameter, 0.95 (mlagents' PPO default) if absent."""
        return float(getattr(self.hyperparameters, "lambd", 0.95))

    @property
    def normalize_advantages(self) -> bool:
        """Standardise advantages over the update buffer before an update."""
        return self.hyperparameters.normalize_advantage

    def _process_trajectory(self, trajectory: Trajectory) -> None:
        super()._process_trajectory(trajectory)
        agent_id = trajectory.agent_id
        buffer = self.trajectory_buffer(trajectory)

        terminal = trajectory.done_reached and not trajectory.interrupted
        values, value_next, critic_memories = self.optimizer.get_trajectory_value_estimates(
            buffer, trajectory.next_obs, terminal
        )
        if critic_memories is not None:
            buffer[BufferKey.CRITIC_MEMORY].set(critic_memories)

        rewards = self.evaluate_reward_signals(buffer, agent_id)
        advantages: list[np.ndarray] = []
        returns: list[np.ndarray] = []
        for name, signal_rewards in rewards.items():
            signal = self.optimizer.reward_signals[name]
            buffer[RewardSignalUtil.rewards_key(name)].extend(signal_rewards)
            buffer[value_estimates_key(name)].extend(values[name])
            self._stats_reporter.add_stat(
                f"Policy/{signal.name.capitalize()} Value Estimate", float(np.mean(values[name]))
            )
            advantage = generalized_advantages(
                signal_rewards, values[name], float(value_next[name]), signal.gamma, self.gae_lambda
            )
            value_target = advantage + values[name]
            buffer[RewardSignalUtil.advantage_key(name)].set(list(advantage))
            buffer[RewardSignalUtil.returns_key(name)].set(list(value_target))
            advantages.append(advantage)
            returns.append(value_target)

        # The policy follows the mean advantage over reward signals (as mlagents' PPO does).
        buffer[BufferKey.ADVANTAGES].set(list(np.mean(advantages, axis=0)))
        buffer[BufferKey.DISCOUNTED_RETURNS].set(list(np.mean(returns, axis=0)))
        self._append_to_update_buffer(buffer)

        if trajectory.done_reached:
            self._update_end_episode_stats(agent_id, self.optimizer)

    def _is_ready_update(self) -> bool:
        """Update as soon as the buffer holds ``buffer_size`` experiences."""
        return self.update_buffer.num_experiences >= self.hyperparameters.buffer_size

    def minibatch_bounds(self, n_experiences: int) -> list[tuple[int, int]]:
        """[start, end) of each minibatch of one pass over ``n_experiences`` experiences.

        Minibatches hold ``batch_size`` experiences (rounded down to whole sequences of a
        recurrent policy); the last one also takes the remainder, so none is left out.
        """
        sequence_length = self.policy.sequence_length
        batch_size = max(
            self.hyperparameters.batch_size - self.hyperparameters.batch_size % sequence_length,
            sequence_length,
        )
        n_batches = max(n_experiences // batch_size, 1)
        starts = [i * batch_size for i in range(n_batches)]
        ends = starts[1:] + [n_experiences]
        return list(zip(starts, ends, strict=True))

    def probe_policy(self, batch: AgentBuffer) -> dict[str, torch.Tensor]:
        """Log probabilities and entropy the policy gives the actions of ``batch``.

        Checked for NaN/inf after each update: weights can stay finite yet overflow in the
        forward pass, and mlagents' action sampling then fails inside torch. Empty for a
        recurrent policy (its memories are not at hand here); its next loss is checked.
        """
        if self.policy.use_recurrent:
            return {}
        n_obs = len(self.policy.behavior_spec.observation_specs)
        with torch.no_grad():
            stats = self.policy.actor.get_stats(
                [ModelUtils.list_to_tensor(obs) for obs in ObsUtil.from_buffer(batch, n_obs)],
                AgentAction.from_buffer(batch),
                masks=ModelUtils.list_to_tensor(batch[BufferKey.ACTION_MASK]),
            )
        return {
            "policy log probs": stats["log_probs"].flatten(),
            "policy entropy": stats["entropy"],
        }

    def _update_policy(self) -> bool:
        """Run ``num_epoch`` passes of ``batch_size`` minibatches over the update buffer.

        Stops training (:meth:`stop_if_non_finite`) at the first NaN/inf loss of the
        optimizer or of a reward signal, and when the parameters are no longer finite.
        """
        self.cumulative_returns_since_policy_update.clear()
        sequence_length = self.policy.sequence_length
        advantages = np.asarray(self.update_buffer[BufferKey.ADVANTAGES].get_batch(), np.float32)
        # The advantages' own scale, before any standardisation: it shrinks as the critic
        # learns, and standardising then blows noise up to unit size.
        self._stats_reporter.add_stat("Policy/Advantage Std", float(advantages.std()))
        if self.normalize_advantages:
            self.update_buffer[BufferKey.ADVANTAGES].set(
                list((advantages - advantages.mean()) / (advantages.std() + ADVANTAGE_EPSILON))
            )

        stats: dict[str, list[float]] = defaultdict(list)
        bounds = self.minibatch_bounds(self.update_buffer.num_experiences)
        for _ in range(self.hyperparameters.num_epoch):
            self.update_buffer.shuffle(sequence_length=sequence_length)
            for start, end in bounds:
                minibatch: AgentBuffer = self.update_buffer.make_mini_batch(start, end)
                n_sequences = max((end - start) // sequence_length, 1)
                update_stats = self.optimizer.update(minibatch, n_sequences)
                update_stats.update(self.optimizer.update_reward_signals(minibatch))
                self.stop_if_non_finite(update_stats)
                for name, value in update_stats.items():
                    stats[name].append(value)
        self.report_mean_stats(stats)
        self.update_behavioral_cloning()
        probe = self.probe_policy(minibatch)
        self.stop_if_non_finite(probe, state=True)
        self.last_update_kl = None
        if probe:
            self.last_update_kl = approx_kl(
                ActionLogProbs.from_buffer(minibatch).flatten(), probe["policy log probs"]
            )
            self._stats_reporter.add_stat("Policy/Update KL", self.last_update_kl)
        self._clear_update_buffer()
        return True
