"""The console scripts: arguments as mlagents-learn passes them, errors, exit paths."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from envs_testkit import free_port, script

from mla_envs import cli
from mla_envs.cli import build_parser, gym_kwarg
from mla_envs.protocol.lifeline import process_identity


def test_unknown_environment_lists_the_available_ones():
    result = subprocess.run(
        [script("mla-env"), "nosuch"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "unknown environment 'nosuch'" in result.stderr
    for name in ("Basic", "3DBall", "gym:<id>"):
        assert name in result.stderr


def test_unsupported_gymnasium_space_is_named(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.gym(["Blackjack-v1"])
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert "observation space Tuple(Discrete(32), Discrete(11), Discrete(2))" in stderr
    assert "supported observation spaces: Box, Discrete" in stderr


def test_list_shows_builtins_and_gymnasium_ids(capsys):
    assert cli.main(["--list"]) == 0
    names = capsys.readouterr().out.split()
    assert names[:2] == ["Basic", "3DBall"] and "gym:CartPole-v1" in names


def test_config_prints_the_path_of_a_packaged_yaml(capsys):
    assert cli.main(["--config", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"ppo_basic.yaml", "ppo_3DBall.yaml"} <= set(names)
    assert cli.main(["--config", "ppo_basic.yaml"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert "Basic:" in path.read_text()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--config", "nope.yaml"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mla-env: error: argument --config: no shipped config 'nope.yaml'")
    assert "ppo_basic.yaml" in err
    # The one command for every package's configs is named in --help.
    assert "mla-plugin configs" in " ".join(build_parser("mla-env", "").format_help().split())


def test_parses_the_arguments_mlagents_learn_passes():
    argv = ["-nographics", "-batchmode", "--mlagents-port", "5006", "-logFile", "/x/p.log"]
    argv += ["CartPole-v1", "--num-agents", "4", "-screen-fullscreen", "0"]
    args, unknown = build_parser("mla-env-gym", "").parse_known_args(argv)
    assert args.mlagents_port == 5006 and args.log_file == "/x/p.log"
    assert args.names == ["CartPole-v1"] and args.num_agents == 4
    assert unknown == ["-screen-fullscreen", "0"]
    assert build_parser("mla-env", "").parse_known_args([])[0].mlagents_port == 5004


def test_agent_count_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["Basic", "--num-agents", "0"])
    assert exit_info.value.code == 2
    assert "must be at least 1, got 0" in capsys.readouterr().err


def test_gym_kwargs():
    assert dict(map(gym_kwarg, ["max_episode_steps=200", "render_mode=rgb_array"])) == {
        "max_episode_steps": 200,
        "render_mode": "rgb_array",
    }
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        gym_kwarg("oops")


def test_no_trainer_exits_after_the_connect_timeout():
    start = time.monotonic()
    result = subprocess.run(
        [script("mla-env-basic"), "--port", str(free_port()), "--connect-timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "No trainer answered" in result.stderr
    assert time.monotonic() - start < 30


TRAINER = textwrap.dedent(
    """
    import sys, time
    from mlagents_envs.environment import UnityEnvironment
    env = UnityEnvironment(file_name=sys.argv[1], base_port=int(sys.argv[2]), no_graphics=True)
    env.reset()
    print(env._process.pid, flush=True)
    time.sleep(600)
    """
)


def test_env_exits_when_the_trainer_process_is_killed():
    trainer = subprocess.Popen(
        [sys.executable, "-c", TRAINER, script("mla-env-basic"), str(free_port())],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        env_pid = int(trainer.stdout.readline())
        assert process_identity(env_pid) is not None
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(timeout=10)
        deadline = time.monotonic() + 15
        while process_identity(env_pid) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process_identity(env_pid) is None, "environment outlived its trainer"
    finally:
        trainer.kill()
        trainer.wait()


def test_env_exits_after_the_idle_timeout(tmp_path):
    """A trainer that shakes hands, then never answers: the env leaves on its own."""
    from mlagents_envs.communicator_objects.unity_input_pb2 import UnityInputProto
    from mlagents_envs.communicator_objects.unity_rl_initialization_input_pb2 import (
        UnityRLInitializationInputProto,
    )
    from mlagents_envs.rpc_communicator import RpcCommunicator

    port = free_port()
    trainer = RpcCommunicator(worker_id=0, base_port=port, timeout_wait=60)
    log = tmp_path / "env.log"
    env = subprocess.Popen(
        [script("mla-env-basic"), "--port", str(port), "--idle-timeout", "2", "-logFile", str(log)]
    )
    try:
        init = UnityRLInitializationInputProto(seed=1, communication_version="1.5.0")
        output = trainer.initialize(UnityInputProto(rl_initialization_input=init))
        assert output.rl_initialization_output.communication_version == "1.5.0"
        start = time.monotonic()
        assert env.wait(timeout=30) == 0
        assert 1.5 < time.monotonic() - start < 30
        assert "DEADLINE_EXCEEDED" in log.read_text()
    finally:
        env.kill()
        env.wait()
        trainer.close()


def test_shipped_configs_checkpoint_often():
    # mlagents' default checkpoint_interval (500,000) is a whole 3DBall run: a kill lost it all
    from importlib import resources
    from pathlib import Path

    from mla_plugin_core.testing.conformance import checkpoint_risk

    folder = Path(str(resources.files("mla_envs") / "configs"))
    configs = sorted(folder.glob("*.yaml"))
    assert configs
    assert [line for config in configs for line in checkpoint_risk(config)] == []
