"""What an optimizer's loss reads: typed tensors, one value per reward signal.

- :class:`Minibatch`: an on-policy minibatch (advantages, returns and old values per
  reward signal), from the ``AgentBuffer`` the base trainer hands to ``update``;
- :class:`ReplayBatch`: an off-policy replay sample (n-step rewards and discounts per
  reward signal, stacked in columns), from a :class:`~mla_plugin_core.replay.transitions.ReplaySample`.

Shapes: ``B`` rows, ``S`` reward signals, ``n_d`` actions of discrete branch ``d``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from mlagents.trainers.buffer import (
    AgentBuffer,
    AgentBufferKey,
    BufferKey,
    RewardSignalKeyPrefix,
    RewardSignalUtil,
)
from mlagents.trainers.torch_entities.agent_action import AgentAction
from mlagents.trainers.torch_entities.utils import ModelUtils
from mlagents.trainers.trajectory import ObsUtil

from mla_plugin_core.replay.transitions import ReplaySample, to_tensors


def value_estimates_key(name: str) -> AgentBufferKey:
    """Where the on-policy trainer stores reward signal ``name``'s ``V(s_t)``.

    Not mlagents' ``RewardSignalUtil.value_estimates_key``: in mlagents 0.30-1.1 that returns
    the *returns* key, so value estimates written there are overwritten by the returns.
    """
    return RewardSignalKeyPrefix.VALUE_ESTIMATES, name


class Minibatch(NamedTuple):
    """An on-policy minibatch of ``B`` experiences as tensors.

    :param obs: one float32 ``[B, *obs_shape]`` per observation of the behavior.
    :param actions: mlagents' ``AgentAction``: ``continuous_tensor`` float32 ``[B, c]``,
        ``discrete_list`` one long ``[B]`` per branch (what the actor's ``get_stats`` takes).
    :param action_masks: float32 ``[B, sum(n_d)]``, 1 = allowed (empty without branches).
    :param advantages: float32 ``[B]``, the mean over signals of the GAE advantages,
        standardised over the update buffer when ``normalize_advantage`` (the policy
        gradient's weight).
    :param returns: signal name -> float32 ``[B]``, value targets ``G_t`` = that signal's
        GAE advantage + its old value estimate, discounted with that signal's ``gamma``.
    :param value_estimates: signal name -> float32 ``[B]``, the critic's ``V(s_t)`` when
        the trajectory was processed (for clipped value losses).
    :param loss_masks: bool ``[B]``, False for the padding of recurrent sequences.
    :param memories: float32 ``[1, n_sequences, memory_size]``, the actor's memory at the
        start of each sequence; ``None`` without ``network_settings.memory``.
    :param critic_memories: the same for a separate critic; ``None`` without memory.
    """

    obs: list[torch.Tensor]
    actions: AgentAction
    action_masks: torch.Tensor
    advantages: torch.Tensor
    returns: dict[str, torch.Tensor]
    value_estimates: dict[str, torch.Tensor]
    loss_masks: torch.Tensor
    memories: torch.Tensor | None
    critic_memories: torch.Tensor | None

    @classmethod
    def from_buffer(
        cls,
        batch: AgentBuffer,
        n_obs: int,
        signal_names: Sequence[str],
        sequence_length: int = 1,
    ) -> Minibatch:
        """The tensors of an ``AgentBuffer`` minibatch filled by the on-policy base trainer.

        :param n_obs: number of observations of the behavior.
        :param signal_names: the reward signals, e.g. ``list(optimizer.reward_signals)``.
        :param sequence_length: the policy's ``sequence_length`` (1 without memory).
        """
        return cls(
            obs=[ModelUtils.list_to_tensor(obs) for obs in ObsUtil.from_buffer(batch, n_obs)],
            actions=AgentAction.from_buffer(batch),
            action_masks=ModelUtils.list_to_tensor(batch[BufferKey.ACTION_MASK]),
            advantages=ModelUtils.list_to_tensor(batch[BufferKey.ADVANTAGES]),
            returns={
                name: ModelUtils.list_to_tensor(batch[RewardSignalUtil.returns_key(name)])
                for name in signal_names
            },
            value_estimates={
                name: ModelUtils.list_to_tensor(batch[value_estimates_key(name)])
                for name in signal_names
            },
            loss_masks=ModelUtils.list_to_tensor(batch[BufferKey.MASKS], dtype=torch.bool),
            memories=sequence_start_memories(batch, BufferKey.MEMORY, sequence_length),
            critic_memories=sequence_start_memories(
                batch, BufferKey.CRITIC_MEMORY, sequence_length
            ),
        )


def sequence_start_memories(
    batch: AgentBuffer, key: BufferKey, sequence_length: int
) -> torch.Tensor | None:
    """The memory at the start of each sequence, float32 ``[1, n_sequences, memory_size]``;
    ``None`` when the buffer holds no memories (a policy without memory)."""
    stored = batch[key]
    first_of_sequences = [
        ModelUtils.list_to_tensor(stored[i]) for i in range(0, len(stored), sequence_length)
    ]
    if not first_of_sequences:
        return None
    return torch.stack(first_of_sequences).unsqueeze(0)


class ReplayBatch(NamedTuple):
    """A replay sample of ``B`` n-step transitions as tensors, rewards per signal in columns.

    For row ``i`` and signal ``s`` (column ``signal_names.index(s)``), the TD target of an
    n-step return is ``rewards[i, s] + discounts[i, s] * (1 - dones[i]) * V_s(next_obs_i)``.
    A terminal cuts the bootstrap (``dones``); a max-step interruption does not
    (``truncated`` is informative only). Signals whose provider has ``ignore_done``
    (curiosity, RND) may keep bootstrapping through a terminal.

    :param obs: one float32 ``[B, *obs_shape]`` per observation, at the transition's start.
    :param next_obs: the same ``K <= n_step`` steps later (where the bootstrap reads).
    :param continuous_actions: float32 ``[B, c]`` (``c = 0`` for discrete behaviors).
    :param discrete_actions: long ``[B, n_branches]``.
    :param action_masks: bool ``[B, sum(n_d)]``, True = allowed at ``obs``.
    :param next_action_masks: bool ``[B, sum(n_d)]``, True = allowed at ``next_obs``
        (all True after a terminal or where unknown).
    :param rewards: float32 ``[B, S]``, per signal the discounted sum of its ``K`` rewards,
        already scaled by the signal's ``strength``.
    :param discounts: float32 ``[B, S]``, ``gamma_s ** K`` per signal: signals with
        different ``gamma`` have different columns.
    :param dones: float32 ``[B]``, 1.0 where ``next_obs`` is a real terminal.
    :param truncated: float32 ``[B]``, 1.0 where the episode was cut (max step, reset)
        at ``next_obs``; the bootstrap stays valid there.
    :param weights: float32 ``[B]``, prioritized replay's importance weights (ones for
        uniform replay): multiply the per-row loss by them.
    :param signal_names: the reward signals, in column order.
    """

    obs: list[torch.Tensor]
    next_obs: list[torch.Tensor]
    continuous_actions: torch.Tensor
    discrete_actions: torch.Tensor
    action_masks: torch.Tensor
    next_action_masks: torch.Tensor
    rewards: torch.Tensor
    discounts: torch.Tensor
    dones: torch.Tensor
    truncated: torch.Tensor
    weights: torch.Tensor
    signal_names: tuple[str, ...]

    @classmethod
    def from_sample(cls, sample: ReplaySample, signal_names: Sequence[str]) -> ReplayBatch:
        """The tensors of ``sample``; ``signal_names`` gives the column order of rewards."""
        names = tuple(signal_names)
        missing = [name for name in names if name not in sample.rewards]
        if missing:
            raise ValueError(
                f"reward signal(s) {missing} not in the replay sample (it has "
                f"{sorted(sample.rewards)})"
            )
        return cls(
            **to_tensors(sample, names),
            weights=torch.as_tensor(sample.weights, dtype=torch.float32),
            signal_names=names,
        )

    @property
    def batch_size(self) -> int:
        """``B``, the number of transitions."""
        return int(self.dones.shape[0])
