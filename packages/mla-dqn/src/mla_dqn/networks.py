"""The Q-network of DQN: core's discrete Q actor with one set of heads per reward signal
and optional dueling heads.

:class:`~mla_plugin_core.networks.q_network.DiscreteQActor` gives mlagents' body (observation
encoders, normalisation), epsilon-greedy acting with action masks (each agent explores
independently, random actions uniform over the allowed ones of each branch) and the
``forward`` Unity's inference runs (greedy actions). Several discrete branches follow the
action-branching architecture (BDQ, Tavakoli et al. 2018, https://arxiv.org/abs/1711.08946):
a head ``Q_d(s, a_d)`` per branch ``d`` over its ``n_d`` actions.

What this module adds: several reward signals (extrinsic, curiosity, GAIL, RND) each get
their own heads ``Q_{s,d}``, since each has its own discount ``gamma_s``. The return the
agent maximises is their sum, so actions (and the exported model) use
``Q_d(s, a_d) = sum_s Q_{s,d}(s, a_d)``.

Shapes: ``B`` batch, ``S`` reward signals, ``n_d`` actions of branch ``d``.
"""

from __future__ import annotations

import torch
from mlagents.trainers.settings import NetworkSettings
from mlagents_envs.base_env import ActionSpec, ObservationSpec
from torch import nn

from mla_plugin_core.networks.q_network import DiscreteQActor

__all__ = ["QNetwork"]


class QNetwork(DiscreteQActor):
    """Q-values per reward signal, branch and action; the ``actor`` of the DQN policy.

    :param observation_specs: the behavior's observations.
    :param network_settings: ``hidden_units``, ``num_layers``, ``normalize``,
        ``vis_encode_type``, ``memory`` (recurrent DQN, R2D2).
    :param action_spec: discrete branches only.
    :param reward_signals: names of the reward signals, one set of heads each.
    :param dueling: ``Q = V + A - mean_a A`` per signal and branch (Wang et al. 2016,
        https://arxiv.org/abs/1511.06581), one ``V`` per signal shared by the branches
        (BDQ's shared state value).
    :param seed: seed of the exploration draws.
    """

    def __init__(
        self,
        observation_specs: list[ObservationSpec],
        network_settings: NetworkSettings,
        action_spec: ActionSpec,
        reward_signals: list[str] | None = None,
        dueling: bool = False,
        seed: int = 0,
    ):
        self.reward_signals = list(reward_signals or ["extrinsic"])
        # Core's head hook: one output per signal for every action (advantages, dueling).
        super().__init__(
            observation_specs,
            network_settings,
            action_spec,
            seed=seed,
            outputs_per_action=len(self.reward_signals),
        )
        self.dueling = dueling
        signals = len(self.reward_signals)
        self.value_head = nn.Linear(self.encoding_size, signals) if dueling else None

    def copy_normalization(self, other: QNetwork) -> None:
        """Take ``other``'s observation normalisation statistics (for the target network)."""
        self.network_body.copy_normalization(other.network_body)

    def heads(self, encoding: torch.Tensor) -> list[torch.Tensor]:
        """Q-values per branch and signal from the body's encoding ``[B, encoding_size]``: a
        list over branches ``d`` of ``[B, S, n_d]``."""
        if self.value_head is None:
            return super().heads(encoding)
        heads = self.q_head(encoding).reshape(encoding.shape[0], len(self.reward_signals), -1)
        value = self.value_head(encoding).unsqueeze(2)  # V_s(s), [B, S, 1]
        # Q = V + A - mean_a A, per branch (Wang et al. 2016 eq. 9; BDQ eq. 1).
        return [
            value + adv - adv.mean(dim=2, keepdim=True)
            for adv in torch.split(heads, self.branches, dim=2)
        ]

    def signal_q_values(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The per-signal Q-values the loss reads: the head's outputs."""
        return self.head_outputs(inputs)

    def q_from_head(self, outputs: torch.Tensor) -> torch.Tensor:
        """The summed return's Q-values ``[B, n_d]`` from ``[B, S, n_d]``: what acting, the
        greedy actions and the exported model use."""
        return outputs.sum(dim=1)
