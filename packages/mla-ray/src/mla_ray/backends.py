"""Where the environment workers of a run live: Ray actors, or plain processes of this machine.

:class:`~mla_ray.env_manager.WorkerEnvManager` talks to its workers through one small interface,
:class:`Backend` (start a worker, call it, wait for answers, get them, stop it), which is the
part of Ray's actor API it uses:

- :class:`RayBackend`: every worker is a Ray actor, placed on any node of the cluster (with
  ``--address``, or ``--backend ray``);
- :class:`ProcessBackend`: every worker is a child process of the trainer, answering over a
  pipe (the default without ``--address``). On one small machine it costs less than an
  embedded Ray (no GCS, raylet or Ray threads in the trainer; measured in
  ``benchmarks/collection.py``), and waits the same way: the trainer sleeps in
  ``multiprocessing.connection.wait`` until a worker answers, it never polls.

In both, a call returns a reference at once (``worker.step.remote(data)``); :meth:`Backend.wait`
blocks until some are answered; :meth:`Backend.get` returns an answer or raises the worker's
exception (a lost worker raises :class:`WorkerLost`).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
import time
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_connections
from pathlib import Path
from typing import Any, Protocol

from mlagents_envs.exception import UnityCommunicationException


class WorkerLost(UnityCommunicationException):
    """A worker process (or Ray actor) ended without answering: killed, crashed, node lost.
    To mlagents it is a failed environment: restarted within its limits, and where it is not
    (outside a step), the run saves its models and stops as for a lost environment."""


class Backend(Protocol):
    """The part of Ray's actor API :class:`~mla_ray.env_manager.WorkerEnvManager` uses."""

    #: exceptions that mean "the worker is gone" (to be restarted, as a failed environment)
    lost: tuple[type[BaseException], ...]

    def start(self, worker_class: type, *args: Any) -> Any: ...

    def wait(
        self, refs: list[Any], num_returns: int = 1, timeout: float | None = None
    ) -> tuple[list[Any], list[Any]]: ...

    def get(self, refs: Any, timeout: float | None = None) -> Any: ...

    def kill(self, worker: Any) -> None: ...

    def free_cpus(self) -> float: ...


# --- Ray ----------------------------------------------------------------------------------


class RayBackend:
    """Workers as Ray actors with ``num_cpus`` each, placed by ``scheduling_strategy``."""

    def __init__(self, num_cpus: float, scheduling_strategy: str) -> None:
        import ray

        self.ray = ray
        self.lost: tuple[type[BaseException], ...] = (ray.exceptions.RayActorError, WorkerLost)
        self._options = {
            "num_cpus": num_cpus,
            "scheduling_strategy": scheduling_strategy,
            "max_restarts": 0,  # restarts are the manager's, within mlagents' limits
        }

    def start(self, worker_class: type, *args: Any) -> Any:
        return self.ray.remote(worker_class).options(**self._options).remote(*args)

    def wait(
        self, refs: list[Any], num_returns: int = 1, timeout: float | None = None
    ) -> tuple[list[Any], list[Any]]:
        ready, waiting = self.ray.wait(refs, num_returns=num_returns, timeout=timeout)
        return list(ready), list(waiting)

    def get(self, refs: Any, timeout: float | None = None) -> Any:
        return self.ray.get(refs, timeout=timeout)

    def kill(self, worker: Any) -> None:
        self.ray.kill(worker, no_restart=True)

    def free_cpus(self) -> float:
        return float(self.ray.available_resources().get("CPU", 0.0))


# --- processes of this machine ------------------------------------------------------------


#: Added to a worker's niceness (and so its environment's): on a machine whose cores the
#: environments fill, the trainer, which every step waits on, comes first. Measured on
#: 2 cores, PPO on Basic, 4 workers, 3 interleaved pairs: +24 to +47 % steps/s against 0.
#: Ray runs its workers niced as well.
WORKER_NICENESS = 10
#: The trainer's ends of the pipes of its live workers (closed in each new worker).
_TRAINER_ENDS: set[Connection] = set()


