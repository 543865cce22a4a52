"""The environments through real gRPC, driven by mlagents' own client.

Each test starts a console script the way ``mlagents-learn --env`` does, through
``mlagents_envs.environment.UnityEnvironment(file_name=...)``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import numpy as np
import pytest
from envs_testkit import TESTS, free_port, script
from mlagents_envs.base_env import ActionTuple
from mlagents_envs.environment import UnityEnvironment
from mlagents_envs.side_channel.engine_configuration_channel import (
    EngineConfigurationChannel,
)
from mlagents_envs.side_channel.environment_parameters_channel import (
    EnvironmentParametersChannel,
)
from mlagents_envs.side_channel.stats_side_channel import StatsSideChannel

from mla_envs.envs import Actions, Ball3DEnv


@contextlib.contextmanager
def unity_env(executable: str, *args: str, seed: int = 0, side_channels=(), **kwargs):
    """A started environment; closed (and its process reaped) on exit."""
    env = UnityEnvironment(
        file_name=script(executable),
        base_port=free_port(),
        seed=seed,
        no_graphics=True,
        additional_args=list(args),
        side_channels=list(side_channels),
        timeout_wait=60,
        **kwargs,
    )
    try:
        yield env
    finally:
        env.close()


def discrete(*rows) -> ActionTuple:
    return ActionTuple(discrete=np.array(rows, dtype=np.int32))


def test_basic_reset_step_terminal(tmp_path):
    with unity_env("mla-env-basic", "--num-agents", "2", log_folder=str(tmp_path)) as env:
        env.reset()
        spec = env.behavior_specs["Basic"]
        assert [o.shape for o in spec.observation_specs] == [(20,)]
        assert spec.action_spec.discrete_branches == (3,)
        assert spec.action_spec.continuous_size == 0
        decision, terminal = env.get_steps("Basic")
        assert sorted(decision.agent_id) == [0, 1] and len(terminal) == 0
        assert decision.obs[0][:, 10].tolist() == [1.0, 1.0]
        for step in range(7):
            env.set_actions("Basic", discrete([2], [0]))
            env.step()
            decision, terminal = env.get_steps("Basic")
            if step < 6:
                assert len(terminal) == 0
                np.testing.assert_allclose(decision.reward, -0.01, rtol=1e-5)
        # Agent 0 reached the large goal: terminal info and, in the same message, the
        # first decision of its next episode.
        assert terminal.agent_id.tolist() == [0]
        assert terminal.reward[0] == pytest.approx(0.99)
        assert not terminal.interrupted[0]
        assert terminal.obs[0][0].argmax() == 17
        assert decision.agent_id.tolist() == [0, 1]
        assert decision.obs[0][0].argmax() == 10 and decision.reward[0] == 0
    log = (tmp_path / "Player-0.log").read_text()
    # UnityEnvironment.close() hands its status-400 reply to the gRPC thread and stops the
    # server without grace, so the env sees either that reply or the cancelled call.
    assert "Connected to trainer" in log
    assert "Trainer closed (status 400)" in log or "Trainer gone" in log, log


def test_several_behaviors_branches_masks_and_interruptions(monkeypatch):
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    args = ["Basic", "3DBall", "gym:branchy_env:Branchy-v0", "--num-agents", "3"]
    with unity_env("mla-env", *args) as env:
        env.reset()
        assert set(env.behavior_specs) == {"Basic", "3DBall", "Branchy-v0"}
        ball = env.behavior_specs["3DBall"]
        assert ball.action_spec.continuous_size == 2
        assert [o.shape for o in ball.observation_specs] == [(8,)]
        branchy = env.behavior_specs["Branchy-v0"]
        assert branchy.action_spec.discrete_branches == (3, 2)
        decision, _ = env.get_steps("Branchy-v0")
        # Masks: one array per branch, True = forbidden; a0 = 1 allowed at step 0.
        assert [m.shape for m in decision.action_mask] == [(3, 3), (3, 2)]
        assert not decision.action_mask[0].any()

        rewards, interrupted, ended = [], [], []
        for step in range(5):
            env.set_actions("Branchy-v0", discrete([0, 1], [2, 0], [2, 1]))
            env.set_actions("3DBall", ActionTuple(continuous=np.zeros((3, 2), np.float32)))
            env.step()
            decision, terminal = env.get_steps("Branchy-v0")
            if step == 0:
                # Both branches reached the env: a0 + 10 * a1.
                assert decision.reward.tolist() == [10.0, 2.0, 0.0]
                assert decision.obs[0][:2, 1:].tolist() == [[0, 1], [2, 0]]
                # Odd step: a0 = 1 masked; agent 2 restarted at step 0: allowed.
                assert decision.action_mask[0][:, 1].tolist() == [True, True, False]
                assert terminal.agent_id.tolist() == [2]  # (2, 1) terminates
                assert terminal.reward[0] == 12.0 and not terminal.interrupted[0]
            rewards.append(decision.reward)
            interrupted += terminal.interrupted.tolist()
            ended += terminal.agent_id.tolist()
        # Agents 0 and 1 ran into the 5-step TimeLimit: max_step_reached.
        assert sorted(a for a, i in zip(ended, interrupted, strict=True) if i) == [0, 1]
        assert len(env.get_steps("3DBall")[0]) == 3
        assert len(env.get_steps("Basic")[0]) == 3


def test_environment_parameters_and_stats_reach_through_side_channels():
    parameters = EnvironmentParametersChannel()
    parameters.set_float_parameter("scale", 2.0)
    parameters.set_uniform_sampler_parameters("mass", 2.0, 3.0, seed=7)
    stats = StatsSideChannel()
    engine = EngineConfigurationChannel()
    engine.set_configuration_parameters(time_scale=100.0)
    channels = [parameters, stats, engine]
    with unity_env("mla-env-3dball", "--stats-period", "0", side_channels=channels) as env:
        env.reset()
        for _ in range(3):
            env.step()
        reported = stats.get_and_reset_stats()
    scale = [value for value, _ in reported["3DBall/Ball Scale"]]
    mass = [value for value, _ in reported["3DBall/Ball Mass"]]
    assert scale and all(v == pytest.approx(2.0) for v in scale)
    assert mass and all(2.0 <= v <= 3.0 for v in mass)
    assert all(v > 0 for v, _ in reported["Environment Side/Agent Steps per Busy Second"])


def test_the_trainer_seed_makes_runs_reproducible():
    """The seed the trainer sends drives the env: same seed, same episodes."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (30, 2, 2)).astype(np.float32)

    def over_grpc(seed: int) -> np.ndarray:
        with unity_env("mla-env-3dball", "--num-agents", "2", seed=seed) as env:
            env.reset()
            observations = [env.get_steps("3DBall")[0].obs[0]]
            for action in actions:
                env.set_actions("3DBall", ActionTuple(continuous=action))
                env.step()
                observations.append(env.get_steps("3DBall")[0].obs[0])
        return np.stack(observations)

    def in_process(seed: int) -> np.ndarray:
        env = Ball3DEnv(num_agents=2)
        env.seed(seed)
        observations = [env.reset().observations[0]]
        for action in actions:
            observations.append(
                env.step(Actions(action, np.zeros((2, 0), np.int32)))[1].observations[0]
            )
        return np.stack(observations)

    np.testing.assert_array_equal(over_grpc(11), in_process(11))
    assert not np.array_equal(over_grpc(12), in_process(11))


