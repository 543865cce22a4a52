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

A record whose body does not parse at two polls in a row is skipped with one warning naming
the file and byte offset (at the first, it may be the copy of the metadata a recorder
writes after its last record just before it sets ``number_steps``); a record length beyond
:data:`MAX_RECORD_BYTES` cannot be framed past, so the file is read no further (one
warning). Given the behavior's spec, a file of another spec is read no further (one
warning naming the file and what differs).

Each poll reads the 33 bytes of the metadata and the bytes after the file's offset, no more.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from google.protobuf.internal.decoder import _DecodeVarint32
from google.protobuf.message import DecodeError
from mlagents_envs.base_env import BehaviorSpec
from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_envs.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from mlagents_envs.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto
from mlagents_envs.rpc_utils import behavior_spec_from_proto

from mla_dqn.demonstrations import RecordingSteps, check_spec, records_to_steps

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
    checked: bool = False  # its spec, on its first record
    suspect: int = -1  # a record that did not parse at the last poll
    stopped: bool = False


class DemoFolder:
    """The ``.demo`` files of ``folder``, read as they grow.

    :param warn: called with one line per skipped record or abandoned file.
    :param behavior_spec: when given, each file's spec (its brain parameters and first
        record, as mlagents' loader builds it) must be this one, checked as for the files
        read at start (:func:`~mla_dqn.demonstrations.load_expert_steps`); a file of another
        spec is read no further, with one warning.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        warn: Callable[[str], None],
        behavior_spec: BehaviorSpec | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.warn = warn
        self.behavior_spec = behavior_spec
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
        """The episodes completed in the bytes of ``path`` after ``cursor.offset``; only
        those bytes are read (and the metadata at byte 0, for ``number_steps``)."""
        with open(path, "rb") as file:
            meta = _delimited(file.read(BRAIN_AT), 0)
            if meta is None:
                return []
            steps = DemonstrationMetaProto.FromString(meta[0]).number_steps  # 0: recording
            if cursor.brain is None:
                file.seek(BRAIN_AT)
                data, base = file.read(), BRAIN_AT
                brain = _delimited(data, 0)
                if brain is None:
                    return []
                cursor.brain = BrainParametersProto.FromString(brain[0])
                cursor.offset = base + brain[1]
                if cursor.taken:  # restored: the records before it were taken
                    cursor.records = _count(data, brain[1], cursor.taken - base)
                    cursor.offset = cursor.taken
            else:
                file.seek(cursor.offset)
                data, base = file.read(), cursor.offset
        done = []
        while not steps or cursor.records < steps:
            at = cursor.offset - base  # in data
            try:
                size, body = _DecodeVarint32(data, at)
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
            start, cursor.offset = cursor.offset, base + body + size
            cursor.records += 1
            try:
                record = AgentInfoActionPairProto.FromString(data[body : body + size])
            except DecodeError:
                if cursor.suspect != start:
                    # Read again at the next poll first: a recorder closing the file writes
                    # the metadata after its last record before it sets number_steps at 0.
                    cursor.suspect = start
                    cursor.offset = start
                    cursor.records -= 1
                    break
                self.warn(f"{path}: the record at byte {start} does not parse; skipped")
                continue
            if not cursor.checked and not self._spec_fits(path, cursor.brain, record):
                cursor.stopped = True
                break
            cursor.checked = True
            cursor.episode.append(record)
            if record.agent_info.done:
                done.append(cursor.episode)
                cursor.episode = []
                cursor.taken = cursor.offset
        return done

    def _spec_fits(
        self, path: Path, brain: BrainParametersProto | None, first: AgentInfoActionPairProto
    ) -> bool:
        """Whether the file's spec is the behavior's (one warning when not)."""
        if self.behavior_spec is None:
            return True
        try:
            found = behavior_spec_from_proto(brain, first.agent_info)
            check_spec(str(path), found, self.behavior_spec)
        except ValueError as err:
            self.warn(f"{err}; the file is read no further")
            return False
        return True


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
    """Records between offsets ``start`` and ``stop`` of ``data`` (record boundaries)."""
    count = 0
    while start < stop:
        size, body = _DecodeVarint32(data, start)
        start = body + size
        count += 1
    return count


class StreamedEpisode(NamedTuple):
    """One episode read from a watched folder: its file and its expert transitions."""

    file: str
    steps: RecordingSteps


class DemoWatcher:
    """A thread that looks at a folder every ``interval`` seconds and turns the episodes
    completed in its ``.demo`` files into expert transitions, for the trainer to
    :meth:`take`.

    Every file read and every record parsed happens here, not in the trainer's thread:
    :meth:`take` only empties a queue. The thread sleeps on an event between looks (no
    busy waiting) and stops at :meth:`stop` or with the process (daemon).

    :param behavior_spec: the trainer's spec; files of another spec are read no further
        (one warning).
    :param warn: called with one line per skipped record, abandoned file or failed look.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        behavior_spec: BehaviorSpec,
        interval: float,
        warn: Callable[[str], None],
    ) -> None:
        self.folder = DemoFolder(folder, warn, behavior_spec)
        self.behavior_spec = behavior_spec
        self.interval = interval
        self.warn = warn
        self._episodes: queue.SimpleQueue[StreamedEpisode] = queue.SimpleQueue()
        self._look = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def look(self) -> int:
        """Read what the files have gained since the last look; the number of episodes
        queued. Called by the thread, or once before :meth:`start` for the files present
        at start."""
        with self._look:
            found = self.folder.poll()
            queued = 0
            for file, _, records in found:
                if len(records) < 2:  # an episode of one record has no transition
                    continue
                try:
                    steps = records_to_steps(records, self.behavior_spec)
                except Exception as err:  # a record of another shape than the first's...
                    self.warn(
                        f"{self.folder.folder / file}: an episode of {len(records)} records "
                        f"could not be read ({err}); skipped"
                    )
                    continue
                self._episodes.put(StreamedEpisode(file, steps))
                queued += 1
            return queued

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name=f"demo watcher {self.folder.folder}", daemon=True
            )
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.look()
            except Exception as err:  # a file system hiccup must not end the watching
                self.warn(f"{self.folder.folder}: looking for demonstrations failed: {err!r}")

    def take(self) -> list[StreamedEpisode]:
        """The episodes read since the last call, in the order they were read."""
        taken = []
        while True:
            try:
                taken.append(self._episodes.get_nowait())
            except queue.Empty:
                return taken

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
