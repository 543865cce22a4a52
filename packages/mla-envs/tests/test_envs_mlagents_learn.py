"""End to end with the real ``mlagents-learn``: learning, parameters, being killed.

NOTE on exit codes: with torch >= 2.9, mlagents' final ONNX export calls the dynamo
exporter, which needs ``onnxscript``; so ``mlagents-learn`` trains, saves its ``.pt``
checkpoints, then exits 1. The fix (exporting with ``dynamo=False``) belongs to
mla-plugin-core. Until it lands, these tests accept exit code 1 when the output shows
that ONNX failure, and judge the run by its results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from importlib import resources
from pathlib import Path

import pytest
import yaml
from envs_testkit import mlagents_learn_command, scalars

from mla_envs.protocol.lifeline import parent_pid, process_identity
from mla_plugin_core.util.ports import port_free

REWARD = "Environment/Cumulative Reward"


def packaged_config(name: str) -> dict:
    return yaml.safe_load((resources.files("mla_envs") / "configs" / name).read_text())


def write_config(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def assert_finished(result: subprocess.CompletedProcess) -> None:
    """Exit 0, or 1 only because of the known ONNX export failure (see module doc)."""
    output = result.stdout + result.stderr
    if result.returncode != 0:
        assert result.returncode == 1 and "onnx" in output.lower(), output[-3000:]


def test_ppo_learns_basic(tmp_path):
    config = packaged_config("ppo_basic.yaml")
    budget = 16000  # PPO passes 0.9 near 10k steps with 8 agents: 60% margin
    basic = config["behaviors"]["Basic"]
    basic.update(max_steps=budget, summary_freq=2000)
    # A linear schedule would decay the learning rate to 0 at the short budget.
    basic["hyperparameters"]["learning_rate_schedule"] = "constant"
    command = mlagents_learn_command(
        write_config(tmp_path, config), "basic", tmp_path, "mla-env-basic", "--seed", "1"
    )
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert_finished(result)
    rewards = scalars(tmp_path, "basic", "Basic", REWARD)
    assert rewards, result.stdout[-3000:]
    last_step, last_reward = rewards[-1]
    assert last_step >= budget - 2000
    assert last_reward >= 0.9, rewards
    assert rewards[0][1] < 0.9  # it learned: it did not start there
    assert (tmp_path / "basic" / "Basic" / "checkpoint.pt").exists()


def test_environment_parameters_from_the_trainer_yaml_reach_the_env(tmp_path):
    config = packaged_config("ppo_3DBall.yaml")
    config["behaviors"]["3DBall"].update(max_steps=1200, summary_freq=600)
    config["environment_parameters"] = {
        "scale": 2.0,
        "mass": {
            "sampler_type": "uniform",
            "sampler_parameters": {"min_value": 2.0, "max_value": 3.0},
        },
    }
    command = mlagents_learn_command(
        write_config(tmp_path, config), "params", tmp_path, "mla-env-3dball", "--seed", "2"
    )
    command += ["--env-args", "--stats-period", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert_finished(result)
    # The env reports the ball it uses through the stats side channel -> TensorBoard.
    scale = scalars(tmp_path, "params", "3DBall", "3DBall/Ball Scale")
    mass = scalars(tmp_path, "params", "3DBall", "3DBall/Ball Mass")
    assert scale and all(value == pytest.approx(2.0) for _, value in scale)
    assert mass and all(2.0 <= value <= 3.0 for _, value in mass)
    log = (tmp_path / "params" / "run_logs" / "Player-0.log").read_text()
    assert "Environment parameter scale = 2" in log
    assert "Environment parameter mass ~ uniform(2, 3)" in log


def env_processes(marker: str) -> list[int]:
    """Pids of live environment processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "-logFile" in cmdline and marker in cmdline and process_identity(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes through /proc")
def test_nothing_remains_when_mlagents_learn_is_sigkilled(tmp_path):
    config = packaged_config("ppo_basic.yaml")
    command = mlagents_learn_command(
        write_config(tmp_path, config), "killed", tmp_path, "mla-env-basic"
    )
    port = int(command[command.index("--base-port") + 1])
    trainer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        assert wait_until(lambda: env_processes(str(tmp_path)), 300), "env never started"
        (env_pid,) = env_processes(str(tmp_path))
        worker = parent_pid(env_pid)
        log = tmp_path / "killed" / "run_logs" / "Player-0.log"
        assert wait_until(lambda: log.exists() and "Connected" in log.read_text(), 120)
        trainer.send_signal(signal.SIGKILL)
        trainer.wait(timeout=30)
        # Within a bounded time: the env exits, and the trainer's env worker, orphaned
        # with the port still bound, is ended by the env.
        assert wait_until(lambda: process_identity(env_pid) is None, 20), "env orphaned"
        assert wait_until(lambda: process_identity(worker) is None, 20), "worker orphaned"
        assert wait_until(lambda: port_free(port), 20), f"port {port} still bound"
        assert "parent process" in log.read_text()
    finally:
        trainer.kill()
        trainer.wait()
        for pid in [*env_processes(str(tmp_path)), worker]:
            if pid and process_identity(pid) is not None:
                os.kill(pid, signal.SIGKILL)


RANDOM_3DBALL_RETURN = 1.2  # random actions: ~22 decisions x 0.1, then -1


@pytest.mark.skipif(
    os.environ.get("MLA_ENVS_SLOW") != "1",
    reason="slow (minutes): set MLA_ENVS_SLOW=1 to show PPO learning 3DBall",
)
def test_ppo_learns_3dball_clearly_above_random(tmp_path):
    config = packaged_config("ppo_3DBall.yaml")
    # Measured with --seed 1: 8.8 at 60k steps, 58 at 84k, 97 at 120k.
    config["behaviors"]["3DBall"].update(max_steps=84_000, summary_freq=12_000)
    command = mlagents_learn_command(
        write_config(tmp_path, config), "ball", tmp_path, "mla-env-3dball", "--seed", "1"
    )
    command += ["--time-scale", "100"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=7200)
    assert_finished(result)
    rewards = scalars(tmp_path, "ball", "3DBall", REWARD)
    assert rewards[0][1] < 3 * RANDOM_3DBALL_RETURN
    assert rewards[-1][1] >= 8 * RANDOM_3DBALL_RETURN, rewards
