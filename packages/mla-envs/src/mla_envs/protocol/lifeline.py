"""Notice when the processes that started the environment are gone.

Under ``mlagents-learn`` the environment runs in its own session (Ctrl-C never reaches
it) as a child of an env *worker* process, itself a child of the trainer's main process.
If the main process is killed with SIGKILL, the worker may hang forever and the
environment with it, blocked in a gRPC call that never returns. A :class:`Lifeline`
watches those ancestors from a daemon thread and calls back once one of them ends.

The trainer's worker does not notice either: it stays, orphaned, with the trainer's port
still bound, so the next ``mlagents-learn`` cannot start. :func:`release_orphaned_worker`
ends it (SIGTERM) once the trainer's main process is gone, but only when it is an
``mlagents`` process.

A process counts as ended when it no longer exists, is a zombie, or its pid now belongs
to a newer process (Linux: ``/proc/<pid>/stat`` start time; elsewhere: ``kill(pid, 0)``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

_PROC = Path("/proc")


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name, or None if unreadable."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    return text[text.rindex(")") + 2 :].split()


def process_identity(pid: int) -> str | None:
    """A token that stays the same for the life of process ``pid``; None if it ended.

    On Linux the token is the start time (pid reuse gives a new token); zombies count
    as ended.
    """
    if _PROC.is_dir():
        fields = _proc_stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return None
        return fields[19]  # field 22 of stat: start time in clock ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return str(pid)


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid`` (Linux only; None elsewhere or when unreadable)."""
    fields = _proc_stat(pid) if _PROC.is_dir() else None
    return int(fields[1]) if fields else None


def command_line(pid: int) -> str:
    """The command line of ``pid`` ("" when unreadable)."""
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def release_orphaned_worker(worker: int, trainer: int) -> bool:
    """SIGTERM ``worker`` if it is an mlagents process left behind by ``trainer``.

    :param worker: our parent, the trainer's env worker.
    :param trainer: the worker's former parent, now ended.
    :return: whether a signal was sent.
    """
    if process_identity(worker) is None or parent_pid(worker) == trainer:
        return False
    if "mlagents" not in command_line(worker):
        return False
    logger.warning("Ending mlagents worker %d, orphaned by trainer %d", worker, trainer)
    os.kill(worker, signal.SIGTERM)
    return True


def ancestors(depth: int) -> list[int]:
    """This process's parent, grandparent, ... up to ``depth`` levels, init excluded."""
    chain: list[int] = []
    pid: int | None = os.getppid()
    while pid and pid > 1 and len(chain) < depth:
        chain.append(pid)
        pid = parent_pid(pid)
    return chain


class Lifeline:
    """Calls ``on_end(pid)`` once, from a daemon thread, when a watched process ends.

    :param pids: processes to watch, e.g. :func:`ancestors` ``(2)``.
    :param on_end: called with the pid of the first process found ended.
    :param period: seconds between checks.
    """

    def __init__(self, pids: list[int], on_end: Callable[[int], None], period: float = 1.0) -> None:
        self.identities = {pid: process_identity(pid) for pid in pids}
        self.identities = {p: i for p, i in self.identities.items() if i is not None}
        self._on_end = on_end
        self._period = period
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="lifeline", daemon=True)

    def start(self) -> Lifeline:
        if self.identities:
            logger.info("Watching parent processes %s", sorted(self.identities))
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; waits for a callback in progress, so that it is not cut short
        when the process exits right after (the thread is a daemon)."""
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stopped.wait(self._period):
            for pid, identity in self.identities.items():
                if process_identity(pid) != identity:
                    logger.warning("Parent process %d has ended", pid)
                    self._on_end(pid)
                    return