def test_env_exits_promptly_when_the_trainer_closes():
    env = UnityEnvironment(
        file_name=script("mla-env-basic"), base_port=free_port(), no_graphics=True
    )
    env.reset()
    process = env._process  # the launched console script
    start = time.monotonic()
    env.close()
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - start < 10


# The clock starts after the reset reply, which already set the first due time: 24 periods.
@pytest.mark.parametrize("time_scale, at_least", [(1.0, 24 * 0.02), (100.0, 0.0)])
def test_time_scale_caps_simulated_time_per_wall_second(time_scale, at_least):
    engine = EngineConfigurationChannel()
    engine.set_configuration_parameters(time_scale=time_scale)
    with unity_env("mla-env-basic", side_channels=[engine]) as env:
        env.reset()
        start = time.monotonic()
        for _ in range(25):
            env.step()
        elapsed = time.monotonic() - start
    # Basic simulates 0.02 s per step: 25 steps take about 0.5 s at time scale 1.
    assert elapsed >= at_least
    if time_scale == 1.0:
        assert elapsed < 10 * at_least


def test_started_by_hand_like_the_editor(tmp_path):
    """No ``file_name``: the trainer only listens; an env started first waits for it."""
    port = free_port()
    log = tmp_path / "by-hand.log"
    process = subprocess.Popen(
        [script("mla-env-basic"), "--port", str(port), "--log-file", str(log)]
    )
    try:
        time.sleep(1.0)  # the env is up before the trainer
        env = UnityEnvironment(file_name=None, base_port=port, timeout_wait=60)
        try:
            env.reset()
            assert list(env.behavior_specs) == ["Basic"]
            env.step()
            assert len(env.get_steps("Basic")[0]) == 8
        finally:
            env.close()
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
        process.wait()
