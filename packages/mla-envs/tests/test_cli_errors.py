"""Bad options of the env executables: one argparse-style line and exit code 2, at once.

Each row runs the real console script as a subprocess, all rows at the same time; the
busy-port test starts a real mlagents trainer (``RpcCommunicator``) serving one env and
a second env on its port.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from envs_testkit import free_port, script

from mla_envs.version import __version__

# (command, arguments, the whole stderr line)
BAD_OPTIONS = [
    (
        "mla-env-basic",
        ["--port", "0"],
        "argument --mlagents-port/--port: must be from 1 to 65535, got 0",
    ),
    (
        "mla-env-basic",
        ["--port", "70000"],
        "argument --mlagents-port/--port: must be from 1 to 65535, got 70000",
    ),
    (
        "mla-env-basic",
        ["--port", "x"],
        "argument --mlagents-port/--port: expected an integer, got 'x'",
    ),
    ("mla-env-basic", ["--seed", "-1"], "argument --seed: must be from 0 to 2147483647, got -1"),
    ("mla-env-3dball", ["--num-agents", "0"], "argument --num-agents: must be at least 1, got 0"),
    (
        "mla-env-basic",
        ["--idle-timeout", "0"],
        "argument --idle-timeout: must be finite seconds >= 1, got 0",
    ),
    (
        "mla-env-basic",
        ["--idle-timeout", "nan"],
        "argument --idle-timeout: must be finite seconds >= 1, got nan",
    ),
    (
        "mla-env-basic",
        ["--connect-timeout", "inf"],
        "argument --connect-timeout: must be finite seconds > 0, got inf",
    ),
    (
        "mla-env-3dball",
        ["--stats-period", "-1"],
        "argument --stats-period: must be finite seconds >= 0, got -1",
    ),
    (
        "mla-env-basic",
        ["--time-scale", "abc"],
        "unrecognized arguments: --time-scale (see mla-env-basic --help; "
        "mlagents-learn's own options go before --env-args)",
    ),
    (
        "mla-env-3dball",
        ["--gym-kwarg", "x=1"],
        "unrecognized arguments: --gym-kwarg (see mla-env-3dball --help; "
        "mlagents-learn's own options go before --env-args)",
    ),
    (
        "mla-env",
        ["Basic", "--gym-kwarg", "x=1"],
        "argument --gym-kwarg: only Gymnasium environments (gym:<id>) take it",
    ),
    (
        "mla-env-gym",
        ["CartPole-v1", "--gym-kwarg", "foo"],
        "argument --gym-kwarg: expected KEY=VALUE with KEY a Python name, got 'foo'",
    ),
    (
        "mla-env-gym",
        ["CartPole-v1", "--gym-kwarg", "foo=1"],
        "argument --gym-kwarg: CartPole-v1 refuses foo=1: "
        "CartPoleEnv.__init__() got an unexpected keyword argument 'foo'",
    ),
    (
        "mla-env-gym",
        ["Basic"],
        "argument ID: Basic is not a Gymnasium id; use mla-env-basic or mla-env Basic",
    ),
    ("mla-env-gym", [], "name a Gymnasium id, e.g. CartPole-v1 (--list shows them)"),
    (
        "mla-env-basic",
        ["-logFile", "/nonexistent/env.log"],
        "argument -logFile: cannot write '/nonexistent/env.log': No such file or directory",
    ),
]


def test_bad_options_are_one_line_and_exit_2():
    start = time.monotonic()
    processes = []
    for command, arguments, _ in BAD_OPTIONS:
        # Should an option pass, the env must not wait long, nor find someone's trainer.
        guard = [] if "--port" in arguments else ["--port", str(free_port())]
        guard += [] if "--connect-timeout" in arguments else ["--connect-timeout", "1"]
        processes.append(
            subprocess.Popen(
                [script(command), *arguments, *guard],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    failures = []
    for (command, arguments, message), process in zip(BAD_OPTIONS, processes, strict=True):
        _, stderr = process.communicate(timeout=60)
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        if process.returncode != 2 or last != f"{command}: error: {message}":
            failures.append(f"{command} {' '.join(arguments)}: exit {process.returncode}, {last!r}")
    assert not failures, "\n".join(failures)
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("log_option", ["-logFile", "--log-file="])
def test_an_option_error_also_goes_to_the_log_file(tmp_path, log_option):
    """mlagents-learn discards an env's stderr and shows the end of its ``-logFile``: a bad
    option's line (even one argparse rejects while parsing) must be in that file too."""
    log = tmp_path / "Player-0.log"
    log_args = [log_option + str(log)] if log_option.endswith("=") else [log_option, str(log)]
    result = subprocess.run(
        [script("mla-env-basic"), "--seed", "abc", *log_args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    line = "mla-env-basic: error: argument --seed: expected an integer, got 'abc'"
    assert result.stderr.strip().splitlines()[-1] == line
    assert log.read_text().strip().splitlines() == [line]


def test_missing_gymnasium_extra_is_named_as_such():
    gymnasium = pytest.importorskip("gymnasium")
    try:
        gymnasium.make("LunarLander-v3")
    except gymnasium.error.DependencyNotInstalled:
        pass
    else:
        pytest.skip("box2d is installed here, so LunarLander-v3 has no missing extra to report")
    result = subprocess.run(
        [script("mla-env-gym"), "LunarLander-v3", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "mla-env-gym: error: Gymnasium environment 'LunarLander-v3' is registered but needs "
        "a dependency that is not installed: "
    )
    assert "gymnasium[box2d]" in line and "unknown" not in line


def test_every_command_has_version_and_only_its_own_options():
    for command, gymnasium in [
        ("mla-env", True),
        ("mla-env-basic", False),
        ("mla-env-3dball", False),
        ("mla-env-gym", True),
    ]:
        version = subprocess.run([script(command), "--version"], capture_output=True, text=True)
        assert version.returncode == 0 and version.stdout == f"{command} {__version__}\n"
        usage = subprocess.run([script(command), "--help"], capture_output=True, text=True)
        assert usage.returncode == 0
        assert ("--gym-kwarg" in usage.stdout) == gymnasium, command
        assert ("--list" in usage.stdout) == gymnasium, command


def test_second_env_on_a_busy_trainer_port_says_so_and_exits(tmp_path):
    from mlagents_envs.communicator_objects.unity_input_pb2 import UnityInputProto
    from mlagents_envs.communicator_objects.unity_rl_initialization_input_pb2 import (
        UnityRLInitializationInputProto,
    )
    from mlagents_envs.rpc_communicator import RpcCommunicator

    port = free_port()
    trainer = RpcCommunicator(worker_id=0, base_port=port, timeout_wait=60)
    first = subprocess.Popen(
        [script("mla-env-basic"), "--port", str(port)], stderr=subprocess.DEVNULL
    )
    second = None
    try:
        init = UnityRLInitializationInputProto(seed=1, communication_version="1.5.0")
        trainer.initialize(UnityInputProto(rl_initialization_input=init))
        trainer.timeout_wait = 5  # from now on the envs answer at once
        log = tmp_path / "second.log"
        second = subprocess.Popen(
            [script("mla-env-basic"), "--port", str(port), "-logFile", str(log)]
        )
        start = time.monotonic()

        def keep_training() -> None:  # the trainer keeps exchanging with "its" env
            while second.poll() is None and time.monotonic() - start < 30:
                try:
                    trainer.exchange(UnityInputProto())
                except Exception:  # noqa: BLE001 - the messages of two envs interleave
                    time.sleep(0.1)

        threading.Thread(target=keep_training, daemon=True).start()
        assert second.wait(timeout=30) == 4
        assert time.monotonic() - start < 20
        # Which reply the second env gets is a race between the envs' calls: another env's
        # input (no handshake) or a failed call (the trainer's pipe read two messages).
        errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
        assert len(errors) == 1, errors
        assert f"Port {port} is in use: the trainer there " in errors[0]
        assert errors[0].endswith("; give each run its own port (mlagents-learn --base-port)")
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
                process.wait()
        trainer.close()
