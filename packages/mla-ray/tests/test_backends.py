"""``ProcessBackend``: the workers of ``mla-learn`` without ``--address``, as child processes.

The manager relies on: answers in call order, a worker's exception raised in the trainer,
a dead worker turned into ``WorkerLost`` (never a hang), waiting that sleeps instead of
polling, workers that survive Ctrl-C (the trainer closes them after saving) and that close
their environment when the trainer is gone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from mla_ray.backends import WORKER_NICENESS, ProcessBackend, WorkerLost


class TwoArgumentError(Exception):
    """Pickles, but does not unpickle (``args`` holds one message, ``__init__`` wants two),
    as many exceptions of third-party code."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


class Echo:
    """Stands for ``EnvironmentWorker``: answers, sleeps, fails, and records its close."""

    def __init__(self, name: str, closed_file: str | None = None) -> None:
        self.name, self.closed_file = name, closed_file

    def echo(self, value: object) -> tuple[str, object]:
        return self.name, value

    def sleep(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def fail(self) -> None:
        raise ValueError(f"{self.name} failed")

    def pid(self) -> int:
        return os.getpid()

    def unpicklable(self) -> object:
        return lambda: self.name

    def fail_unpicklably(self) -> None:
        raise TwoArgumentError("environment", "refused")

    def close(self) -> None:
        if self.closed_file:
            Path(self.closed_file).write_text(self.name)


@pytest.fixture
def backend():
    return ProcessBackend()


def test_answers_in_call_order_and_errors_raised_in_the_trainer(backend):
    worker = backend.start(Echo, "w0")
    try:
        calls = [worker.echo.remote(i) for i in range(50)]
        assert backend.get(calls) == [("w0", i) for i in range(50)]
        with pytest.raises(ValueError, match="w0 failed"):
            backend.get(worker.fail.remote())
        assert backend.get(worker.echo.remote("after")) == ("w0", "after")  # still serving
    finally:
        backend.kill(worker)


def test_wait_returns_the_answered_calls_first(backend):
    slow, fast = backend.start(Echo, "slow"), backend.start(Echo, "fast")
    try:
        calls = [slow.sleep.remote(1.0), fast.sleep.remote(0.0)]
        ready, waiting = backend.wait(calls, num_returns=1)
        assert ready == [calls[1]] and waiting == [calls[0]]
        ready, waiting = backend.wait(calls, num_returns=2, timeout=0)
        assert waiting == [calls[0]]  # a timeout of 0 does not wait
        ready, waiting = backend.wait(calls, num_returns=2)
        assert ready == calls and not waiting
    finally:
        for worker in (slow, fast):
            backend.kill(worker)


def test_waiting_sleeps_instead_of_polling(backend):
    # the bug this catches: a loop over poll()/get_nowait, as mlagents' SubprocessEnvManager
    worker = backend.start(Echo, "w0")
    try:
        backend.get(worker.echo.remote(0))  # started
        cpu = time.process_time()
        assert backend.get(worker.sleep.remote(1.5)) == 1.5
        assert time.process_time() - cpu < 0.3  # a poll loop would spend ~1.5 s of CPU
    finally:
        backend.kill(worker)


def test_a_killed_worker_is_lost_not_a_hang(backend):
    worker = backend.start(Echo, "w0")
    pid = backend.get(worker.pid.remote())
    pending = worker.sleep.remote(60.0)
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    with pytest.raises(WorkerLost, match=f"worker process {pid} ended .killed by signal 9"):
        backend.get(pending)
    assert time.monotonic() - started < 10
    with pytest.raises(WorkerLost):  # later calls fail at once
        backend.get(worker.echo.remote(1), timeout=5)
    backend.kill(worker)


def test_workers_yield_the_cores_to_the_trainer(backend):
    worker = backend.start(Echo, "w0")
    try:
        pid = backend.get(worker.pid.remote())
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(mine + WORKER_NICENESS, 19)
    finally:
        backend.kill(worker)


def test_ctrl_c_to_the_group_leaves_workers_serving(backend):
    worker = backend.start(Echo, "w0")
    try:
        pid = backend.get(worker.pid.remote())
        os.kill(pid, signal.SIGINT)
        assert backend.get(worker.echo.remote("still here"), timeout=10) == ("w0", "still here")
    finally:
        backend.kill(worker)


def test_a_worker_closes_its_environment_when_the_trainer_is_gone(backend, tmp_path):
    # the bug this catches: a worker forked later holds a copy of the trainer's end of the
    # first worker's pipe, which then never ends (workers and environments left running)
    first = backend.start(Echo, "w0", str(tmp_path / "closed0"))
    later = backend.start(Echo, "w1", str(tmp_path / "closed1"))
    try:
        backend.get([first.echo.remote(0), later.echo.remote(0)])
        first.connection.close()  # as the end of the trainer process closes it
        first.process.join(timeout=10)
        assert first.process.exitcode == 0
        assert (tmp_path / "closed0").read_text() == "w0"
        assert backend.get(later.echo.remote(1), timeout=10) == ("w1", 1)
    finally:
        backend.kill(later)


class Unstartable(Echo):
    def __init__(self, name: str) -> None:
        raise OSError(f"no free port for {name}")


def test_a_worker_that_cannot_start_says_why_in_every_answer(backend):
    # the bug this catches: the child dies with a traceback on its stderr, and the trainer
    # only learns "exit code 1"
    worker = backend.start(Unstartable, "w0")
    try:
        for _ in range(2):
            with pytest.raises(OSError, match="no free port for w0"):
                backend.get(worker.echo.remote(0), timeout=10)
    finally:
        backend.kill(worker)


def test_a_lost_worker_is_a_lost_environment_to_mlagents():
    from mlagents_envs.exception import UnityCommunicationException

    assert issubclass(WorkerLost, UnityCommunicationException)


def test_calls_queued_at_a_stop_are_settled_not_left_waiting(backend):
    # the bug this catches: a call sent before the stop never settles, and the manager's
    # wait on it sleeps forever
    worker = backend.start(Echo, "w0")
    backend.get(worker.echo.remote(0))
    queued = [worker.sleep.remote(30.0), worker.echo.remote(1)]
    started = time.monotonic()
    backend.kill(worker)
    for call in queued:
        with pytest.raises(WorkerLost):
            backend.get(call, timeout=5)
    assert time.monotonic() - started < 10


def test_ctrl_c_while_reading_an_answer_fails_the_workers_calls(backend):
    # the bug this catches: an answer half read when Ctrl-C arrives leaves the pipe in the
    # middle of a message, and the next read pairs calls with the wrong answers
    worker = backend.start(Echo, "w0")
    try:
        backend.get(worker.echo.remote(0))
        calls = [worker.echo.remote(1), worker.echo.remote(2)]

        def interrupted():
            raise KeyboardInterrupt

        worker.connection.recv = interrupted  # as Ctrl-C inside Connection.recv
        with pytest.raises(KeyboardInterrupt):
            backend.get(calls)
        for call in calls:
            with pytest.raises(WorkerLost):
                backend.get(call, timeout=1)
        with pytest.raises(WorkerLost):  # nothing more is read from that pipe
            backend.get(worker.echo.remote(3), timeout=1)
    finally:
        backend.kill(worker)


@pytest.mark.parametrize(
    ("method", "named"),
    [
        ("unpicklable", "a function .the worker could not send it"),  # the worker cannot pickle
        (
            "fail_unpicklably",
            "TwoArgumentError: environment: refused",
        ),  # the trainer cannot unpickle
    ],
)
def test_an_answer_that_cannot_travel_is_an_error_naming_it(backend, method, named):
    # the bug this catches: the worker dies on the pickling error, or the trainer fails to
    # unpickle and takes the worker for lost: either way what happened is never seen
    worker = backend.start(Echo, "w0")
    try:
        with pytest.raises(RuntimeError, match=named):
            backend.get(getattr(worker, method).remote(), timeout=10)
        assert backend.get(worker.echo.remote("after"), timeout=10) == ("w0", "after")
    finally:
        backend.kill(worker)


class SlowToStart(Echo):
    """Starts a process in a session of its own (as mlagents starts an executable), then
    waits for it to connect, which it never does."""

    def __init__(self, name: str, pid_file: str) -> None:
        import subprocess

        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        Path(pid_file).write_text(str(child.pid))
        time.sleep(300)


def test_a_worker_ended_while_starting_ends_what_it_started(backend, tmp_path):
    # the bug this catches: Ctrl-C while a build is slow to connect; the trainer ends the
    # worker, and the executable (its own session: no signal reaches it) runs on
    pid_file = tmp_path / "child"
    worker = backend.start(SlowToStart, "w0", str(pid_file))
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    child = int(pid_file.read_text())
    worker.stop(0.0)
    assert not worker.process.is_alive()
    try:
        os.kill(child, 0)
    except ProcessLookupError:
        return
    os.kill(child, signal.SIGKILL)
    raise AssertionError(f"the worker's child {child} outlived it")
