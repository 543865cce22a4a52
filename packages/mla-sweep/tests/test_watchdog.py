"""The watchdog's process finding and ending, on real processes (no Ray, no mlagents)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from mla_sweep.watchdog import _live_processes, _ps_processes, end_processes, trial_processes


def test_ps_and_proc_agree_on_this_process():
    mine = (os.getppid(), os.getpgrp())
    assert _live_processes()[os.getpid()] == mine
    assert _ps_processes()[os.getpid()] == mine  # the table without /proc (macOS)


def test_end_processes_reaches_children_in_sessions_of_their_own():
    # a stand-in for mlagents-learn (a group leader) whose child runs in its own session,
    # as mlagents starts environments; the child ignores SIGTERM, so SIGKILL must follow
    child = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    learn = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, time\n"
         f"subprocess.Popen([sys.executable, '-c', {child!r}], start_new_session=True)\n"
         "time.sleep(60)"],
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while len(trial_processes(learn.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    found = trial_processes(learn.pid)
    assert learn.pid in found and len(found) == 2, found
    end_processes(learn.pid, grace=1.0)
    learn.wait(5)
    assert not (found & set(_live_processes()))
