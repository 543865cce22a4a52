"""Write files so that a crash or a kill never leaves a half-written one behind.

The data goes to a temporary file in the destination's folder, is flushed to disk, and
only then replaces the destination by ``os.replace`` (atomic on POSIX and Windows). A
reader sees the old file or the new one, never a mix.

The temporary file is named ``.<name>.<8 random characters>.tmp`` and created with the
mode ``open()`` would give (``0o666`` less the umask, typically ``0o644``), so the final
file has the same permissions as one written by ``torch.save`` or ``np.savez``. A kill
during the write leaves the temporary file behind: :func:`remove_stale_temporaries`
deletes such leftovers (and only those) when a run starts again.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from typing import IO

#: Names of :func:`atomic_write`'s temporary files. ``tempfile.mkstemp`` used before made
#: the random part of ``[a-z0-9_]``; the hexadecimal one of now is a subset.
TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _create_temporary(folder: str, name: str) -> tuple[int, str]:
    """Create ``folder/.<name>.<random>.tmp`` exclusively, mode ``0o666`` less the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` when the block succeeds.

    If the block raises, the temporary file is removed and ``path`` is left untouched.
    """
    destination = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = _create_temporary(folder, os.path.basename(destination))
    try:
        with os.fdopen(handle, mode) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, destination)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def remove_stale_temporaries(
    folder: str | os.PathLike[str], extra_patterns: Iterable[re.Pattern[str]] = ()
) -> list[str]:
    """Delete the temporary files a killed writer left in ``folder`` (not its subfolders).

    Only names of :data:`TEMPORARY_NAME` (and of ``extra_patterns``) are touched; call it
    only when no write into ``folder`` is in progress (at the start of a run).

    :return: the paths removed.
    """
    patterns = [TEMPORARY_NAME, *extra_patterns]
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False) and any(p.match(entry.name) for p in patterns):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return sorted(removed)
