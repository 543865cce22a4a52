"""A discrete Q-network that is also an mlagents policy ``actor``.

mlagents' ``TorchPolicy`` acts through its actor's ``get_action_and_stats`` and exports
the actor's ``forward`` to ONNX for Unity. :class:`DiscreteQActor` gives both for a
value-based agent: epsilon-greedy actions while training, greedy ones in the exported
model, with action masks respected everywhere; :class:`EpsilonGreedyQPolicy` is the
``TorchPolicy`` that sets the epsilon of each decision step from a schedule. Several discrete branches get one Q head
each (action branching, Tavakoli et al. 2018, https://arxiv.org/abs/1711.08946): the
greedy joint action is each branch's argmax.

The head is the hook for other value representations: it gives ``K`` outputs per action
(``outputs_per_action``: quantiles for QR-DQN, atoms for C51, one value per reward signal),
:meth:`DiscreteQActor.head_outputs` returns them as ``[B, K, n_d]`` per branch, and
:meth:`DiscreteQActor.q_from_head` reduces them to the Q-values that acting, the greedy
actions and the exported model use (the mean over ``K`` unless overridden).

With ``network_settings.memory`` the body is mlagents' LSTM (R2D2's recurrent Q-network,
Kapturowski et al. 2019): acting carries each agent's memory from step to step (the policy
stores it), :meth:`DiscreteQActor.unroll` runs a sequence from a stored state, and the
exported model has Unity's recurrent input and output (``memory_size`` as mlagents' own).

Shapes: ``B`` batch, ``K`` outputs per action, ``n_d`` actions of branch ``d``, ``M``
memory size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from mlagents.trainers.buffer import AgentBuffer
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import NetworkSettings
from mlagents.trainers.torch_entities.agent_action import AgentAction
from mlagents.trainers.torch_entities.networks import Actor, NetworkBody
from mlagents_envs.base_env import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec
from torch import nn

#: The model API version Unity's inference reads (``MLAgents2_0``, as mlagents' actors).
MODEL_API_VERSION = 3


def branch_masks(masks: torch.Tensor | None, branches: list[int], batch: int) -> list[torch.Tensor]:
    """Flat masks ``[B, sum(n_d)]`` (1 or True = allowed) as one bool ``[B, n_d]`` per branch.

    ``None`` means everything is allowed.
    """
    if masks is None:
        return [torch.ones(batch, n, dtype=torch.bool) for n in branches]
    allowed = masks if masks.dtype == torch.bool else masks > 0.5
    return list(torch.split(allowed, branches, dim=1))


def masked_q_values(q_values: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """``q_values`` ``[B, ..., n_d]`` with forbidden actions at the lowest float.

    No max or argmax then picks a forbidden action while the branch allows one.
    ``allowed`` is ``[B, n_d]`` and broadcasts over the middle axes.
    """
    while allowed.dim() < q_values.dim():
        allowed = allowed.unsqueeze(1)
    return q_values.masked_fill(~allowed, torch.finfo(q_values.dtype).min)


def random_allowed_actions(
    allowed: list[torch.Tensor], generator: torch.Generator | None = None
) -> torch.Tensor:
    """A uniformly random allowed action per branch and row: long ``[B, n_branches]``.

    A row where a branch allows nothing (Unity forbids that) draws among all its actions.
    """
    columns = []
    for branch_allowed in allowed:
        weights = branch_allowed.float()
        weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights))
        columns.append(torch.multinomial(weights, 1, generator=generator).squeeze(1))
    return torch.stack(columns, dim=1)


def epsilon_greedy(
    greedy: torch.Tensor,
    allowed: list[torch.Tensor],
    epsilon: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Each row independently: with probability ``epsilon`` a random allowed action in every
    branch, otherwise its ``greedy`` action. ``greedy`` is long ``[B, n_branches]``."""
    explore = torch.rand(greedy.shape[0], generator=generator) < epsilon
    if not bool(explore.any()):
        return greedy
    return torch.where(explore.unsqueeze(1), random_allowed_actions(allowed, generator), greedy)


