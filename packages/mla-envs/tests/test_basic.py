"""Basic follows Unity's BasicController rules exactly."""

import numpy as np
import pytest

from mla_envs.envs import Actions, BasicEnv

STAY, LEFT, RIGHT = 0, 1, 2


def act(env: BasicEnv, action: int) -> Actions:
    discrete = np.full((env.num_agents, 1), action, dtype=np.int32)
    return Actions(np.zeros((env.num_agents, 0), np.float32), discrete)


def position(batch) -> np.ndarray:
    return batch.observations[0].argmax(axis=1)


def test_spec_and_start():
    env = BasicEnv(num_agents=3)
    assert env.spec.name == "Basic"
    assert env.spec.observation_shapes == ((20,),)
    assert env.spec.discrete_branches == (3,)
    assert env.spec.continuous_size == 0
    batch = env.reset()
    np.testing.assert_array_equal(position(batch), [10, 10, 10])
    assert batch.observations[0].sum(axis=1).tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(batch.rewards, 0)


def test_large_goal_pays_one_after_seven_steps():
    env = BasicEnv(num_agents=2)
    env.reset()
    total = np.zeros(2)
    for step in range(7):
        terminal, decision = env.step(act(env, RIGHT))
        total += decision.rewards
        if step < 6:
            assert len(terminal) == 0
            np.testing.assert_allclose(decision.rewards, -0.01, rtol=1e-6)
            np.testing.assert_array_equal(position(decision), 11 + step)
    np.testing.assert_array_equal(terminal.agent_ids, [0, 1])
    np.testing.assert_allclose(terminal.rewards, 0.99, rtol=1e-6)
    assert not terminal.interrupted.any()
    np.testing.assert_array_equal(position(terminal), 17)
    # Reported again for the next episode: back at 10, reward 0.
    np.testing.assert_array_equal(position(decision), 10)
    np.testing.assert_array_equal(decision.rewards, 0)
    assert total.sum() + terminal.rewards.sum() == pytest.approx(2 * 0.93)


def test_small_goal_and_stay():
    env = BasicEnv(num_agents=1)
    env.reset()
    terminal, decision = env.step(act(env, STAY))
    np.testing.assert_array_equal(position(decision), 10)
    assert decision.rewards[0] == pytest.approx(-0.01)
    for _ in range(3):
        terminal, decision = env.step(act(env, LEFT))
    assert terminal.rewards[0] == pytest.approx(0.09)
    np.testing.assert_array_equal(position(terminal), 7)


def test_agents_are_independent():
    env = BasicEnv(num_agents=2)
    env.reset()
    actions = Actions(np.zeros((2, 0), np.float32), np.array([[RIGHT], [STAY]], np.int32))
    for _ in range(7):
        terminal, decision = env.step(actions)
    np.testing.assert_array_equal(terminal.agent_ids, [0])
    np.testing.assert_array_equal(position(decision), [10, 10])
