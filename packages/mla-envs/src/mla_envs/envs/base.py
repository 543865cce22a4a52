"""What every environment offers the protocol: one behavior, N agents, numpy batches.

An environment here is *vectorised*: it simulates ``num_agents`` copies of one task in
lock step and exchanges whole batches with the protocol layer, which turns them into
Unity's per-agent messages. One exchange with the trainer is one decision for every
agent of every behavior.

Agents are numbered ``0 .. num_agents - 1``; an agent keeps its id across episodes, as
in Unity. When an agent's episode ends during a step, the environment resets that agent
at once and reports it twice: in the *terminal* batch (last observation, final reward)
and in the *decision* batch (first observation of its next episode, reward 0).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from mla_envs.parameters import EnvironmentParameters


@dataclass(frozen=True)
class BehaviorSpec:
    """The fixed interface of one behavior, sent to the trainer once per reset.

    :param name: behavior name, the key of ``behaviors:`` in a trainer YAML.
    :param observation_shapes: one shape per observation, without the agent axis.
    :param continuous_size: number of continuous actions (each in [-1, 1]).
    :param discrete_branches: size of each discrete action branch.
    """

    name: str
    observation_shapes: tuple[tuple[int, ...], ...]
    continuous_size: int = 0
    discrete_branches: tuple[int, ...] = ()

    @property
    def mask_size(self) -> int:
        """Length of one agent's action mask: the sum of the branch sizes."""
        return int(sum(self.discrete_branches))


class AgentBatch(NamedTuple):
    """Several agents of one behavior at one decision point.

    :param agent_ids: ``[n]`` int, agent ids.
    :param observations: one float32 array ``[n, *shape]`` per observation.
    :param rewards: ``[n]`` float32, reward since the agent's last decision.
    :param interrupted: ``[n]`` bool; only meaningful in a terminal batch: the
        episode hit its step limit (``max_step_reached``) rather than ending.
    :param action_masks: ``[n, mask_size]`` bool, True = action forbidden; or None
        when every action is allowed.
    """

    agent_ids: np.ndarray
    observations: tuple[np.ndarray, ...]
    rewards: np.ndarray
    interrupted: np.ndarray
    action_masks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.agent_ids)

    def select(self, index: np.ndarray) -> AgentBatch:
        """The agents at ``index`` (an int array or a boolean mask over agents)."""
        return AgentBatch(
            self.agent_ids[index],
            tuple(obs[index] for obs in self.observations),
            self.rewards[index],
            self.interrupted[index],
            None if self.action_masks is None else self.action_masks[index],
        )


class Actions(NamedTuple):
    """Actions for every agent of one behavior, in agent-id order.

    :param continuous: ``[n, continuous_size]`` float32 in [-1, 1].
    :param discrete: ``[n, len(discrete_branches)]`` int32.
    """

    continuous: np.ndarray
    discrete: np.ndarray


class VectorEnv(ABC):
    """``num_agents`` copies of one task, stepped together.

    Subclasses set :attr:`spec`, :attr:`num_agents` and :attr:`seconds_per_step`, and
    implement :meth:`seed`, :meth:`reset` and :meth:`step`.
    """

    #: The behavior this environment simulates.
    spec: BehaviorSpec
    #: Number of agents (copies of the task).
    num_agents: int
    #: Simulated seconds per decision; used to honour the engine's time scale.
    seconds_per_step: float = 0.02

    def __init__(self, parameters: EnvironmentParameters | None = None) -> None:
        self.parameters = parameters or EnvironmentParameters()

    @abstractmethod
    def seed(self, seed: int) -> None:
        """Seed the random generators; called once, before the first :meth:`reset`.

        :param seed: the run's seed (``rl_initialization_input.seed``, which
            ``mlagents-learn`` sets to ``--seed`` plus the worker id).
        """

    @abstractmethod
    def reset(self) -> AgentBatch:
        """Start a new episode for every agent.

        :return: the decision batch of all agents (rewards 0).
        """

    @abstractmethod
    def step(self, actions: Actions) -> tuple[AgentBatch, AgentBatch]:
        """Apply one decision's actions and advance to the next decision.

        :param actions: one action per agent, in agent-id order.
        :return: ``(terminal, decision)``: the agents whose episode ended during this
            step, and every agent's next decision (ended agents already reset).
        """

    def stats(self) -> dict[str, float]:
        """Values to report to the trainer's stats side channel (averaged there)."""
        return {}

    def close(self) -> None:
        """Release resources (subprocesses, files); the default has none."""
        return None

    def empty_batch(self) -> AgentBatch:
        """A batch with no agents, shaped for this behavior."""
        return AgentBatch(
            np.zeros(0, dtype=np.int32),
            tuple(
                np.zeros((0, *shape), dtype=np.float32) for shape in self.spec.observation_shapes
            ),
            np.zeros(0, dtype=np.float32),
            np.zeros(0, dtype=bool),
            None,
        )
