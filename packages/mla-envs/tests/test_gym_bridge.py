"""The Gymnasium bridge, in process."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from mla_envs.envs import Actions, UnknownEnvironmentError, UnsupportedSpaceError, make
from mla_envs.envs.gym_bridge import ActionCodec, GymnasiumEnv, behavior_name


def actions(env, continuous=None, discrete=None) -> Actions:
    n = env.num_agents
    return Actions(
        np.zeros((n, env.spec.continuous_size), np.float32) if continuous is None else continuous,
        np.zeros((n, len(env.spec.discrete_branches)), np.int32) if discrete is None else discrete,
    )


def test_cartpole_spec_and_episode():
    env = make("gym:CartPole-v1", num_agents=3)
    assert env.spec.name == "CartPole-v1"
    assert env.spec.observation_shapes == ((4,),)
    assert env.spec.discrete_branches == (2,) and env.spec.continuous_size == 0
    env.seed(0)
    batch = env.reset()
    assert batch.observations[0].shape == (3, 4) and batch.action_masks is None
    # Always pushing left topples the pole: terminated, not truncated.
    ended = []
    for _ in range(30):
        terminal, decision = env.step(actions(env))
        ended += terminal.agent_ids.tolist()
        assert not terminal.interrupted.any()
        np.testing.assert_array_equal(terminal.rewards, 1.0)
        # The ended copies start over: reward 0 in their first decision.
        np.testing.assert_array_equal(decision.rewards[terminal.agent_ids], 0.0)
    assert sorted(set(ended)) == [0, 1, 2]


def test_truncation_is_max_step_reached():
    env = GymnasiumEnv("CartPole-v1", num_agents=2, max_episode_steps=3)
    env.seed(0)
    env.reset()
    alternate = np.array([[0], [1]], np.int32)
    for _ in range(3):
        terminal, _ = env.step(actions(env, discrete=alternate))
    assert terminal.agent_ids.tolist() == [0, 1] and terminal.interrupted.all()


def test_box_actions_are_rescaled_to_the_bounds():
    codec = ActionCodec("x", spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 10.0])))
    np.testing.assert_allclose(codec.decode(np.array([-1.0, -1.0]), None), [-2.0, 0.0])
    np.testing.assert_allclose(codec.decode(np.array([1.0, 0.0]), None), [2.0, 5.0])
    unbounded = ActionCodec("x", spaces.Box(-np.inf, np.inf, (1,)))
    np.testing.assert_allclose(unbounded.decode(np.array([0.7]), None), [0.7])


def test_pendulum_continuous():
    env = make("gym:Pendulum-v1", num_agents=2)
    assert env.spec.continuous_size == 1 and env.spec.discrete_branches == ()
    env.seed(0)
    env.reset()
    terminal, decision = env.step(actions(env, continuous=np.ones((2, 1), np.float32)))
    assert len(terminal) == 0 and (decision.rewards < 0).all()


def test_discrete_multidiscrete_multibinary():
    assert ActionCodec("x", spaces.Discrete(4, start=1)).decode(None, np.array([0])) == 1
    multi = ActionCodec("x", spaces.MultiDiscrete([3, 2]))
    assert multi.branches == (3, 2)
    assert multi.decode(None, np.array([2, 1])).tolist() == [2, 1]
    assert ActionCodec("x", spaces.MultiBinary(3)).branches == (2, 2, 2)


def test_discrete_observations_are_one_hot_and_masks_pass_through():
    taxi = next(i for i in ("Taxi-v4", "Taxi-v3") if i in gymnasium.registry)
    env = make(f"gym:{taxi}", num_agents=2)
    assert env.spec.observation_shapes == ((500,),)
    env.seed(0)
    batch = env.reset()
    np.testing.assert_array_equal(batch.observations[0].sum(axis=1), 1.0)
    # Taxi reports info["action_mask"] (1 = allowed); ML-Agents wants True = forbidden.
    assert batch.action_masks is not None and batch.action_masks.shape == (2, 6)
    assert batch.action_masks.any() and not batch.action_masks.all()


@pytest.mark.parametrize(
    "space, message",
    [
        (spaces.Dict({"a": spaces.Discrete(2)}), "action space Dict"),
        (spaces.Tuple((spaces.Discrete(2),)), "action space Tuple"),
    ],
)
def test_unsupported_action_spaces_are_named(space, message):
    with pytest.raises(UnsupportedSpaceError, match=message) as error:
        ActionCodec("Some-v0", space)
    assert "Box, Discrete, MultiDiscrete, MultiBinary" in str(error.value)


def test_unknown_ids_list_the_registered_ones():
    with pytest.raises(UnknownEnvironmentError, match="CartPole-v1"):
        make("gym:NoSuchEnv-v0")
    with pytest.raises(UnknownEnvironmentError, match="Basic, 3DBall"):
        make("Basik")


def test_behavior_names_are_sanitized():
    assert behavior_name("CartPole-v1") == "CartPole-v1"
    assert behavior_name("ALE/Pong-v5") == "ALE_Pong-v5"
    assert behavior_name("a?team=1") == "a_team_1"


def test_same_seed_same_observations():
    def first_obs(seed):
        env = make("gym:CartPole-v1", num_agents=2)
        env.seed(seed)
        return env.reset().observations[0]

    np.testing.assert_array_equal(first_obs(3), first_obs(3))
    assert not np.array_equal(first_obs(3)[0], first_obs(3)[1])  # copies differ
    assert not np.array_equal(first_obs(3), first_obs(4))
