"""3DBall: rules from Ball3DAgent.cs, and dynamics that reward balancing."""

import numpy as np
import pytest

from mla_envs.envs import Actions, Ball3DEnv
from mla_envs.envs.ball3d import DEGREES_PER_STEP, TILT_LIMIT
from mla_envs.parameters import EnvironmentParameters

NO_DISCRETE = np.zeros((0, 0), np.int32)


def act(continuous: np.ndarray) -> Actions:
    return Actions(continuous.astype(np.float32), np.zeros((len(continuous), 0), np.int32))


def pd_controller(obs: np.ndarray) -> np.ndarray:
    """Tilt towards the ball's offset and speed; steer the tilt with the rate actions."""
    rot_z, rot_x, x, _, z, vx, _, vz = obs.T
    target_z = np.clip(0.04 * x + 0.03 * vx, -0.2, 0.2)
    target_x = np.clip(-(0.04 * z + 0.03 * vz), -0.2, 0.2)
    # One full action turns the quaternion component by about sin(1 deg) per step.
    per_step = np.sin(np.radians(DEGREES_PER_STEP / 2))
    return np.clip(np.stack([target_z - rot_z, target_x - rot_x], 1) / per_step, -1, 1)


def episode_lengths(env: Ball3DEnv, policy, decisions: int) -> tuple[list[int], int]:
    """Lengths (in decisions) of episodes that ended by a fall, and timeouts seen."""
    obs = env.reset().observations[0]
    length = np.zeros(env.num_agents, dtype=int)
    falls, timeouts = [], 0
    for _ in range(decisions):
        terminal, decision = env.step(act(policy(obs)))
        length += 1
        for agent, interrupted in zip(terminal.agent_ids, terminal.interrupted, strict=True):
            if interrupted:
                timeouts += 1
            else:
                falls.append(int(length[agent]))
            length[agent] = 0
        obs = decision.observations[0]
    return falls, timeouts


def test_spec():
    env = Ball3DEnv()
    assert env.num_agents == 12
    assert env.spec.name == "3DBall"
    assert env.spec.observation_shapes == ((8,),)
    assert env.spec.continuous_size == 2
    assert env.spec.discrete_branches == ()


def test_start_state():
    env = Ball3DEnv(num_agents=200)
    env.seed(0)
    obs = env.reset().observations[0]
    rot_z, rot_x, x, y, z = obs[:, :5].T
    np.testing.assert_allclose(y, 4.0)
    assert np.abs(x).max() <= 1.5 and np.abs(z).max() <= 1.5
    assert np.abs(x).max() > 1.2  # spread over the whole range
    # Start tilt up to 10 degrees: quaternion component up to sin(5 deg).
    assert np.abs(rot_z).max() <= np.sin(np.radians(5)) + 1e-6
    assert np.abs(rot_x).max() > 0.05
    np.testing.assert_array_equal(obs[:, 5:], 0.0)


def test_pd_controller_balances_for_whole_episodes():
    env = Ball3DEnv(num_agents=24)
    env.seed(1)
    falls, timeouts = episode_lengths(env, pd_controller, decisions=1100)
    assert falls == []
    assert timeouts == 24  # every agent reached max_step (1000 decisions)


def test_random_actions_drop_the_ball_quickly():
    env = Ball3DEnv(num_agents=48)
    env.seed(2)
    rng = np.random.default_rng(0)
    falls, timeouts = episode_lengths(env, lambda o: rng.uniform(-1, 1, (len(o), 2)), 200)
    assert timeouts == 0
    assert 5 < np.mean(falls) < 100


def test_fall_is_minus_one_and_alive_is_point_one():
    env = Ball3DEnv(num_agents=4)
    env.seed(3)
    env.reset()
    terminal, decision = env.step(act(np.zeros((4, 2))))
    np.testing.assert_allclose(decision.rewards, 0.1)
    # Tilt hard one way: the ball rolls off.
    for _ in range(200):
        terminal, decision = env.step(act(np.ones((4, 2))))
        if len(terminal):
            break
    np.testing.assert_allclose(terminal.rewards, -1.0)
    assert not terminal.interrupted.any()
    fallen = terminal.observations[0]
    assert (
        (np.abs(fallen[:, 2]) > 3).any()
        or (np.abs(fallen[:, 4]) > 3).any()
        or (fallen[:, 3] < -2).any()
    )


def test_tilt_stops_at_the_limit():
    env = Ball3DEnv(num_agents=2)
    env.seed(4)
    env.reset()
    for _ in range(40):
        env.step(act(np.array([[1.0, -1.0], [-1.0, 1.0]])))
    # Each physics step adds at most sin(1 deg) past the 0.25 limit.
    overshoot = np.sin(np.radians(DEGREES_PER_STEP / 2))
    assert np.abs(env.rotation[:, [0, 2]]).max() <= TILT_LIMIT + overshoot
    assert np.abs(env.rotation[:, [0, 2]]).min() >= TILT_LIMIT


def test_same_seed_same_episodes():
    def run(seed):
        env = Ball3DEnv(num_agents=3)
        env.seed(seed)
        env.reset()
        rng = np.random.default_rng(0)
        return np.stack(
            [env.step(act(rng.uniform(-1, 1, (3, 2))))[1].observations[0] for _ in range(50)]
        )

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def env_with(key: str, value: float, num_agents: int) -> Ball3DEnv:
    """A reset 3DBall whose parameter ``key`` is fixed to ``value``."""
    parameters = EnvironmentParameters()
    parameters.set_float(key, value)
    env = Ball3DEnv(num_agents=num_agents, parameters=parameters)
    env.seed(0)
    env.reset()
    return env


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_scale_sets_the_resting_height(scale):
    env = env_with("scale", scale, num_agents=4)
    env.rotation[:] = [0, 0, 0, 1]  # level, so the ball settles straight down
    env.ball_position[:, [0, 2]] = 0.0
    for _ in range(20):
        terminal, decision = env.step(act(np.zeros((4, 2))))
    np.testing.assert_allclose(decision.observations[0][:, 3], 2.5 + 0.5 * scale, atol=1e-6)
    assert env.stats()["3DBall/Ball Scale"] == pytest.approx(scale)


def test_a_light_ball_is_slowed_more():
    """Mass acts through air drag: after the same tilt, a light ball rolls slower."""

    def speed_after_roll(mass):
        env = env_with("mass", mass, num_agents=1)
        env.rotation[:] = [0, 0, np.sin(np.radians(10)), np.cos(np.radians(10))]
        env.ball_position[:] = [0.0, 3.0, 0.0]
        for _ in range(6):
            _, decision = env.step(act(np.zeros((1, 2))))
        return np.linalg.norm(decision.observations[0][0, 5:])

    assert speed_after_roll(0.2) < 0.97 * speed_after_roll(10.0)


def test_samplers_draw_per_episode():
    parameters = EnvironmentParameters()
    rng = np.random.default_rng(0)
    parameters.set_sampler("mass", lambda n: rng.uniform(1, 5, n))
    env = Ball3DEnv(num_agents=50, parameters=parameters)
    env.seed(0)
    env.reset()
    assert 1 <= env.mass.min() < env.mass.max() <= 5
