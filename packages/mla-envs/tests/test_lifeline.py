"""Lifeline: the callback for an ended parent runs to its end even when the env stops."""

import subprocess
import sys
import threading

from mla_envs.protocol.lifeline import Lifeline


def test_stop_waits_for_a_callback_in_progress():
    watched = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started, finished = threading.Event(), threading.Event()

    def on_end(pid: int) -> None:
        started.set()
        threading.Event().wait(0.5)  # e.g. signalling an orphaned worker
        finished.set()

    lifeline = Lifeline([watched.pid], on_end, period=0.05).start()
    try:
        watched.kill()
        watched.wait()
        assert started.wait(10), "the ended process was not noticed"
        lifeline.stop()  # what serve() does once the client has stopped
        assert finished.is_set(), "stop() returned while the callback was still running"
    finally:
        watched.kill()
        watched.wait()
