"""Machine-wide reservations of numbered things (ports, CPU cores) by lock files.

One file per reserved thing, created exclusively (``O_EXCL``, under a folder-wide ``flock``)
in a folder that every trial of the machine shares, holding the reserving process id. A file whose process is gone is
stale and taken over; :meth:`LockFiles.hand_over` passes a reservation on to a child process
so that it lasts as long as that child does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
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

    Every change to the folder (claim, hand-over, release) happens under an exclusive
    ``flock`` of ``<folder>/.mutex``, so a file is never seen half-written, two processes
    never take over the same stale file, and a release only removes files that still name
    their owner. The folder is shared by every user of the machine (mode 1777, as ``/tmp``).

    :param folder: the reservations folder (created if missing).
    :param owner: process id written into each file (default: this process).
    """

    def __init__(self, folder: Path, owner: int | None = None) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            self.folder.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # someone else's folder: keep its mode
                self.folder.chmod(0o1777)
        self.owner = os.getpid() if owner is None else owner
        self.held: list[Path] = []

    @contextlib.contextmanager
    def _mutex(self) -> Iterator[None]:
        path = self.folder / ".mutex"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError as err:
            raise PermissionError(
                f"mla-ray: cannot open {path} ({err.strerror}): the reservations folder must be "
                "writable by every user who runs sweeps on this machine"
            ) from None
        try:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # also releases the flock

    def _holder(self, path: Path) -> int | None:
        """The live process named in ``path``; None if there is no file or it is stale (its
        process is gone, or it is empty or garbled: its writer died while writing)."""
        try:
            holder = int(path.read_text().strip() or "0")
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            holder = 0
        return holder if holder and alive(holder) else None

    def claim(self, name: str) -> bool:
        """Create ``<folder>/<name>.lock`` for the owner; False if a live process holds it."""
        path = self.folder / f"{name}.lock"
        with self._mutex():
            if path.exists():
                if self._holder(path) is not None:
                    return False
                try:
                    path.unlink()  # stale
                except OSError:
                    return False  # e.g. another user's stale file in the sticky folder
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as handle:
                handle.write(str(self.owner))
        self.held.append(path)
        return True

    def hand_over(self, pid: int) -> None:
        """Make process ``pid`` the owner of every file held."""
        with self._mutex():
            for path in self.held:
                path.write_text(str(pid))
            self.owner = pid

    def release(self) -> None:
        """Remove every file held that still names the owner (idempotent)."""
        if not self.held:
            return
        with self._mutex():
            for path in self.held:
                try:
                    if path.read_text().strip() == str(self.owner):
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
