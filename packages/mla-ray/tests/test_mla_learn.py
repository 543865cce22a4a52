"""The real ``mla-learn`` against the real ``mlagents-learn``: mla-envs' Basic over gRPC,
PPO; the workers are processes of this machine (the default), or Ray actors on a
three-node ``ray.cluster_utils.Cluster`` started here.

One chain of runs shares a results folder (each run is ~20 s):
``mlagents-learn`` and ``mla-learn`` from scratch on the same YAML (the folders must match
file for file), then ``mlagents-learn --resume`` of the ``mla-learn`` run, then
``mla-learn --resume`` of that, during which one environment is killed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mla_plugin_core.testing.learn import mlagents_learn_command, ppo_basic_smoke_config
from mla_plugin_core.testing.releases import newest_mlagents_only

STEPS = 600
TIMEOUT = 300
#: The drop-in comparison runs against every mlagents release of the matrix; the longer
#: runs (resume chain, faults, cluster, Ctrl-C) against the newest only.
latest_only = newest_mlagents_only


def command(tool: str, results: Path, run_id: str, max_steps: int, *extra: str,
            num_envs: int = 2) -> tuple[list[str], Path]:  # fmt: skip
    """``mlagents-learn`` (``tool="mlagents"``) or ``mla-learn`` (``"mla"``) on Basic."""
    cmd, run_dir = mlagents_learn_command(
        ppo_basic_smoke_config(max_steps),
        env="Basic",
        results_dir=results,
        run_id=run_id,
        num_envs=num_envs,
        extra_args=list(extra),
    )
    if tool == "mla":
        cmd[1:3] = ["-m", "mla_ray.cli"]
    if "--resume" in extra:
        cmd.remove("--force")
    return cmd, run_dir


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stdout[-4000:]
    return done


def files(run_dir: Path) -> set[str]:
    """The run folder's files, with numbers (steps, times, host names) left out."""
    names = set()
    for path in run_dir.rglob("*"):
        if path.is_file():
            name = str(path.relative_to(run_dir))
            name = re.sub(r"events\.out\.tfevents\..*", "events.out.tfevents.*", name)
            names.add(re.sub(r"\d+", "N", name))
    return names


def last_step(run_dir: Path) -> int:
    """The step of the newest checkpoint mlagents recorded (training_status.json)."""
    import json

    status = json.loads((run_dir / "run_logs" / "training_status.json").read_text())
    return max(c["steps"] for c in status["Basic"]["checkpoints"])


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("results")


def test_mla_learn_writes_what_mlagents_learn_writes(results):
    run(command("mlagents", results, "reference", STEPS, "--force")[0])
    done = run(command("mla", results, "ours", STEPS, "--force")[0])
    assert "2 environment workers on 1 node(s)" in done.stdout
    reference, ours = files(results / "reference"), files(results / "ours")
    assert ours == reference, (sorted(ours - reference), sorted(reference - ours))
    assert last_step(results / "ours") >= STEPS
    # stats every summary, as mlagents-learn
    assert "Basic. Step: 600." in done.stdout or "Step: 600" in done.stdout


@latest_only
def test_mlagents_learn_resumes_an_mla_learn_run(results):
    before = last_step(results / "ours")
    run(command("mlagents", results, "ours", 2 * STEPS, "--resume")[0])
    assert last_step(results / "ours") >= 2 * STEPS > before


@latest_only
def test_mla_learn_resumes_and_survives_a_killed_environment(results):
    before = last_step(results / "ours")
    # mlagents notices a dead environment within --timeout-wait / 10 s (6 s by default,
    # close to the whole run here)
    cmd, run_dir = command("mla", results, "ours", 12 * STEPS, "--resume", "--timeout-wait", "10")
    # killed at step 3000: well into this resumed run
    output = run_and_kill_an_environment(cmd, run_dir, results / "killed.log", step=3000)
    assert "Restarting worker[" in output
    assert last_step(run_dir) >= 12 * STEPS > before
    assert (run_dir / "Basic.onnx").is_file()


@latest_only
def test_a_replacement_that_fails_to_start_is_replaced_in_turn(tmp_path):
    # the bug this catches: the first replacement of a killed environment fails to start
    # (a Unity build can: a port, a licence, a slow disk), and that error ended the run
    # although mlagents' restart limits allowed another attempt
    from mla_plugin_core.testing.learn import environment_executable

    fail_next = tmp_path / "fail-next"
    wrapper = tmp_path / "flaky-basic"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ -e "{fail_next}" ]; then rm "{fail_next}"; exit 3; fi\n'
        f'exec "{environment_executable("basic")}" "$@"\n'
    )
    wrapper.chmod(0o755)
    cmd, run_dir = command("mla", tmp_path, "flaky", 6 * STEPS, "--timeout-wait", "10",
                           "--restarts-rate-limit-n", "3")  # fmt: skip
    cmd[cmd.index("--env") + 1] = str(wrapper)
    output = run_and_kill_an_environment(
        cmd, run_dir, tmp_path / "flaky.log", step=STEPS, before_kill=fail_next.touch
    )
    assert not fail_next.exists(), "the first replacement did not start the wrapper"
    # the kill, then the failed start (a slow step on a loaded machine may add a timeout)
    assert output.count("Restarting worker[") >= 2, output[-4000:]
    assert last_step(run_dir) >= 6 * STEPS
    assert (run_dir / "Basic.onnx").is_file()


