"""What every trainer does with an incoming trajectory, whatever its algorithm.

Shared by :class:`~mla_plugin_core.on_policy.OnPolicyPluginTrainer` and
:class:`~mla_plugin_core.off_policy.OffPolicyPluginTrainer`.
"""

from __future__ import annotations

import numpy as np
from mlagents.trainers.buffer import AgentBuffer, BufferKey
from mlagents.trainers.trainer.rl_trainer import RLTrainer


def update_normalization(trainer: RLTrainer, buffer: AgentBuffer) -> None:
    """Update the running observation statistics of the actor and, if any, the critic.

    Only while training: a frozen (inference) run must not drift its normaliser.
    """
    if not trainer.is_training:
        return
    trainer.policy.actor.update_normalization(buffer)  # type: ignore[attr-defined]
    try:
        critic = trainer.optimizer.critic  # type: ignore[attr-defined]
    except (AttributeError, NotImplementedError):  # optimizers without a critic (DQN)
        critic = None
    if critic is not None and critic is not trainer.policy.actor:  # type: ignore[attr-defined]
        critic.update_normalization(buffer)


def evaluate_reward_signals(
    trainer: RLTrainer, buffer: AgentBuffer, agent_id: str
) -> dict[str, np.ndarray]:
    """Evaluate every reward signal of the trainer on a trajectory and record the totals.

    :param buffer: the trajectory as an ``AgentBuffer`` (length T).
    :param agent_id: the trajectory's agent, whose running episode totals are updated
        (reported by mlagents at episode end as "Environment/Cumulative Reward" and
        "Policy/<Signal> Reward").
    :return: reward-signal name -> float32 array [T] of rewards already scaled by the
        signal's ``strength``.
    """
    trainer.collected_rewards["environment"][agent_id] += float(
        np.sum(buffer[BufferKey.ENVIRONMENT_REWARDS].get_batch())
    )
    rewards: dict[str, np.ndarray] = {}
    for name, signal in trainer.optimizer.reward_signals.items():  # type: ignore[attr-defined]
        values = np.asarray(signal.evaluate(buffer), dtype=np.float32) * signal.strength
        rewards[name] = values
        trainer.collected_rewards[name][agent_id] += float(np.sum(values))
    return rewards
