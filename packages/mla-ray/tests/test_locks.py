"""Lock-file reservations under contention: one winner, stale files taken over once."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

from mla_ray.locks import LockFiles

CLAIMERS = 6
ROUNDS = 25


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _claim(folder, barrier, results) -> None:
    locks = LockFiles(folder)
    barrier.wait()
    results.put(locks.claim("cpu0"))


def test_concurrent_claims_of_a_stale_file_have_one_winner(tmp_path):
    context = multiprocessing.get_context("fork")
    dead = _dead_pid()
    for _ in range(ROUNDS):
        (tmp_path / "cpu0.lock").write_text(str(dead))  # left by a trial that died
        barrier, results = context.Barrier(CLAIMERS), context.Queue()
        claimers = [
            context.Process(target=_claim, args=(tmp_path, barrier, results))
            for _ in range(CLAIMERS)
        ]
        for process in claimers:
            process.start()
        won = [results.get(timeout=30) for _ in claimers]
        for process in claimers:
            process.join()
        assert won.count(True) == 1, won


def test_an_empty_file_of_a_writer_that_died_is_stale(tmp_path):
    (tmp_path / "cpu0.lock").write_text("")
    locks = LockFiles(tmp_path)
    assert locks.claim("cpu0")
    assert (tmp_path / "cpu0.lock").read_text() == str(os.getpid())


def test_release_leaves_a_file_that_names_someone_else(tmp_path):
    mine = LockFiles(tmp_path)
    assert mine.claim("cpu0")
    (tmp_path / "cpu0.lock").write_text(str(os.getppid()))  # taken over meanwhile
    mine.release()
    assert (tmp_path / "cpu0.lock").read_text() == str(os.getppid())
    handed = LockFiles(tmp_path)
    assert handed.claim("cpu1")
    handed.hand_over(os.getppid())
    handed.release()  # the owner is the parent now, and the file names it: removed
    assert not (tmp_path / "cpu1.lock").exists()
