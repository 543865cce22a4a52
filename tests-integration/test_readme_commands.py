"""The commands users copy from the README work verbatim in a fresh install from wheels.

Each ``mlagents-learn`` line of README's quickstart runs as written, plus a free
``--base-port`` (in a shell, from an empty folder). Once it has logged its first summary it gets Ctrl-C, as a user would give
it; mlagents then saves a checkpoint and exports the ONNX model. The run's folder must hold
TensorBoard events, a checkpoint and an ``.onnx`` file.

A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored
across ``exec``; Python then installs no KeyboardInterrupt handler. When the test run itself
was started in the background (``nohup nox &``), Ctrl-C would never reach mlagents-learn, so
the command's process gets the default SIGINT disposition back before it starts, as a
terminal user's shell would give it.
"""

import os
import re
import signal
import subprocess
import threading
import time

import pytest
from conftest import ROOT

from mla_plugin_core.testing.learn import free_base_port

SUMMARY = re.compile(r"Step: \d+\. .*Mean Reward")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [
        line.strip()
        for line in quickstart.splitlines()
        if line.strip().startswith("mlagents-learn ")
    ]


def test_readme_has_the_two_commands():
    commands = readme_commands()
    assert any("dqn_basic.yaml" in c for c in commands) and any(
        "a2c_3DBall.yaml" in c for c in commands
    )


def default_sigint() -> None:
    """Runs in the child before ``exec``: Ctrl-C interrupts, whatever the parent ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def user_venv(make_venv):
    return make_venv("mla-dqn", "mla-a2c", "mla-envs")


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_trains_and_saves(user_venv, tmp_path, command):
    env = {**os.environ, "PATH": f"{user_venv.bin}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    # As written, plus a free --base-port: other runs on this machine may hold mlagents' 5005.
    process = subprocess.Popen(
        ["bash", "-c", f"{command} --base-port {free_base_port()}"], cwd=tmp_path, env=env,
        text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    lines: list[str] = []
    summarised = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if SUMMARY.search(line):
                summarised.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert summarised.wait(timeout=400), "".join(lines[-40:])
        time.sleep(1.0)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C goes to the whole foreground group
        try:
            process.wait(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail("still running 180 s after Ctrl-C:\n" + "".join(lines[-40:]))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    reader.join(timeout=10)
    log = "".join(lines)
    run_id = re.search(r"--run-id (\S+)", command).group(1)
    run_dir = tmp_path / "results" / run_id
    assert list(run_dir.rglob("events.out.tfevents.*")), log[-3000:]
    assert list(run_dir.rglob("*.pt")), log[-3000:]
    assert list(run_dir.glob("*.onnx")), log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def use_section() -> tuple[str, str]:
    """README's ``## Use``: its YAML (the first yaml block) and its ``mlagents-learn`` line."""
    text = (ROOT / "README.md").read_text().split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    config = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    (command,) = [line for line in text.splitlines() if line.startswith("mlagents-learn ")]
    return config, command


def test_readme_use_section_trains_as_written(user_venv, tmp_path):
    config, command = use_section()
    (tmp_path / "config.yaml").write_text(config)
    command += f" --base-port {free_base_port()}"  # as in the quickstart test
    env = {**os.environ, "PATH": f"{user_venv.bin}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, text=True, timeout=600,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert SUMMARY.search(run.stdout) and "Traceback" not in run.stdout, run.stdout[-3000:]
    run_dir = tmp_path / "results" / "my-run"
    assert list(run_dir.glob("Basic*.onnx")) and list(run_dir.rglob("*.pt")), run.stdout[-3000:]
