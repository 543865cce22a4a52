"""``EnvironmentWorker`` in a worker process with the real Basic executable (mla-envs): a hung
executable (stopped with SIGSTOP, as a frozen Unity build) does not outlive its worker.

The bug these catch: mlagents' ``close`` waits ``--timeout-wait`` (60 s) for the executable,
the trainer waits less for the worker before it ends it, and the executable, in a session of
its own, keeps running (and holding its port and a core) after the worker is gone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from mla_ray.backends import ProcessBackend
from mla_ray.worker import EnvironmentWorker
from mlagents.trainers.settings import RunOptions

from mla_plugin_core.testing.learn import environment_executable


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` has ended within ``seconds`` (a killed process may take a moment to
    go on a loaded machine)."""
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not running(pid)


@pytest.fixture
def hung_environment(tmp_path):
    """A worker process whose Basic executable has stopped answering; (backend, worker,
    executable's pid). The executable is killed at the end whatever the test found."""
    options = RunOptions.from_dict(
        {"env_settings": {"env_path": environment_executable("basic")}}  # timeout_wait: 60
    )
    backend = ProcessBackend()
    worker = backend.start(EnvironmentWorker, 0, options, 0, 1, str(tmp_path / "logs"))
    executable = None
    try:
        backend.get(worker.node.remote(), timeout=60)  # raises what kept it from starting
        backend.get(worker.reset.remote(), timeout=60)
        (executable,) = children(worker.process.pid)
        os.kill(executable, signal.SIGSTOP)
        yield backend, worker, executable
    finally:
        if executable is not None and running(executable):
            os.kill(executable, signal.SIGKILL)
        backend.kill(worker)


def test_a_hung_executable_is_killed_within_the_close_seconds(hung_environment):
    backend, worker, executable = hung_environment
    started = time.monotonic()
    backend.get(worker.close.remote(1.0), timeout=30)
    assert time.monotonic() - started < 10  # not mlagents' 60 s
    assert gone_within(executable, 5.0)


def test_a_worker_ended_by_the_trainer_takes_its_hung_executable_along(hung_environment):
    backend, worker, executable = hung_environment
    worker.stop(0.0)  # as the manager's kill after a close that did not answer in time
    assert not worker.process.is_alive()
    assert gone_within(executable, 5.0)