def run_and_kill_an_environment(cmd: list[str], run_dir: Path, log_path: Path, step: int,
                                before_kill: Callable[[], object] = lambda: None) -> str:  # fmt: skip
    """Run ``cmd``, SIGKILL one of its environments once ``step``'s summary is logged (after
    ``before_kill``), and let the run finish; asserts it ended well; its log."""
    with log_path.open("w") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        victim = wait_for_environment(process, run_dir, log_path, step)
        before_kill()
        os.kill(victim, signal.SIGKILL)
        process.wait(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    output = log_path.read_text()
    assert process.returncode == 0, output[-4000:]
    return output


def ancestors(pid: int) -> list[int]:
    """The parent, grandparent, ... of process ``pid`` (Linux /proc)."""
    found = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        found.append(pid)
    return found


def wait_for_step(process: subprocess.Popen, log_path: Path, step: int) -> str:
    """The run's log once it has logged the summary of ``step``; fails if the run ends or
    takes more than half of TIMEOUT to get there."""
    deadline = time.monotonic() + TIMEOUT / 2
    while f"Step: {step}." not in (output := log_path.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, output[-4000:]
        time.sleep(0.3)
    return output


def wait_for_environment(process: subprocess.Popen, run_dir: Path, log_path: Path,
                         step: int) -> int:  # fmt: skip
    """The pid of one of the run's environments, once training has logged ``step``'s
    summary."""
    wait_for_step(process, log_path, step)
    deadline = time.monotonic() + TIMEOUT / 2
    logs = str(run_dir / "run_logs")
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["pgrep", "-f", f"mla-env-basic.*{logs}"], capture_output=True, text=True
        ).stdout.split()
        # this run's own (an earlier run of the same folder may still be exiting)
        ours = [int(pid) for pid in found if process.pid in ancestors(int(pid))]
        if ours:
            return ours[0]
        assert process.poll() is None, log_path.read_text()[-4000:]
        time.sleep(0.5)
    raise AssertionError("no environment of the run found: " + log_path.read_text()[-2000:])


@pytest.mark.slow_cluster  # nox -s slow
@latest_only
def test_workers_span_the_nodes_of_a_cluster_and_survive_a_lost_node(tmp_path):
    """A head and two worker nodes of one CPU each: two workers spread over two nodes; one
    of those nodes is removed mid-run (its raylet, worker and environment end), and the
    worker is started again on the node with room; the run goes on and ends well."""
    from mla_ray.local_ray import start_cluster, stop_cluster

    cluster = start_cluster(num_cpus=1, worker_cpus=(1, 1))
    try:
        cmd, run_dir = command("mla", tmp_path, "cluster", 20 * STEPS, "--force",
                               "--timeout-wait", "10")  # fmt: skip
        log_path = tmp_path / "cluster.log"
        with log_path.open("w") as log:
            process = subprocess.Popen([*cmd, "--address", cluster.address], stdout=log,
                                       stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            output = wait_for_step(process, log_path, 1200)
            placed = re.search(r"2 environment workers on 2 node\(s\): (.*)", output)
            assert placed, output[-3000:]
            used = set(re.findall(r"node ([0-9a-f]{12})", placed.group(1)))
            lost = next(n for n in cluster.worker_nodes if n.node_id[:12] in used)
            cluster.remove_node(lost)
            process.wait(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
        output = log_path.read_text()
        assert process.returncode == 0, output[-4000:]
        assert "Restarting worker[" in output, output[-4000:]
        assert last_step(run_dir) >= 20 * STEPS
        # three workers do not fit on the two CPUs left: refused in one line, nothing written
        cmd, run_dir = command("mla", tmp_path, "too-many", 300, "--force", num_envs=3)
        refused = subprocess.run(
            [*cmd, "--address", cluster.address], capture_output=True, text=True, timeout=TIMEOUT
        )
        assert refused.returncode != 0
        assert "--num-envs 3 workers x 1 CPU need 3 CPUs; the Ray cluster has 2" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert not run_dir.exists()
    finally:
        stop_cluster(cluster)


def as_in_a_terminal() -> None:
    """SIGINT at its default, as for a command a terminal runs: a test run started in the
    background of a non-interactive shell inherits it ignored, and Python then installs no
    KeyboardInterrupt (mlagents-learn would go on training through Ctrl-C, as here)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@latest_only
def test_ctrl_c_saves_and_exits_as_mlagents_learn(tmp_path):
    """Ctrl-C in a terminal reaches the whole process group: mla-learn, its worker
    processes and the environments. mlagents' controller saves the models and the run's
    status, and the run can be resumed."""
    cmd, run_dir = command("mla", tmp_path, "interrupted", 100 * STEPS, "--force")
    log_path = tmp_path / "interrupted.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=as_in_a_terminal,
        )  # fmt: skip
    try:
        wait_for_step(process, log_path, 1200)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    output = log_path.read_text()
    assert process.returncode == 0, output[-4000:]
    assert "Learning was interrupted" in output or "Saved Model" in output, output[-3000:]
    assert 1200 <= last_step(run_dir) < 100 * STEPS
    assert (run_dir / "Basic.onnx").is_file()
    assert (run_dir / "configuration.yaml").is_file()


@latest_only
def test_an_environment_that_cannot_start_is_one_line(tmp_path):
    cmd, _ = command("mla", tmp_path, "missing", 300, "--force")
    cmd[cmd.index("--env") + 1] = str(tmp_path / "nowhere" / "Game.x86_64")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("mla-learn:")]
    assert len(lines) == 1 and "could not start" in lines[0] and "Game.x86_64" in lines[0], lines
