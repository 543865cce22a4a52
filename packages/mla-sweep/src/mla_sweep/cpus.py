"""CPU cores for one trial: ``resources: {cpu: N}`` as a limit on the trial's processes.

Ray only counts CPUs: a trial that asked for one may still keep every core of its node busy
(``mlagents-learn``, its environment processes, torch's and BLAS's thread pools). Here a
trial *reserves* ``ceil(N)`` distinct cores of its node, one lock file per core
(:mod:`mla_ray.locks`) in a folder every trial of the machine shares, and its
``mlagents-learn`` starts with its CPU affinity set to them (Linux ``sched_setaffinity``;
the environment processes it starts inherit it). The thread pools are sized to match
(:meth:`CpuReservation.environment`; torch's through :mod:`mla_sweep.learn`).

It degrades instead of failing: without CPU affinity (not Linux) only the thread counts are
set; a trial asking for at least as many cores as its node has reserves them all; when other
trials hold too many cores, the missing ones are shared with them (:attr:`CpuReservation.note`
says so).
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from pathlib import Path

from mla_ray.locks import LockFiles, Reservation

#: Where the core reservations of this machine live (one folder for every sweep and user).
DEFAULT_FOLDER = Path(tempfile.gettempdir()) / "mla-sweep-cpus"
#: Thread-count variables set to the trial's core count (OpenMP, MKL, OpenBLAS).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
#: Read by :mod:`mla_sweep.learn`: torch's intra-op thread count in ``mlagents-learn``.
TORCH_THREADS_VARIABLE = "MLA_SWEEP_TORCH_THREADS"


def usable_cores() -> list[int] | None:
    """The cores this process may run on, or ``None`` where CPU affinity is not available."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    return sorted(os.sched_getaffinity(0))


class CpuReservation(Reservation):
    """``ceil(cpus)`` cores of this machine reserved for one trial until :meth:`release`.

    :param cpus: the trial's ``resources.cpu`` (> 0; a fraction still gets one core).
    :param folder: the reservations folder (one per machine; tests use their own).
    :param owner: process id the reservation belongs to (default: this process).
    :param available: the node's cores (default: :func:`usable_cores`; ``None`` there means
        no CPU affinity on this system).

    :attr:`cores` is the affinity to give the trial (``None``: leave it as it is),
    :attr:`threads` the size of its thread pools, :attr:`note` why the cores are not all
    its own ('' when they are).
    """

    def __init__(
        self, cpus: float, folder: Path | None = None, owner: int | None = None,
        available: list[int] | None = None,
    ) -> None:  # fmt: skip
        wanted = max(1, math.ceil(cpus))
        self._locks = LockFiles(Path(folder or DEFAULT_FOLDER), owner)
        self.note = ""
        self.cores: list[int] | None
        if available is None:
            available = usable_cores()
        if available is None:
            self.cores, self.threads = None, wanted
            self.note = "CPU affinity is not available here: thread counts only"
        else:
            take = min(wanted, len(available))
            own: list[int] = []
            for core in available:
                if len(own) < take and self._locks.claim(f"cpu{core}"):
                    own.append(core)
            shared = [core for core in available if core not in own]
            random.shuffle(shared)  # spread the overflow over the busy cores
            self.cores = sorted(own + shared[: take - len(own)])
            self.threads = take
            notes = []
            if wanted > len(available):
                notes.append(f"{wanted} CPUs asked, the node has {len(available)}: all of them")
            if len(own) < take:
                notes.append(
                    f"only {len(own)} of {take} cores were free: sharing "
                    f"{sorted(set(self.cores) - set(own))} with other trials"
                )
            self.note = "; ".join(notes)

    @property
    def reserved(self) -> list[int]:
        """The cores held exclusively (a subset of :attr:`cores`)."""
        return sorted(int(path.stem[3:]) for path in self._locks.held)

    def environment(self) -> dict[str, str]:
        """Environment variables that size the trial's thread pools to :attr:`threads`."""
        count = str(self.threads)
        return {**dict.fromkeys(THREAD_VARIABLES, count), TORCH_THREADS_VARIABLE: count}

    def apply(self) -> None:
        """Confine the calling process (and what it starts later) to :attr:`cores`.

        Meant to run in the child between fork and exec (``preexec_fn``).
        """
        if self.cores is not None:
            os.sched_setaffinity(0, self.cores)
