"""Write files so that a crash or a kill never leaves a half-written one behind.

The data goes to a temporary file in the destination's folder, is flushed to disk, and
only then replaces the destination by ``os.replace`` (atomic on POSIX and Windows). A
reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` when the block succeeds.

    If the block raises, the temporary file is removed and ``path`` is left untouched.
    """
    destination = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(destination))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=folder, prefix=f".{os.path.basename(destination)}.", suffix=".tmp"
    )
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