class Call:
    """The reference to one call to a :class:`WorkerProcess`: answered once, in call order."""

    __slots__ = ("worker", "done", "value", "error")

    def __init__(self, worker: WorkerProcess) -> None:
        self.worker = worker
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def settle(self, value: Any = None, error: BaseException | None = None) -> None:
        self.done, self.value, self.error = True, value, error


class _Method:
    __slots__ = ("worker", "name")

    def __init__(self, worker: WorkerProcess, name: str) -> None:
        self.worker, self.name = worker, name

    def remote(self, *args: Any) -> Call:
        return self.worker.call(self.name, args)


def _serve(connection: Connection, worker_class: type, args: tuple[Any, ...]) -> None:
    """A worker process: make the worker, then answer calls until ``close`` or the end of
    the pipe (the trainer gone), closing the worker's environment either way.

    SIGINT is ignored: Ctrl-C reaches the whole process group, and the trainer, which saves
    its models first, closes its workers itself (as mlagents' workers wait for the trainer).
    SIGTERM (the trainer ending a worker that did not close in time) also closes the worker:
    an environment executable runs in a session of its own, and no signal to this process
    reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.nice(WORKER_NICENESS)  # the environment, started from here, inherits it
    # forked with the trainer's ends of its own pipe and of the other workers': closed here,
    # so that each pipe ends (EOF) when the trainer ends, whatever other workers still run
    for other in list(_TRAINER_ENDS):
        other.close()
    worker, closed = None, False
    try:
        try:
            worker = worker_class(*args)
        except Exception as error:  # told to the trainer, as the answer to every call
            _answer_all_with(connection, error)
            return
        while not closed:
            try:
                name, call_args = connection.recv()
            except (EOFError, OSError):
                return
            try:
                answer: tuple[bool, Any] = (True, getattr(worker, name)(*call_args))
                closed = name == "close"  # only once close has returned
            except Exception as error:  # the worker's exception goes to the trainer
                answer = (False, error)
            if not _send(connection, answer):
                return
    finally:
        if not closed and worker is not None and hasattr(worker, "close"):
            try:
                worker.close()
            except Exception:  # noqa: S110 - the trainer is gone; nothing to tell
                pass
        # what is still running was started by a worker that could not close it (ended
        # while it was being made, or while closing): an executable in a session of its own
        _kill_children()


def _kill_children() -> None:
    """SIGKILL this process's children (Linux: /proc), and reap them."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    if not tasks.is_dir():
        return
    for task in tasks.iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, children):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds into _serve's finally, which closes the worker


def _send(connection: Connection, answer: tuple[bool, Any]) -> bool:
    """Send ``answer``; an answer that does not pickle goes as a RuntimeError naming it (an
    error is also unpickled here first: some pickle but do not unpickle, as an exception
    whose ``__init__`` takes other arguments than its ``args``, which the trainer would
    take for a lost worker). False when the trainer is gone."""
    try:
        if not answer[0]:
            pickle.loads(pickle.dumps(answer[1], protocol=pickle.HIGHEST_PROTOCOL))
        connection.send(answer)
    except (BrokenPipeError, OSError):
        return False
    except Exception as error:  # pickling failed before anything was written
        ok, value = answer
        what = f"{type(value).__name__}: {value}" if not ok else f"a {type(value).__name__}"
        connection.send((False, RuntimeError(f"{what} (the worker could not send it: {error})")))
    return True


def _answer_all_with(connection: Connection, error: Exception) -> None:
    """Answer every call with ``error`` until ``close`` or the end of the pipe."""
    while True:
        try:
            name, _ = connection.recv()
        except (EOFError, OSError):
            return
        if not _send(connection, (False, error)) or name == "close":
            return


