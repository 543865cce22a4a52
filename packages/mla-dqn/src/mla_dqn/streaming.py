"""Reading ``.demo`` files of a folder while players record them (#25, work in progress).

A :class:`DemoFolder` keeps, per file, the byte offset of the first record not yet taken and
the records of the episode being read. :meth:`DemoFolder.poll` reads only the bytes that
came since the last poll and returns the episodes completed by them (an episode is taken
whole, once its ``done`` record is read). The layout is Unity's (see
:mod:`mla_envs.recording`): metadata at byte 0 (``number_steps`` 0 while recording), brain
parameters at byte 33, then length-delimited records; after ``number_steps`` records of a
closed file comes a copy of the metadata, which is not a record.

What it has taken is :meth:`DemoFolder.state` (JSON-compatible): per file the offset after
its last episode taken, so a restored reader reads the episode in progress again from its
start and takes nothing twice.

A record whose body does not parse is skipped with one warning naming the file and byte
offset; a record length beyond :data:`MAX_RECORD_BYTES` cannot be framed past, so the file
is read no further (one warning).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.internal.decoder import _DecodeVarint32
from google.protobuf.message import DecodeError
from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_envs.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from mlagents_envs.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto

#: Where Unity writes the brain parameters (mlagents' ``INITIAL_POS``).
BRAIN_AT = 33
#: A record longer than this is taken for a broken length (framing lost).
MAX_RECORD_BYTES = 64 * 2**20


@dataclass
class _Cursor:
    """One file: where its next record starts, the offset after its last episode taken,
    the records of the episode being read, and whether reading it stopped."""

    offset: int = 0  # 0: the header is not read yet
    taken: int = 0
    episode: list[AgentInfoActionPairProto] = field(default_factory=list)
    records: int = 0  # records read (for number_steps of a closed file)
    brain: BrainParametersProto | None = None
    stopped: bool = False


class DemoFolder:
    """The ``.demo`` files of ``folder``, read as they grow.

    :param warn: called with one line per skipped record or abandoned file.
    """

    def __init__(self, folder: str | os.PathLike, warn: Callable[[str], None]) -> None:
        self.folder = Path(folder)
        self.warn = warn
        self._cursors: dict[str, _Cursor] = {}

    def state(self) -> dict[str, Any]:
        """Per file name, the offset after its last episode taken."""
        return {name: c.taken for name, c in self._cursors.items() if c.taken}

    def restore(self, state: dict[str, Any]) -> None:
        """Start each file of ``state`` after its last episode taken."""
        for name, taken in state.items():
            self._cursors[name] = _Cursor(offset=0, taken=int(taken))

    def poll(self) -> list[tuple[str, BrainParametersProto, list[AgentInfoActionPairProto]]]:
        """The episodes completed since the last poll: ``(file name, its brain parameters,
        the episode's records)``, files in name order."""
        episodes = []
        for path in sorted(self.folder.glob("*.demo")):
            cursor = self._cursors.setdefault(path.name, _Cursor())
            if not cursor.stopped:
                episodes += [(path.name, cursor.brain, e) for e in self._read(path, cursor)]
        return episodes  # type: ignore[return-value]

    def _read(self, path: Path, cursor: _Cursor) -> list[list[AgentInfoActionPairProto]]:
        with open(path, "rb") as file:
            data = file.read()  # TODO: read from the offset only (seek) once headers are known
        meta = _delimited(data, 0)
        if meta is None:
            return []
        steps = DemonstrationMetaProto.FromString(meta[0]).number_steps  # 0 while recording
        if cursor.brain is None:
            brain = _delimited(data, BRAIN_AT)
            if brain is None:
                return []
            cursor.brain = BrainParametersProto.FromString(brain[0])
            start = brain[1]
            if cursor.taken:  # restored: the records before it were taken
                cursor.records = _count(data, start, cursor.taken)
                start = cursor.taken
            cursor.offset = start
        done = []
        while not steps or cursor.records < steps:
            try:
                size, body = _DecodeVarint32(data, cursor.offset)
            except IndexError:
                break  # the length itself is still being written
            if size > MAX_RECORD_BYTES:
                self.warn(
                    f"{path}: a record length of {size} bytes at byte {cursor.offset}: "
                    f"the file is read no further"
                )
                cursor.stopped = True
                break
            if body + size > len(data):
                break  # the record is still being written
            at, cursor.offset = cursor.offset, body + size
            cursor.records += 1
            try:
                record = AgentInfoActionPairProto.FromString(data[body : body + size])
            except DecodeError:
                self.warn(f"{path}: the record at byte {at} does not parse; skipped")
                continue
            cursor.episode.append(record)
            if record.agent_info.done:
                done.append(cursor.episode)
                cursor.episode = []
                cursor.taken = cursor.offset
        return done


def _delimited(data: bytes, at: int) -> tuple[bytes, int] | None:
    """The message starting at byte ``at`` and the offset after it, or ``None`` while it
    is incomplete."""
    try:
        size, body = _DecodeVarint32(data, at)
    except IndexError:
        return None
    if body + size > len(data):
        return None
    return data[body : body + size], body + size


def _count(data: bytes, start: int, stop: int) -> int:
    """Records between byte offsets ``start`` and ``stop`` (record boundaries)."""
    count = 0
    while start < stop:
        size, body = _DecodeVarint32(data, start)
        start = body + size
        count += 1
    return count
