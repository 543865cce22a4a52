"""Port ranges for trials sharing a machine: reserved, never handed out twice."""

from __future__ import annotations

import socket
import subprocess
import sys

from mla_ray import ports
from mla_ray.ports import PortReservation


def test_two_trials_on_one_machine_get_disjoint_ranges(tmp_path, monkeypatch):
    # A tiny range forces the second reservation to meet the first one's ports.
    monkeypatch.setattr(ports, "PORT_RANGE", (41000, 41012))
    first = PortReservation(4, folder=tmp_path)
    second = PortReservation(4, folder=tmp_path)
    a = set(range(first.base, first.base + 4))
    b = set(range(second.base, second.base + 4))
    assert not a & b
    first.release()
    second.release()
    assert not list(tmp_path.glob("*.lock"))


def test_a_port_in_use_is_skipped(tmp_path, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("localhost", 0))
        port = busy.getsockname()[1]
        busy.listen()
        monkeypatch.setattr(ports, "PORT_RANGE", (port, port + 3))
        with PortReservation(1, folder=tmp_path) as reservation:
            assert reservation.base == port + 1


def test_reservation_of_a_dead_process_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.setattr(ports, "PORT_RANGE", (42000, 42002))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / "42000.lock").write_text(dead.stdout.strip())
    with PortReservation(1, folder=tmp_path) as reservation:
        assert reservation.base == 42000
        assert (tmp_path / "42000.lock").read_text() == str(reservation.owner)


def test_reservation_of_a_live_process_is_respected(tmp_path, monkeypatch):
    monkeypatch.setattr(ports, "PORT_RANGE", (43000, 43003))
    (tmp_path / "43000.lock").write_text(str(subprocess.os.getppid()))
    with PortReservation(1, folder=tmp_path) as reservation:
        assert reservation.base == 43001


def test_hand_over_keeps_ports_reserved_for_the_child(tmp_path, monkeypatch):
    monkeypatch.setattr(ports, "PORT_RANGE", (44000, 44003))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reservation = PortReservation(1, folder=tmp_path, owner=999_999_999)
        reservation.hand_over(child.pid)
        other = PortReservation(1, folder=tmp_path)
        assert other.base != reservation.base
    finally:
        child.kill()
        child.wait()


def test_ray_sockets_move_to_a_short_folder_under_a_deep_tmpdir(tmp_path, monkeypatch):
    from mla_ray.local_ray import SOCKET_PATH_MAX_BYTES, SOCKET_SUFFIX_BYTES, ray_temp_dir

    monkeypatch.delenv("RAY_TMPDIR", raising=False)
    monkeypatch.setenv("TMPDIR", "/tmp")
    assert ray_temp_dir() is None  # Ray's default (/tmp/ray) fits
    monkeypatch.setenv("TMPDIR", str(tmp_path / ("d" * 60)))
    short = ray_temp_dir()
    assert short is not None and len(short) + SOCKET_SUFFIX_BYTES <= SOCKET_PATH_MAX_BYTES
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / ("d" * 60)))
    assert ray_temp_dir() is None  # the user's explicit choice is kept


def test_a_cluster_started_for_the_run_is_not_called_existing():
    # the bug this catches: a run that started its own Ray logged Ray's "Connecting to
    # existing Ray cluster", which reads as if it had joined someone else's
    import logging

    from mla_ray.local_ray import connect, disconnect

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    keep, ours = Keep(), Keep()
    ray_logger, our_logger = logging.getLogger("ray._private.worker"), logging.getLogger("mla_ray")
    old_level = our_logger.level
    our_logger.setLevel(logging.INFO)
    ray_logger.addHandler(keep)
    our_logger.addHandler(ours)
    try:
        connect(None, num_cpus=1, log_to_driver=False)
    finally:
        disconnect()
        ray_logger.removeHandler(keep)
        our_logger.removeHandler(ours)
        our_logger.setLevel(old_level)
    assert not any(m.startswith("Connecting to existing Ray cluster") for m in records), records
    assert any(m.startswith("Started Ray on this machine for this run") for m in records), records
