"""Whether a port is free, checked the way ``mlagents-learn`` checks it before it listens.

mlagents binds ``("localhost", port)`` once (with ``SO_REUSEADDR`` on Linux, so a port in
TIME_WAIT after an earlier run counts as free) and raises ``UnityWorkerInUseException``
when that fails. Every tool here that chooses or reports ports (``mla-plugin doctor``,
the testing kit's ``free_base_port``, mla-sweep's port reservations) asks this module.
"""

from __future__ import annotations

import socket
import sys


def port_free(port: int) -> bool:
    """Whether ``mlagents-learn`` could listen on ``port`` of localhost now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sys.platform.startswith("linux"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("localhost", port))
        except OSError:
            return False
    return True


def ports_free(base: int, count: int = 1) -> bool:
    """Whether ``base .. base + count - 1`` are all free (``--base-port`` and ``--num-envs``)."""
    return all(port_free(base + offset) for offset in range(count))
