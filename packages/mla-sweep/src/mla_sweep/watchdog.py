"""Stop a trial's ``mlagents-learn`` and everything it started, also once its Ray worker is gone.

A trial's Ray worker (:mod:`mla_sweep.trial`) holds the write end of a pipe, the trial's
*lifeline*, whose read end it hands to ``mlagents-learn`` (:mod:`mla_sweep.learn`), which
gives it to this watchdog: ``python -m mla_sweep.watchdog PID FD``, a child of
``mlagents-learn`` in a session of its own. The lifeline ends when the worker closes it to
stop the trial (ASHA, the end of the sweep, Ctrl-C of the driver) and when the worker dies
(Ray force-kills it 10 s after Ctrl-C, or a crash); either way the watchdog, which is not a
child of the worker and so neither dies with it nor is killed by Ray with it, stops the run:

1. SIGINT to ``mlagents-learn``, as Ctrl-C: it saves its model and checkpoint and closes
   its environment;
2. if it still runs after :data:`STOP_GRACE_SECONDS`, SIGTERM to every process of the trial
   (:func:`trial_processes`: ``mlagents-learn``'s process group, its environment workers,
   and the environments they started in sessions of their own), and SIGKILL to those left
   after :data:`TERM_GRACE_SECONDS`.

Whenever ``mlagents-learn`` ends, also by itself or killed, the watchdog ends what is left of
the trial the same way (step 2) and exits: an environment worker whose trainer was killed
would otherwise wait on its pipe forever.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The environment variable through which a trial passes its lifeline's file descriptor.
LIFELINE_VARIABLE = "MLA_SWEEP_LIFELINE_FD"
#: Seconds ``mlagents-learn`` gets after SIGINT to save and close its environment.
STOP_GRACE_SECONDS = 60.0
#: Seconds between SIGTERM and SIGKILL of what is left of a trial.
TERM_GRACE_SECONDS = 10.0
#: Seconds between looks at the lifeline and the processes.
POLL_SECONDS = 0.5
#: Every process of a trial has ended within this many seconds of its lifeline's end.
STOP_BOUND_SECONDS = STOP_GRACE_SECONDS + TERM_GRACE_SECONDS + 4 * POLL_SECONDS


def _ps_processes() -> dict[int, tuple[int, int]]:
    """As :func:`_live_processes`, from ``ps`` (systems without ``/proc``, such as macOS)."""
    lines = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    table: dict[int, tuple[int, int]] = {}
    for line in lines:
        pid, parent, group, state = line.split()[:4]
        if not state.startswith(("Z", "X")):
            table[int(pid)] = (int(parent), int(group))
    return table


def _live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process of this machine that is not a zombie."""
    if not os.path.isdir("/proc"):
        return _ps_processes()
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path("/proc", name, "stat").read_text()
        except OSError:
            continue
        # after the command name, in parentheses (it may hold spaces and ')'): state ppid pgrp
        state, parent, group = text[text.rindex(")") + 2 :].split()[:3]
        if state not in ("Z", "X"):
            table[int(name)] = (int(parent), int(group))
    return table


def trial_processes(learn: int) -> set[int]:
    """The live processes of the trial whose ``mlagents-learn`` is ``learn`` (a session and
    process group leader): its process group, and what its members started (the
    environments run in sessions of their own), this process excepted."""
    table = _live_processes()
    found = {pid for pid, (_, group) in table.items() if group == learn}
    while True:
        children = {pid for pid, (parent, _) in table.items() if parent in found} - found
        if not children:
            break
        found |= children
    found.discard(os.getpid())
    return found


def _wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether ``condition`` came true within ``seconds`` (looked at every POLL_SECONDS)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def end_processes(learn: int, grace: float = TERM_GRACE_SECONDS) -> None:
    """SIGTERM every process of the trial of ``learn`` (:func:`trial_processes`), then
    SIGKILL those still there after ``grace`` seconds.

    The processes found first stay targets: once their parents die, an environment in a
    session of its own is adopted by init and no longer found from ``learn``."""
    targets = trial_processes(learn)

    def left() -> set[int]:
        return targets & set(_live_processes())

    for signum in (signal.SIGTERM, signal.SIGKILL):
        targets |= trial_processes(learn)
        for pid in left():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        if _wait_for(lambda: not left(), grace):
            return


def _say(line: str) -> None:
    print(f"mla-sweep: {line}", flush=True)  # into the trial's log, as mlagents-learn's output


def _lifeline_ended(lifeline: int) -> bool:
    """Whether the lifeline has ended (looks for up to POLL_SECONDS)."""
    ready, _, _ = select.select([lifeline], [], [], POLL_SECONDS)
    return bool(ready) and not os.read(lifeline, 4096)


def watch(learn: int, lifeline: int, grace: float = STOP_GRACE_SECONDS) -> None:
    """The watchdog of the trial whose ``mlagents-learn`` is ``learn``, this process's parent
    (so it runs while ``os.getppid()`` is ``learn``): at the end of ``lifeline``, SIGINT to it
    and ``grace`` seconds to stop; then :func:`end_processes` for what is left."""

    def running() -> bool:
        return os.getppid() == learn

    while running() and not _lifeline_ended(lifeline):
        pass
    if running():
        _say("trial stopped (or its Ray worker ended): SIGINT to mlagents-learn, as Ctrl-C")
        os.kill(learn, signal.SIGINT)
        if not _wait_for(lambda: not running(), grace):
            _say(f"mlagents-learn still runs {grace:g} s after SIGINT: SIGTERM, then SIGKILL")
    end_processes(learn)


def start_watchdog() -> None:
    """In a trial's ``mlagents-learn``: start its watchdog on the lifeline named by
    :data:`LIFELINE_VARIABLE` (none without it); this process keeps no copy of the lifeline
    (nor waits for the watchdog, which outlives it)."""
    fd = os.environ.pop(LIFELINE_VARIABLE, None)
    if fd is None:
        return
    try:
        subprocess.Popen(
            [sys.executable, "-m", "mla_sweep.watchdog", str(os.getpid()), fd],
            stdin=subprocess.DEVNULL, pass_fds=(int(fd),), start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(int(fd))


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mla_sweep.watchdog PID FD``: :func:`watch` over ``mlagents-learn`` PID."""
    learn, lifeline = (int(arg) for arg in (sys.argv[1:] if argv is None else argv))
    watch(learn, lifeline)


if __name__ == "__main__":
    main()
