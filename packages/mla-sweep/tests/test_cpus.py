"""CPU cores for trials sharing a machine: reserved per trial, given to its processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mla_sweep import cpus
from mla_sweep.cpus import CpuReservation, usable_cores


def test_concurrent_trials_get_distinct_cores_and_give_them_back(tmp_path):
    first = CpuReservation(1, folder=tmp_path, available=[0, 1, 2, 3])
    second = CpuReservation(2, folder=tmp_path, available=[0, 1, 2, 3])
    assert first.cores == first.reserved == [0] and first.note == ""
    assert second.cores == second.reserved == [1, 2] and second.threads == 2
    first.release()
    second.release()
    assert not list(tmp_path.glob("*.lock"))
    with CpuReservation(0.5, folder=tmp_path, available=[0, 1, 2, 3]) as fraction:
        assert fraction.cores == [0] and fraction.threads == 1  # a fraction is one core


def test_when_cores_run_out_a_trial_shares_and_says_so(tmp_path):
    held = CpuReservation(1, folder=tmp_path, available=[0, 1, 2])
    wide = CpuReservation(2, folder=tmp_path, available=[0, 1, 2])
    assert wide.reserved == [1, 2]
    late = CpuReservation(2, folder=tmp_path, available=[0, 1, 2])
    assert late.reserved == [] and len(late.cores) == 2 and late.threads == 2
    assert "only 0 of 2 cores were free" in late.note
    held.release()
    with CpuReservation(1, folder=tmp_path, available=[0, 1, 2]) as after:
        assert after.reserved == [0]  # released cores are free again
    wide.release()


def test_more_cpus_than_the_node_has_or_no_affinity(tmp_path, monkeypatch):
    everything = CpuReservation(8, folder=tmp_path, available=[0, 1])
    assert everything.cores == [0, 1] and everything.threads == 2
    assert "8 CPUs asked, the node has 2" in everything.note
    assert everything.reserved == [0, 1]  # all of them, so that other trials see them busy
    exact = CpuReservation(2, folder=tmp_path, available=[0, 1])
    assert exact.cores == [0, 1] and "only 0 of 2 cores were free" in exact.note
    everything.release()
    alone = CpuReservation(2, folder=tmp_path, available=[0, 1])
    assert alone.reserved == [0, 1] and alone.note == ""
    alone.release()
    monkeypatch.setattr(cpus, "usable_cores", lambda: None)  # a system without affinity
    unsupported = CpuReservation(1.5, folder=tmp_path)
    assert unsupported.cores is None and "not available" in unsupported.note
    assert unsupported.environment()["OMP_NUM_THREADS"] == "2"
    unsupported.apply()  # leaves this process as it was


def test_reservation_of_a_dead_trial_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / "cpu0.lock").write_text(dead.stdout.strip())
    (tmp_path / "cpu1.lock").write_text(str(os.getppid()))  # alive: respected
    with CpuReservation(1, folder=tmp_path, available=[0, 1, 2]) as reservation:
        assert reservation.reserved == [0]
    with CpuReservation(2, folder=tmp_path, available=[0, 1, 2]) as reservation:
        assert reservation.reserved == [0, 2]


@pytest.mark.skipif(not usable_cores() or len(usable_cores() or []) < 2, reason="needs 2 cores")
def test_the_child_runs_on_its_cores_with_its_thread_counts(tmp_path):
    cores = usable_cores() or []
    with CpuReservation(1, folder=tmp_path, available=cores) as reservation:
        probe = (
            "import os, subprocess, sys\n"
            "status = open('/proc/self/status').read()\n"
            "print([l.split()[1] for l in status.splitlines() if l.startswith('Cpus_allowed_list')][0])\n"
            "print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])\n"
            # what the trainer starts (its environment) inherits the affinity
            "print(subprocess.run([sys.executable, '-c', 'import os; print(sorted(os.sched_getaffinity(0)))'],"
            " capture_output=True, text=True).stdout.strip())\n"
        )  # fmt: skip
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
            preexec_fn=reservation.apply, env={**os.environ, **reservation.environment()},
        ).stdout.split("\n")  # fmt: skip
        assert out[0] == str(reservation.cores[0])
        assert out[1] == "1 1"
        assert out[2] == str(reservation.cores)


def test_mlagents_learn_runs_with_the_trials_torch_threads():
    # mlagents sizes torch's pool from os.cpu_count() at import; the trial's count wins.
    env = {**os.environ, "MLA_SWEEP_TORCH_THREADS": "3"}
    out = subprocess.run([sys.executable, "-m", "mla_sweep.learn", "--help"],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "torch threads 3" in out.stdout
    assert "--base-port" in out.stdout  # mlagents-learn's own command line
