"""Failures after the configuration is read end mlagents-learn with a message that says what
to do, once, with no traceback: a port in use, an environment that exits with an error."""

import socket
from contextlib import contextmanager

import pytest
import yaml

from mla_plugin_core.testing.learn import free_base_port

#: mlagents-learn without --env listens on this port for the Unity Editor, whatever --base-port says.
EDITOR_PORT = 5004


@pytest.fixture(scope="module")
def dqn_venv(make_venv):
    return make_venv("mla-dqn", "mla-envs", shared_venv=True)


@pytest.fixture
def learn(dqn_venv, tmp_path):
    """Run mlagents-learn on a small DQN Basic config with ``args``; the CompletedProcess."""
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"behaviors": {"Basic": {"trainer_type": "dqn", "max_steps": 300}}})
    )

    def run(*args: str, timeout: float = 180):
        return dqn_venv.run(
            "mlagents-learn", str(config), "--run-id", "run", "--results-dir", str(tmp_path / "results"),
            *args, cwd=tmp_path, timeout=timeout,
        )  # fmt: skip

    return run


@contextmanager
def port_held(port: int):
    """``port`` on localhost is taken while the block runs (by us, unless it already was)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            pass  # already in use by someone else: just as good
        yield
    finally:
        sock.close()


def assert_one_line_no_traceback(result, expected: list[str]) -> str:
    """The run failed with exactly one ``mlagents-learn:`` line on stderr, which names
    every string of ``expected``; no traceback anywhere. The line."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-4000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("mlagents-learn: ")]
    assert len(lines) == 1, result.stderr[-3000:]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_port_in_use_names_the_port_and_base_port(dqn_venv, learn):
    port = free_base_port()
    with port_held(port):
        result = learn(
            "--env", str(dqn_venv.bin / "mla-env-basic"), "--no-graphics", "--base-port", str(port)
        )
    line = assert_one_line_no_traceback(result, [f"port {port} is in use", "--base-port"])
    output = result.stdout + result.stderr
    assert output.count("is in use") == 1, output[-3000:]  # mlagents printed its message twice
    assert "still in use" not in output, line


@pytest.mark.latest_only
def test_editor_port_in_use_says_base_port_does_not_apply(learn):
    with port_held(EDITOR_PORT):
        result = learn("--base-port", str(free_base_port()), "--timeout-wait", "10", timeout=120)
    assert_one_line_no_traceback(result, [f"port {EDITOR_PORT} is in use", "--base-port", "--env"])


def test_environment_error_is_shown_on_the_console(dqn_venv, learn, tmp_path):
    result = learn(
        "--env", str(dqn_venv.bin / "mla-env-gym"), "--no-graphics", "--base-port", str(free_base_port()),
        "--env-args", "NoSuchEnv-v0",
    )  # fmt: skip
    log = tmp_path / "results" / "run" / "run_logs" / "Player-0.log"
    header = assert_one_line_no_traceback(result, ["the environment exited with code 2", str(log)])
    lines = result.stderr.splitlines()
    shown = lines[lines.index(header) + 1 :]  # the env's own error line, from its log, indented
    assert shown and shown[0].startswith(
        "    mla-env-gym: error: unknown Gymnasium environment 'NoSuchEnv-v0'"
    ), result.stderr[-3000:]
