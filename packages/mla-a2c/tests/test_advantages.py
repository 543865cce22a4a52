"""Advantages and returns of A2C trajectories, computed by hand on tiny examples.

The critic is made constant (V(s) = C for every s) so that the expected n-step returns can be
written down: with ``lambd = 1`` GAE is the n-step return minus V,
``G_t = r_t + gamma * r_{t+1} + ... + gamma^(T-t) * V_boot``, where ``V_boot`` is 0 after a
real terminal and V(next_obs) = C after a time-horizon cut or a max-step interruption.
"""

import numpy as np
import pytest
import torch
from a2c_testkit import make_trainer
from mlagents.trainers.buffer import BufferKey, RewardSignalUtil
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.testing.builders import random_trajectory, vector_behavior_spec

GAMMA = 0.9  # the extrinsic gamma of make_trainer
C = 0.5  # the constant value the critic is set to
REWARDS = [1.0, 0.0, 2.0]


def constant_critic(trainer, value: float) -> None:
    heads = trainer.optimizer.critic.value_heads.value_heads
    with torch.no_grad():
        for head in heads.values():
            head.weight.zero_()
            head.bias.fill_(value)


def n_step_returns(rewards: list[float], bootstrap: float, gamma: float) -> np.ndarray:
    returns = np.zeros(len(rewards))
    running = bootstrap
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


@pytest.mark.parametrize(
    "done, interrupted, bootstrap",
    [(True, False, 0.0), (True, True, C), (False, False, C)],
    ids=["terminal", "max-step-interrupted", "time-horizon-cut"],
)
def test_n_step_returns_bootstrap_only_when_not_terminal(tmp_path, done, interrupted, bootstrap):
    trainer = make_trainer(
        vector_behavior_spec(ActionSpec.create_discrete((3,))), tmp_path, lambd=1.0
    )
    constant_critic(trainer, C)
    trainer._process_trajectory(
        random_trajectory(trainer.policy.behavior_spec, REWARDS, done, interrupted)
    )

    buffer = trainer.update_buffer
    expected_returns = n_step_returns(REWARDS, bootstrap, GAMMA)
    returns = np.array(buffer[RewardSignalUtil.returns_key("extrinsic")].get_batch())
    advantages = np.array(buffer[BufferKey.ADVANTAGES].get_batch())
    np.testing.assert_allclose(returns, expected_returns, rtol=1e-5)
    np.testing.assert_allclose(advantages, expected_returns - C, rtol=1e-5, atol=1e-6)


def test_gae_lambda_weights_td_errors(tmp_path):
    lambd = 0.5
    trainer = make_trainer(
        vector_behavior_spec(ActionSpec.create_continuous(2)), tmp_path, lambd=lambd
    )
    constant_critic(trainer, C)
    trainer._process_trajectory(
        random_trajectory(trainer.policy.behavior_spec, REWARDS, done=False)
    )

    # delta_t = r_t + gamma * C - C for every step (the cut bootstraps from V = C too)
    deltas = np.array(REWARDS) + GAMMA * C - C
    expected = np.array(
        [
            deltas[0] + GAMMA * lambd * deltas[1] + (GAMMA * lambd) ** 2 * deltas[2],
            deltas[1] + GAMMA * lambd * deltas[2],
            deltas[2],
        ]
    )
    advantages = np.array(trainer.update_buffer[BufferKey.ADVANTAGES].get_batch())
    np.testing.assert_allclose(advantages, expected, rtol=1e-5)


def test_policy_advantage_is_the_mean_over_reward_signals(tmp_path):
    from mlagents.trainers.settings import CuriositySettings, RewardSignalType

    trainer = make_trainer(
        vector_behavior_spec(ActionSpec.create_discrete((3, 2))),
        tmp_path,
        extra_signals={RewardSignalType.CURIOSITY: CuriositySettings(gamma=0.99, strength=0.1)},
    )
    trainer._process_trajectory(random_trajectory(trainer.policy.behavior_spec, REWARDS, done=True))

    buffer = trainer.update_buffer
    per_signal = [
        np.array(buffer[RewardSignalUtil.advantage_key(name)].get_batch())
        for name in ("extrinsic", "curiosity")
    ]
    assert not np.allclose(per_signal[0], per_signal[1]), "the signals must differ to test"
    np.testing.assert_allclose(
        buffer[BufferKey.ADVANTAGES].get_batch(), np.mean(per_signal, axis=0), rtol=1e-5
    )
