"""Recurrent DQN on replayed sequences: R2D2 (Kapturowski et al. 2019,
https://openreview.net/forum?id=r1lyTjAqYX).

A sampled sequence holds ``L`` consecutive steps of one agent's episode and the recurrent
state the policy had before its first step. Both networks start from that stored state and
run over the sequence's observations (then one step more, the last step's next
observation, to bootstrap from):

    inputs u_j = obs_j for the steps of the episode, next_obs of its last step after it
    state      = LSTM over u_0 .. u_{burn_in - 1}, no gradient      (burn-in)
    Q_j        = Q(u_j | state), j = burn_in .. L                   (online, then target)

For every step ``t >= burn_in`` of the episode, an n-step double-Q target inside the
sequence, ``K_t = min(n, steps to the episode's end, L - t)``::

    y_t = h( sum_{k<K} gamma^k r_{t+k} + gamma^K (1 - done_{t+K-1}) h^-1(Q^-(u_{t+K}, a*)) )
    a*  = argmax_a Q(u_{t+K}, a) over the mask of step t+K-1's next observation

with ``h`` the identity, or R2D2's rescaling ``h(x) = sign(x)(sqrt(|x|+1) - 1) + eps x``.
The loss is the Huber loss of ``y_t - Q(u_t, a_t)`` averaged over the sequence's learning
steps (and signals, branches), weighted by prioritized replay's importance weights; the
sequence's new priority is ``eta max_t |delta_t| + (1 - eta) mean_t |delta_t|``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mla_plugin_core.replay.transitions import SequenceSample

#: R2D2's epsilon of the value rescaling.
RESCALING_EPS = 1e-3


def rescale(x: torch.Tensor) -> torch.Tensor:
    """``h(x) = sign(x)(sqrt(|x| + 1) - 1) + eps x`` (Pohlen et al. 2018)."""
    return torch.sign(x) * (torch.sqrt(x.abs() + 1.0) - 1.0) + RESCALING_EPS * x


def unrescale(x: torch.Tensor) -> torch.Tensor:
    """``h^-1(x)``, the closed form of Pohlen et al. 2018 (Proposition A.2)."""
    eps = RESCALING_EPS
    root = torch.sqrt(1.0 + 4.0 * eps * (x.abs() + 1.0 + eps))
    return torch.sign(x) * (((root - 1.0) / (2.0 * eps)) ** 2 - 1.0)


class SequenceTensors(NamedTuple):
    """A :class:`SequenceSample` as tensors; ``B`` sequences of ``L`` steps, ``S`` signals.

    :param inputs: per observation ``[B, L + 1, *shape]``: the steps' observations, then
        past the episode's last step its next observation (:func:`unroll_inputs`).
    :param actions: long ``[B, L, n_branches]``.
    :param rewards: ``[B, L, S]``, 1-step rewards in ``signal_names``' order.
    :param dones: ``[B, L]``, 1.0 where the step's next observation is terminal.
    :param next_masks: bool ``[B, L, sum(n_d)]``.
    :param valid: bool ``[B, L]``, the step is in the sequence's episode.
    :param memories: ``[1, B, M]``, the stored state before each sequence.
    :param weights: ``[B]``.
    """

    inputs: list[torch.Tensor]
    actions: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    next_masks: torch.Tensor
    valid: torch.Tensor
    memories: torch.Tensor
    weights: torch.Tensor


def unroll_inputs(obs: torch.Tensor, next_obs: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``[B, L + 1, *shape]``: ``obs_j`` where step ``j`` is in the episode, else the next
    observation of the episode's last step (the padding repeats that step), and at ``L``
    the last step's next observation: so ``u_{t+K}`` is the observation a target
    bootstraps from, whether the episode or the sequence ends first."""
    shape = (*valid.shape, *[1] * (obs.dim() - 2))
    inside = torch.where(valid.reshape(shape), obs, next_obs)
    return torch.cat([inside, next_obs[:, -1:]], dim=1)


def to_tensors(sample: SequenceSample, signal_names: list[str]) -> SequenceTensors:
    valid = torch.as_tensor(sample.valid)
    inputs = [
        unroll_inputs(torch.as_tensor(o), torch.as_tensor(n), valid)
        for o, n in zip(sample.obs, sample.next_obs, strict=True)
    ]
    rewards = torch.stack([torch.as_tensor(sample.rewards[s]) for s in signal_names], dim=2)
    return SequenceTensors(
        inputs=inputs,
        actions=torch.as_tensor(sample.discrete_actions, dtype=torch.long),
        rewards=rewards.float(),
        dones=torch.as_tensor(sample.dones, dtype=torch.float32),
        next_masks=torch.as_tensor(sample.next_action_masks, dtype=torch.bool),
        valid=valid,
        memories=torch.as_tensor(sample.memories, dtype=torch.float32).unsqueeze(0),
        weights=torch.as_tensor(sample.weights, dtype=torch.float32),
    )


def n_step_windows(
    valid: torch.Tensor, dones: torch.Tensor, rewards: torch.Tensor, gammas: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every step ``t`` of ``B`` sequences: ``K_t`` (long ``[B, L]``), the n-step
    returns ``sum_{k<K} gamma_s^k r_{t+k}`` ``[B, L, S]`` and ``gamma_s^K`` ``[B, L, S]``.

    A window stops after ``n`` steps, after the step that ends the episode (the last valid
    one: done, truncated or the recording's end) or at the end of the sequence."""
    batch, length = valid.shape
    last_valid = valid.long().cumsum(dim=1).eq(valid.long().sum(dim=1, keepdim=True)) & valid
    k = torch.zeros(batch, length, dtype=torch.long)
    returns = torch.zeros_like(rewards)
    going = valid.clone()  # the window of t still takes step t + k
    for step in range(n):
        index = torch.arange(length) + step
        inside = index < length
        at = index.clamp(max=length - 1)
        go = going & inside.unsqueeze(0)
        returns = returns + go.unsqueeze(2) * gammas**step * rewards[:, at]
        k = k + go.long()
        going = go & ~last_valid[:, at] & ~dones[:, at].bool()
    return k, returns, gammas ** k.unsqueeze(2).float()


def unroll(network: torch.nn.Module, batch: SequenceTensors, burn_in: int) -> list[torch.Tensor]:
    """``network``'s head outputs at ``u_burn_in .. u_L`` of every sequence, per branch
    ``[B, L + 1 - burn_in, S, n_d]``, from the stored states warmed up over the burn-in
    (without gradient)."""
    batch_size, steps = batch.valid.shape[0], batch.valid.shape[1] + 1

    def rows(start: int, stop: int) -> list[torch.Tensor]:
        return [x[:, start:stop].reshape(-1, *x.shape[2:]) for x in batch.inputs]

    memories = batch.memories
    if burn_in:
        with torch.no_grad():
            _, memories = network.unroll(rows(0, burn_in), memories, burn_in)
    outputs, _ = network.unroll(rows(burn_in, steps), memories, steps - burn_in)
    return [o.reshape(batch_size, steps - burn_in, *o.shape[1:]) for o in outputs]


def at_steps(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[b, index[b, j]]`` for ``values`` ``[B, N, ...]`` and ``index`` ``[B, T]``."""
    shape = (*index.shape, *[1] * (values.dim() - 2))
    return values.gather(1, index.reshape(shape).expand(*index.shape, *values.shape[2:]))
