"""The Q-network: mlagents' observation encoder and body, one Q head per reward signal and
per discrete action branch, epsilon-greedy acting and the forward Unity's inference runs.

Several discrete branches follow the action-branching architecture (BDQ, Tavakoli et al.
2018, https://arxiv.org/abs/1711.08946): a shared body, then for branch ``d`` a head
``Q_d(s, a_d)`` over that branch's ``n_d`` actions only, so the output grows with
``sum(n_d)`` and not with ``prod(n_d)``. The greedy joint action is each branch's argmax.

Several reward signals (extrinsic, curiosity, GAIL, RND) each get their own heads, since
each has its own discount ``gamma_s``; the return the agent maximises is their sum, so
actions are chosen on ``Q_d(s, a_d) = sum_s Q_{s,d}(s, a_d)``.

Shapes: ``B`` batch, ``S`` reward signals, ``n_d`` actions of branch ``d``.
"""

from __future__ import annotations

from typing import Any

import torch
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.settings import NetworkSettings
from mlagents.trainers.torch_entities.agent_action import AgentAction
from mlagents.trainers.torch_entities.networks import Actor, NetworkBody
from mlagents_envs.base_env import ActionSpec, ObservationSpec
from torch import nn

#: Version of the ONNX model API written (3 = ModelApiVersion.MLAgents2_0, as SimpleActor).
MODEL_EXPORT_VERSION = 3


