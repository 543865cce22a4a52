"""Notice when the processes that started the environment are gone.

Under ``mlagents-learn`` the environment runs in its own session (Ctrl-C never reaches
it) as a child of an env *worker* process, itself a child of the trainer's main process.
If the main process is killed with SIGKILL, the worker may hang forever and the
environment with it, blocked in a gRPC call that never returns. A :class:`Lifeline`
watches those ancestors from a daemon thread and calls back once one of them ends.

A process counts as ended when it no longer exists, is a zombie, or its pid now belongs
to a newer process (Linux: ``/proc/<pid>/stat`` start time; elsewhere: ``kill(pid, 0)``).
"""

from __future__ import annotations

import logging
import os
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
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self._period):
            for pid, identity in self.identities.items():
                if process_identity(pid) != identity:
                    logger.warning("Parent process %d has ended", pid)
                    self._on_end(pid)
                    return