class DiscreteQActor(nn.Module, Actor):
    """Q-values ``Q_d(s, a_d)`` for every discrete branch, usable as a ``TorchPolicy`` actor.

    :param observation_specs: the behavior's observations, encoded by mlagents'
        ``NetworkBody`` (vector and visual; normalised when ``network_settings.normalize``).
    :param network_settings: ``hidden_units``, ``num_layers``, ``normalize``, ``memory``
        (an LSTM of ``memory_size / 2`` units after the body, as mlagents' actors).
    :param action_spec: discrete branches only.
    :param seed: seed of the exploration draws.
    :param outputs_per_action: ``K``, the head's outputs per action (``>= 1``): e.g. the
        quantiles of QR-DQN, whose Q-value is their mean (the default :meth:`q_from_head`).

    Set :attr:`exploration_epsilon` before acting (a policy does it per decision step).

    Subclasses change the value representation through two methods, not by replacing
    :attr:`q_head` after construction: :meth:`heads` (from the body's encoding, e.g.
    dueling heads; 0.1's override of :meth:`head_outputs` still works without memory) and
    :meth:`q_from_head` (e.g. an expectation over atoms).
    """

    MODEL_EXPORT_VERSION = MODEL_API_VERSION

    def __init__(
        self,
        observation_specs: list[ObservationSpec],
        network_settings: NetworkSettings,
        action_spec: ActionSpec,
        seed: int = 0,
        outputs_per_action: int = 1,
    ):
        super().__init__()
        if action_spec.continuous_size > 0 or action_spec.discrete_size == 0:
            raise ValueError(f"a Q-network needs discrete actions only, got {action_spec}")
        if int(outputs_per_action) < 1:
            raise ValueError(f"outputs_per_action must be >= 1, got {outputs_per_action}")
        self.branches = [int(n) for n in action_spec.discrete_branches]
        self.outputs_per_action = int(outputs_per_action)
        self.network_body = NetworkBody(observation_specs, network_settings)
        memory = network_settings.memory
        #: The width of the body's output: the LSTM's units with memory, else hidden_units.
        self.encoding_size = (
            memory.memory_size // 2 if memory is not None else network_settings.hidden_units
        )
        # K outputs for every action of every branch, in one layer: [B, K * sum(n_d)]
        self.q_head = nn.Linear(self.encoding_size, self.outputs_per_action * sum(self.branches))
        # Constants the exported model carries for Unity (names in model_serialization).
        self.version_number = nn.Parameter(
            torch.tensor([float(MODEL_API_VERSION)]), requires_grad=False
        )
        self.memory_size_vector = nn.Parameter(
            torch.tensor([float(self.network_body.memory_size)]), requires_grad=False
        )
        self.discrete_act_size_vector = nn.Parameter(
            torch.tensor([self.branches], dtype=torch.float32), requires_grad=False
        )
        self.exploration_epsilon = 0.0
        self._generator = torch.Generator().manual_seed(int(seed))

    @property
    def memory_size(self) -> int:
        """``M``: floats of recurrent state per agent (``0`` without memory)."""
        return int(self.network_body.memory_size)

    def update_normalization(self, buffer: AgentBuffer) -> None:
        self.network_body.update_normalization(buffer)

    def heads(self, encoding: torch.Tensor) -> list[torch.Tensor]:
        """The head's outputs from the body's encoding ``[B, encoding_size]``: one
        ``[B, K, n_d]`` tensor per branch (the hook: override to change them)."""
        heads = self.q_head(encoding).reshape(encoding.shape[0], self.outputs_per_action, -1)
        return list(torch.split(heads, self.branches, dim=2))

    def head_outputs(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The head's outputs for observations without memory, one ``[B, K, n_d]`` tensor per
        branch.

        :param inputs: one tensor per observation, ``[B, *obs_shape]``.
        """
        encoding, _ = self.network_body(inputs)  # [B, encoding_size]
        return self.heads(encoding)

    def unroll(
        self, inputs: list[torch.Tensor], memories: torch.Tensor, sequence_length: int
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Run ``B`` sequences of ``L`` steps from their states: the head's outputs per
        branch ``[B * L, K, n_d]`` (sequence-major) and the states after them ``[1, B, M]``.

        :param inputs: one tensor per observation, ``[B * L, *obs_shape]`` (each sequence's
            steps one after the other).
        :param memories: the states before each sequence, ``[1, B, M]``.
        """
        encoding, memories = self.network_body(
            inputs, memories=memories, sequence_length=sequence_length
        )
        return self.heads(encoding), memories

    def q_from_head(self, outputs: torch.Tensor) -> torch.Tensor:
        """One branch's Q-values ``[B, n_d]`` from its head outputs ``[B, K, n_d]`` (the hook:
        the mean over ``K`` here, the value itself when ``K = 1``)."""
        return outputs.mean(dim=1)

    def q_values(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """One ``[B, n_d]`` tensor of Q-values per branch; ``inputs`` ``[B, *obs_shape]`` each."""
        return [self.q_from_head(outputs) for outputs in self.head_outputs(inputs)]

    def greedy_actions(
        self, inputs: list[torch.Tensor], masks: torch.Tensor | None = None
    ) -> torch.Tensor:
        """argmax over allowed actions per branch: long ``[B, n_branches]``."""
        return self._argmax_allowed(self.q_values(inputs), masks)

    def _argmax_allowed(
        self, q_per_branch: list[torch.Tensor], masks: torch.Tensor | None
    ) -> torch.Tensor:
        """Each branch's argmax over its allowed actions: long ``[B, n_branches]``."""
        allowed = branch_masks(masks, self.branches, q_per_branch[0].shape[0])
        return torch.stack(
            [
                masked_q_values(q, a).argmax(dim=1)
                for q, a in zip(q_per_branch, allowed, strict=True)
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
        """Epsilon-greedy actions (each row explores on its own), masks respected; with
        memory each agent's state goes one step on (``memories`` ``[1, B, M]``)."""
        with torch.no_grad():
            if self.memory_size:
                greedy, memories = self._recurrent_greedy(inputs, masks, memories)
            else:
                greedy = self.greedy_actions(inputs, masks)
            allowed = branch_masks(masks, self.branches, greedy.shape[0])
            actions = epsilon_greedy(greedy, allowed, self.exploration_epsilon, self._generator)
        action = AgentAction(None, [actions[:, d : d + 1] for d in range(len(self.branches))])
        return action, {"env_action": action.to_action_tuple()}, memories

    def _recurrent_greedy(
        self, inputs: list[torch.Tensor], masks: torch.Tensor | None, memories: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy actions of one step from ``memories`` ``[1, B, M]`` (zeros when ``None``),
        and the states after it."""
        batch = inputs[0].shape[0]
        if memories is None:
            memories = torch.zeros(1, batch, self.memory_size)
        outputs, memories = self.unroll(inputs, memories, 1)
        return self._argmax_allowed([self.q_from_head(o) for o in outputs], masks), memories

    def forward(
        self,
        inputs: list[torch.Tensor],
        masks: torch.Tensor | None = None,
        memories: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """The exported model: version, memory size, greedy actions as both the sampled and
        the deterministic discrete outputs, the branch sizes, and with memory the state
        after the step (Unity's ``recurrent_out``)."""
        recurrent_out: tuple[torch.Tensor, ...] = ()
        if not self.memory_size:
            greedy = self.greedy_actions(inputs, masks)
        else:
            greedy, memories_out = self._recurrent_greedy(inputs, masks, memories)
            recurrent_out = (memories_out,)
        return (
            self.version_number,
            self.memory_size_vector,
            greedy,
            self.discrete_act_size_vector,
            greedy,
            *recurrent_out,
        )


class EpsilonGreedyQPolicy(TorchPolicy):
    """A ``TorchPolicy`` whose Q-network actor acts epsilon-greedily, epsilon following the
    environment step.

    At each decision step every agent independently takes, with probability ``epsilon``, a
    uniformly random allowed action in every discrete branch, otherwise the greedy one
    (each branch's argmax over its allowed actions). The exported ONNX model is greedy.

    :param seed: seed of the network initialisation and of the exploration draws.
    :param behavior_spec: the behavior (discrete actions only).
    :param network_settings: the YAML's ``network_settings`` (``memory``: a recurrent
        Q-network, each agent's state kept by mlagents' policy from step to step).
    :param epsilon: the exploration rate as a function of the environment step, e.g.
        :class:`~mla_plugin_core.trainers.schedules.ScheduledValue` ``("linear", 1.0, 0.05, 10_000)``.
    :param actor_cls: the Q-network, :class:`DiscreteQActor` or a subclass with the same
        ``exploration_epsilon`` attribute.
    :param actor_kwargs: extra arguments of ``actor_cls``, added to ``{"seed": seed}``
        (which they may override).
    :param greedy: act greedily whatever the step (runs that do not train).
    :param training_step: the step epsilon follows; default this policy's own. A trainer
        passes its own step: under self-play mlagents acts with copies of the policy that
        get the trainer's weights but never a step, and would explore at the initial
        epsilon for the whole run.
    """

    def __init__(
        self,
        seed: int,
        behavior_spec: BehaviorSpec,
        network_settings: NetworkSettings,
        epsilon: Callable[[int], float],
        actor_cls: type = DiscreteQActor,
        actor_kwargs: dict[str, Any] | None = None,
        greedy: bool = False,
        training_step: Callable[[], int] | None = None,
    ):
        kwargs = {"seed": seed, **(actor_kwargs or {})}
        super().__init__(seed, behavior_spec, network_settings, actor_cls, kwargs)
        self.epsilon_schedule = epsilon
        self.greedy = greedy
        self.training_step = training_step or self.get_current_step

    @property
    def epsilon(self) -> float:
        """The probability of a random action now."""
        return 0.0 if self.greedy else float(self.epsilon_schedule(self.training_step()))

    def evaluate(self, decision_requests: DecisionSteps, global_agent_ids: list[str]) -> Any:
        self.actor.exploration_epsilon = self.epsilon  # type: ignore[union-attr]
        return super().evaluate(decision_requests, global_agent_ids)