class WorkerProcess:
    """An instance of ``worker_class(*args)`` in a child process; ``worker.method.remote(...)``
    sends a call and returns its :class:`Call` at once."""

    def __init__(self, worker_class: type, args: tuple[Any, ...]) -> None:
        # fork, as mlagents' SubprocessEnvManager: the worker starts at once, with the
        # trainer's modules already imported
        context = multiprocessing.get_context("fork")
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, worker_class, args), name="mla-learn worker"
        )
        _TRAINER_ENDS.add(self.connection)  # this worker's own included: the child closes it
        self.process.start()
        child.close()
        self.calls: deque[Call] = deque()

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Method(self, name)

    def call(self, name: str, args: tuple[Any, ...]) -> Call:
        call = Call(self)
        if self.connection.closed:
            call.settle(error=self._lost())
            return call
        self.calls.append(call)  # before sending: the answer may be read at once
        try:
            self.connection.send((name, args))
        except (BrokenPipeError, OSError):
            self._fail_all()
        except BaseException:  # Ctrl-C mid-message: the pipe can no longer be trusted
            self._fail_all()
            raise
        return call

    def receive(self) -> None:
        """Read one answer (there is one to read) and settle the oldest call with it."""
        try:
            ok, value = self.connection.recv()
            call = self.calls.popleft()
        except Exception:  # the end of the pipe (EOFError, OSError), or a torn message
            self._fail_all()
            return
        except BaseException:  # Ctrl-C mid-message: the pipe can no longer be trusted
            self._fail_all()
            raise
        call.settle(value=value) if ok else call.settle(error=value)

    def _fail_all(self) -> None:
        error = self._lost()
        while self.calls:
            self.calls.popleft().settle(error=error)
        self._close_connection()

    def _lost(self) -> WorkerLost:
        self.process.join(timeout=1.0)
        code = self.process.exitcode
        how = (
            "still running"
            if code is None
            else f"killed by signal {-code}"
            if code < 0
            else f"exit code {code}"
        )
        return WorkerLost(f"worker process {self.process.pid} ended ({how})")

    def stop(self, seconds: float) -> None:
        """End the process: it had ``seconds`` to end by itself, then SIGTERM, then SIGKILL."""
        self.process.join(timeout=seconds)
        for end in (self.process.terminate, self.process.kill):
            if not self.process.is_alive():
                break
            end()
            self.process.join(timeout=5.0)
        self._fail_all()

    def _close_connection(self) -> None:
        _TRAINER_ENDS.discard(self.connection)
        if not self.connection.closed:
            self.connection.close()


class ProcessBackend:
    """Workers as child processes of the trainer, on this machine."""

    lost: tuple[type[BaseException], ...] = (WorkerLost,)

    def start(self, worker_class: type, *args: Any) -> WorkerProcess:
        return WorkerProcess(worker_class, args)

    def wait(
        self, refs: list[Any], num_returns: int = 1, timeout: float | None = None
    ) -> tuple[list[Any], list[Any]]:
        """The calls answered (at least ``num_returns`` unless ``timeout`` passed first) and
        the others, in the order of ``refs``. Sleeps in the kernel between answers."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if sum(call.done for call in refs) >= num_returns:
                break
            pending = {c.worker.connection: c.worker for c in refs if not c.done}
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            for connection in wait_for_connections(list(pending), left):
                worker = pending[connection]  # type: ignore[index]
                if worker.calls:
                    worker.receive()
                else:  # readable with no call waiting: the end of the pipe
                    worker._fail_all()
            if deadline is not None and time.monotonic() >= deadline:
                break
        return [c for c in refs if c.done], [c for c in refs if not c.done]

    def get(self, refs: Any, timeout: float | None = None) -> Any:
        """The answer of a call (or a list of them), or the worker's exception."""
        calls = refs if isinstance(refs, list) else [refs]
        _, waiting = self.wait(calls, num_returns=len(calls), timeout=timeout)
        if waiting:
            raise TimeoutError(f"{len(waiting)} worker call(s) not answered in {timeout} s")
        for call in calls:
            if call.error is not None:
                raise call.error
        values = [call.value for call in calls]
        return values if isinstance(refs, list) else values[0]

    def kill(self, worker: WorkerProcess) -> None:
        worker.stop(seconds=1.0)  # a worker that was closed is exiting by itself

    def free_cpus(self) -> float:
        return float(os.cpu_count() or 1)


def this_machine() -> str:
    """How a worker of :class:`ProcessBackend` names its node."""
    return f"{socket.gethostname()} (this machine)"
