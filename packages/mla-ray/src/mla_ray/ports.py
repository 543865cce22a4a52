"""Port ranges for ``mlagents-learn`` runs that share a machine.

``mlagents-learn`` listens on ``--base-port + worker_id`` for each of its ``--num-envs``
environments, and binds only once it starts, seconds after its ports were chosen. A port
that is merely free (the bind test of :func:`mla_plugin_core.testing.learn.free_base_port`)
could be chosen by two trials starting together; here a range is also *reserved*: one lock
file per port (:mod:`mla_ray.locks`) in a folder every trial of this machine shares.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from mla_plugin_core.util.ports import port_free
from mla_ray.locks import LockFiles, Reservation

#: Where the reservations of this machine live (one folder for every sweep and user).
DEFAULT_FOLDER = Path(tempfile.gettempdir()) / "mla-sweep-ports"
#: Ports are drawn from this range (above the usual services, below Linux's ephemeral ports).
PORT_RANGE = (20_000, 32_000)


class PortReservation(Reservation):
    """Ports ``base .. base + count - 1`` reserved for one run until :meth:`release`.

    :param count: how many consecutive ports (``--num-envs`` of the run).
    :param folder: the reservations folder (one per machine; tests use their own).
    :param owner: process id the reservation belongs to (default: this process).
    """

    def __init__(
        self, count: int = 1, folder: Path | None = None, owner: int | None = None,
        attempts: int = 500,
    ) -> None:  # fmt: skip
        self.count = count
        self._locks = LockFiles(Path(folder or DEFAULT_FOLDER), owner)
        self.folder = self._locks.folder
        for _ in range(attempts):
            base = random.randrange(PORT_RANGE[0], PORT_RANGE[1] - count)
            if self._claim(base):
                self.base = base
                return
        raise RuntimeError(f"no {count} consecutive free ports found in {PORT_RANGE}")

    def _claim(self, base: int) -> bool:
        for port in range(base, base + self.count):
            if not (self._locks.claim(str(port)) and port_free(port)):
                self.release()
                return False
        return True
