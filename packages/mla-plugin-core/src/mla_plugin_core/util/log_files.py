"""The end of a log file, for error messages (standard library only: mla-sweep's driver
reads trial logs with it without importing mlagents or torch)."""

from __future__ import annotations

import os

#: How many lines of an environment's log the message shows.
LOG_TAIL_LINES = 15
#: How much of the end of a log file is read to find them (a player log can be large).
LOG_TAIL_BYTES = 64 * 1024


def tail_lines(path: str, count: int = LOG_TAIL_LINES) -> list[str] | None:
    """The last ``count`` lines of the text file ``path``, trailing blank lines left out.

    ``None`` when the file cannot be read (the environment never wrote it). Only the last
    :data:`LOG_TAIL_BYTES` are read; bytes that are not UTF-8 are replaced.
    """
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - LOG_TAIL_BYTES))
            data = log.read()
    except OSError:
        return None
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > LOG_TAIL_BYTES:
        lines = lines[1:]  # the first one is cut
    while lines and not lines[-1].strip():
        lines.pop()
    return lines[-count:] if count > 0 else []
