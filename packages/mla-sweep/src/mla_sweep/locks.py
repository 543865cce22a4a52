"""Machine-wide reservations of numbered things (ports, CPU cores) by lock files.

One file per reserved thing, created exclusively (``O_EXCL``) in a folder that every trial
of the machine shares, holding the reserving process id. A file whose process is gone is
stale and taken over; :meth:`LockFiles.hand_over` passes a reservation on to a child process
so that it lasts as long as that child does.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TypeVar

R = TypeVar("R", bound="Reservation")


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LockFiles:
    """The lock files one reservation holds in ``folder``, owned by process ``owner``.

    :param folder: the reservations folder (created if missing).
    :param owner: process id written into each file (default: this process).
    """

    def __init__(self, folder: Path, owner: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.owner = os.getpid() if owner is None else owner
        self.held: list[Path] = []

    def claim(self, name: str) -> bool:
        """Create ``<folder>/<name>.lock`` for the owner; False if a live process holds it."""
        path = self.folder / f"{name}.lock"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    holder = int(path.read_text() or "0")
                except (OSError, ValueError):
                    return False  # being written right now: someone else's
                if holder and alive(holder):
                    return False
                try:
                    path.unlink()  # stale: its process is gone
                except OSError as err:
                    if err.errno != errno.ENOENT:
                        return False
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(self.owner))
            self.held.append(path)
            return True
        return False

    def hand_over(self, pid: int) -> None:
        """Make process ``pid`` the owner of every file held."""
        self.owner = pid
        for path in self.held:
            path.write_text(str(pid))

    def release(self) -> None:
        """Remove every file held (idempotent)."""
        for path in self.held:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self.held = []


class Reservation:
    """What a reservation of this machine (ports, cores) held in lock files can do: be handed
    over to the child process that uses it, and be given back (also by ``with``)."""

    _locks: LockFiles

    @property
    def owner(self) -> int:
        """The process the reservation belongs to."""
        return self._locks.owner

    def hand_over(self, pid: int) -> None:
        """Make process ``pid`` (the trial's ``mlagents-learn``) the owner: the reservation
        then lasts as long as that process lives, even if the one that made it dies first."""
        self._locks.hand_over(pid)

    def release(self) -> None:
        """Give it back (idempotent)."""
        self._locks.release()

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