def masked_q(q_values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``q_values`` with forbidden actions set to the lowest float, so that no max or
    argmax picks them while any action of the branch is allowed.

    :param q_values: ``[B, ..., n_d]``.
    :param mask: ``[B, n_d]``, truthy (or > 0.5) = allowed; broadcast over middle axes.
    """
    allowed = mask > 0.5 if mask.dtype != torch.bool else mask
    while allowed.dim() < q_values.dim():
        allowed = allowed.unsqueeze(1)
    lowest = torch.finfo(q_values.dtype).min
    return torch.where(allowed, q_values, torch.full_like(q_values, lowest))


def split_masks(masks: torch.Tensor | None, branches: list[int], batch: int) -> list[torch.Tensor]:
    """Cut flat masks ``[B, sum(n_d)]`` into one ``[B, n_d]`` bool tensor per branch
    (everything allowed when ``masks`` is ``None``)."""
    if masks is None:
        return [torch.ones(batch, n, dtype=torch.bool) for n in branches]
    allowed = masks > 0.5 if masks.dtype != torch.bool else masks
    return list(torch.split(allowed, branches, dim=1))


def random_allowed_actions(
    masks: list[torch.Tensor], generator: torch.Generator | None = None
) -> torch.Tensor:
    """One uniformly random allowed action per branch and row.

    :param masks: per branch ``[B, n_d]`` bool, True = allowed. A row with nothing
        allowed (which Unity forbids) draws among all actions.
    :return: long ``[B, n_branches]``.
    """
    actions = []
    for mask in masks:
        weights = mask.float()
        weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights))
        actions.append(torch.multinomial(weights, 1, generator=generator).squeeze(1))
    return torch.stack(actions, dim=1)


class QNetwork(nn.Module, Actor):
    """Q-values for every reward signal, branch and action; the ``actor`` of the policy.

    :param observation_specs: the behavior's observations (vector and visual; encoded by
        mlagents' ``NetworkBody``, normalised when ``network_settings.normalize``).
    :param network_settings: ``hidden_units``, ``num_layers``, ``normalize``,
        ``vis_encode_type`` of the YAML; ``memory`` must be ``None``.
    :param action_spec: discrete branches only.
    :param reward_signals: names of the reward signals, one set of heads each.
    :param dueling: ``Q = V + A - mean_a A`` per signal and branch, ``V`` shared by the
        branches (BDQ's shared state value).
    :param seed: seed of the generator of exploration draws.
    """

    MODEL_EXPORT_VERSION = MODEL_EXPORT_VERSION

    def __init__(
        self,
        observation_specs: list[ObservationSpec],
        network_settings: NetworkSettings,
        action_spec: ActionSpec,
        reward_signals: list[str] | None = None,
        dueling: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if action_spec.continuous_size > 0 or action_spec.discrete_size == 0:
            raise ValueError(f"QNetwork needs discrete actions only, got {action_spec}")
        if network_settings.memory is not None:
            raise ValueError("QNetwork has no recurrent version (network_settings.memory)")
        self.action_spec = action_spec
        self.branches = [int(b) for b in action_spec.discrete_branches]
        self.reward_signals = list(reward_signals or ["extrinsic"])
        self.dueling = dueling
        n_signals, n_actions = len(self.reward_signals), sum(self.branches)

        # Constants Unity reads from the exported model (names in model_serialization).
        self.version_number = nn.Parameter(
            torch.tensor([float(MODEL_EXPORT_VERSION)]), requires_grad=False
        )
        self.memory_size_vector = nn.Parameter(torch.tensor([0.0]), requires_grad=False)
        self.discrete_act_size_vector = nn.Parameter(
            torch.tensor([self.branches], dtype=torch.float32), requires_grad=False
        )

        self.network_body = NetworkBody(observation_specs, network_settings)
        hidden = network_settings.hidden_units
        # Advantages (dueling) or Q-values: all signals and branches in one layer.
        self.action_head = nn.Linear(hidden, n_signals * n_actions)
        self.value_head = nn.Linear(hidden, n_signals) if dueling else None

        #: Probability of a random action in get_action_and_stats, set by the policy.
        self.exploration_epsilon = 0.0
        self._generator = torch.Generator().manual_seed(int(seed))

    @property
    def memory_size(self) -> int:
        return 0

    def update_normalization(self, buffer: AgentBuffer) -> None:
        self.network_body.update_normalization(buffer)

    def copy_normalization(self, other: QNetwork) -> None:
        """Take ``other``'s observation normalisation statistics (for the target network)."""
        self.network_body.copy_normalization(other.network_body)

    def q_values(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Q-values per branch: a list over branches ``d`` of ``[B, S, n_d]``.

        :param inputs: one tensor per observation, ``[B, *obs_shape]``.
        """
        encoding, _ = self.network_body(inputs)  # [B, hidden]
        batch = encoding.shape[0]
        heads = self.action_head(encoding).reshape(batch, len(self.reward_signals), -1)
        per_branch = list(torch.split(heads, self.branches, dim=2))  # d x [B, S, n_d]
        if self.value_head is None:
            return per_branch
        value = self.value_head(encoding).unsqueeze(2)  # V(s) per signal, [B, S, 1]
        # Q = V + A - mean_a A, per branch (Wang et al. 2016 eq. 9; BDQ eq. 1).
        return [value + adv - adv.mean(dim=2, keepdim=True) for adv in per_branch]

    def greedy_actions(
        self, inputs: list[torch.Tensor], masks: torch.Tensor | None = None
    ) -> torch.Tensor:
        """argmax over allowed actions of the summed Q per branch: long ``[B, n_branches]``."""
        q_per_branch = self.q_values(inputs)
        branch_masks = split_masks(masks, self.branches, q_per_branch[0].shape[0])
        return torch.stack(
            [
                masked_q(q.sum(dim=1), mask).argmax(dim=1)  # sum over signals: [B, n_d]
                for q, mask in zip(q_per_branch, branch_masks, strict=True)
            ],
            dim=1,
        )

    def get_action_and_stats(
        self,
        inputs: list[torch.Tensor],
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[AgentAction, dict[str, Any], torch.Tensor | None]:
        """Epsilon-greedy actions, each agent (row) exploring independently.

        With probability ``exploration_epsilon`` a row takes a uniformly random allowed
        action in every branch, otherwise the greedy one; both respect ``masks``.

        :param masks: ``[B, sum(n_d)]``, 1 = allowed (mlagents' convention).
        :return: the actions (one ``[B, 1]`` tensor per branch), the outputs mlagents'
            policy forwards (``env_action``) and the (absent) memories.
        """
        with torch.no_grad():
            greedy = self.greedy_actions(inputs, masks)  # [B, n_branches]
            batch = greedy.shape[0]
            explore = torch.rand(batch, generator=self._generator) < self.exploration_epsilon
            if bool(explore.any()):
                random = random_allowed_actions(
                    split_masks(masks, self.branches, batch), self._generator
                )
                actions = torch.where(explore.unsqueeze(1), random, greedy)
            else:
                actions = greedy
        action = AgentAction(None, [actions[:, d : d + 1] for d in range(len(self.branches))])
        return action, {"env_action": action.to_action_tuple()}, memories

    def forward(
        self,
        inputs: list[torch.Tensor],
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """What the exported ONNX model computes (Unity's discrete-action API, version 3).

        :return: ``version_number``, ``memory_size`` (0), ``discrete_actions`` (long
            ``[B, n_branches]``), ``discrete_action_output_shape`` (``[1, n_branches]``),
            ``deterministic_discrete_actions``. Both action outputs are the greedy
            actions: exploration is a training-time device, inference exploits.
        """
        greedy = self.greedy_actions(inputs, masks)
        return (
            self.version_number,
            self.memory_size_vector,
            greedy,
            self.discrete_act_size_vector,
            greedy,
        )
