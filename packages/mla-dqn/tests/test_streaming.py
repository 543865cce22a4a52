"""DemoFolder (#25, work in progress): episodes of .demo files taken while they are written."""

import dataclasses
import io
import threading
import time

import numpy as np
import pytest
from dqn_testkit import behavior_spec, demo_trainer
from google.protobuf.internal.encoder import _VarintBytes
from mlagents.trainers.exception import TrainerConfigError
from mlagents_envs.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto

from mla_dqn import streaming
from mla_dqn.settings import DemonstrationSettings
from mla_dqn.streaming import BRAIN_AT, DemoFolder, DemoWatcher
from mla_envs.envs.basic import BasicEnv
from mla_envs.recording import DemoWriter


def record_episode(writer: DemoWriter, start: int, steps: int) -> None:
    for k in range(steps):
        position = start + k
        writer.record([np.eye(20, dtype=np.float32)[position]], -0.01, discrete_actions=[2],
                      done=k == steps - 1)  # fmt: skip


def positions(episode):
    return [int(np.argmax(r.agent_info.observations[0].float_data.data)) for r in episode]


def test_episodes_are_taken_whole_as_the_files_grow_and_a_restore_takes_nothing_twice(tmp_path):
    spec = BasicEnv(1).spec
    warnings = []
    folder = DemoFolder(tmp_path, warnings.append)
    assert folder.poll() == []  # an empty folder
    writer = DemoWriter(tmp_path / "player.demo", spec)
    record_episode(writer, 10, 3)
    writer.record([np.eye(20, dtype=np.float32)[10]], 0.0, discrete_actions=[2])  # in progress
    taken = folder.poll()
    assert [(name, positions(e)) for name, _, e in taken] == [("player.demo", [10, 11, 12])]
    assert taken[0][1].brain_name == "Basic"
    saved = folder.state()
    record_episode(writer, 11, 2)  # the episode in progress ends: 10, 11, 12
    assert [positions(e) for _, _, e in folder.poll()] == [[10, 11, 12]]
    again = DemoFolder(tmp_path, warnings.append)
    again.restore(saved)  # as --resume: the second episode is read again from its start
    record_episode(writer, 5, 2)
    writer.close()
    assert [positions(e) for _, _, e in again.poll()] == [[10, 11, 12], [5, 6]]
    assert [positions(e) for _, _, e in folder.poll()] == [[5, 6]]
    assert folder.poll() == [] and warnings == []  # the metadata copy at the end is no record


def test_a_corrupt_record_is_skipped_with_one_warning(tmp_path):
    spec = BasicEnv(1).spec
    path = tmp_path / "broken.demo"
    writer = DemoWriter(path, spec)
    record_episode(writer, 10, 2)
    corrupt_at = path.stat().st_size
    writer._file.write(_VarintBytes(3) + b"\xff\xff\xff")  # a body protobuf rejects
    writer._file.flush()
    record_episode(writer, 12, 2)
    warnings = []
    folder = DemoFolder(tmp_path, warnings.append)
    assert [positions(e) for _, _, e in folder.poll()] == [[10, 11]]
    assert warnings == []  # read again at the next poll before it is called corrupt
    assert [positions(e) for _, _, e in folder.poll()] == [[12, 13]]
    assert warnings == [f"{path}: the record at byte {corrupt_at} does not parse; skipped"]


def test_a_recorder_closing_between_its_two_metadata_writes_gives_no_warning(tmp_path):
    """Unity's Close(): the metadata after the last record, then number_steps at byte 0.
    A poll in between sees the placeholder and a tail that is no record."""
    spec = BasicEnv(1).spec
    writer = DemoWriter(tmp_path / "player.demo", spec)
    record_episode(writer, 10, 2)
    tail = DemonstrationMetaProto(api_version=1, demonstration_name="player", number_steps=2,
                                  number_episodes=1)  # fmt: skip
    writer._file.write(tail.SerializeToString())
    writer._file.flush()
    warnings = []
    folder = DemoFolder(tmp_path, warnings.append)
    assert [positions(e) for _, _, e in folder.poll()] == [[10, 11]]
    writer._file.seek(0)
    writer._file.write(_VarintBytes(tail.ByteSize()) + tail.SerializeToString())
    writer._file.close()
    assert folder.poll() == [] and folder.poll() == [] and warnings == []


def test_each_poll_reads_only_the_bytes_after_its_offset(tmp_path, monkeypatch):
    spec = BasicEnv(1).spec
    writer = DemoWriter(tmp_path / "player.demo", spec)
    record_episode(writer, 0, 15)
    folder = DemoFolder(tmp_path, lambda line: None)
    assert len(folder.poll()) == 1
    read = []

    class Counted(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            read.append(len(data))
            return data

    monkeypatch.setattr(streaming, "open", lambda path, mode: Counted(path, "r"), raising=False)
    before = writer.path.stat().st_size
    record_episode(writer, 3, 2)
    assert [positions(e) for _, _, e in folder.poll()] == [[3, 4]]
    assert sum(read) == BRAIN_AT + writer.path.stat().st_size - before
    read.clear()
    assert folder.poll() == [] and sum(read) == BRAIN_AT


def test_a_file_of_another_spec_is_read_no_further_with_one_warning(tmp_path):
    basic = BasicEnv(1).spec
    other = dataclasses.replace(basic, observation_shapes=((7,),))
    with DemoWriter(tmp_path / "a-other.demo", other) as writer:
        writer.record([np.zeros(7, np.float32)], 0.0, discrete_actions=[1], done=True)
    with DemoWriter(tmp_path / "b-basic.demo", basic) as writer:
        record_episode(writer, 10, 2)
    warnings = []
    expected = behavior_spec(20, basic.discrete_branches)  # the trainer's (mlagents') spec
    folder = DemoFolder(tmp_path, warnings.append, behavior_spec=expected)
    assert [(name, positions(e)) for name, _, e in folder.poll()] == [("b-basic.demo", [10, 11])]
    assert folder.poll() == []
    assert warnings == [
        f"{tmp_path / 'a-other.demo'}: observation 0 has shape (7,) in the demonstrations, "
        "the behavior's is (20,); the file is read no further"
    ]


def watching_trainer(tmp_path, folder, **demos):
    settings = DemonstrationSettings(path=str(folder), watch=True, watch_interval=0.02, **demos)
    return demo_trainer(tmp_path, settings)


def test_a_watching_trainer_takes_episodes_written_while_it_trains(tmp_path, monkeypatch):
    readers = []
    real_open = open

    def tracked(path, mode="r", *args):
        readers.append(threading.current_thread())
        return real_open(path, mode, *args)

    monkeypatch.setattr(streaming, "open", tracked, raising=False)
    folder = tmp_path / "demos"
    trainer = watching_trainer(tmp_path, folder, buffer_size=10)  # the folder comes later
    try:
        expert = trainer.optimizer.expert_replay
        assert expert is not None and len(expert) == 0 and expert.capacity == 10
        folder.mkdir()
        writer = DemoWriter(folder / "player.demo", BasicEnv(1).spec)
        record_episode(writer, 10, 4)  # 4 records: 3 transitions
        record_episode(writer, 10, 2)  # 1 transition
        writer.record([np.eye(20, dtype=np.float32)[3]], 0.0, discrete_actions=[2])  # running
        deadline = time.monotonic() + 30
        while len(expert) < 4:
            assert time.monotonic() < deadline, "the episodes were not streamed"
            trainer.advance()
            time.sleep(0.01)
        stats = trainer._stats_reporter
        assert stats.get_stats_summaries("Demonstrations/Streamed Episodes").mean == 2
        assert stats.get_stats_summaries("Demonstrations/Streamed Steps").mean == 4
        sample = expert.all_transitions()
        assert sample.obs[0].argmax(axis=1).tolist() == [10, 11, 12, 10]
        assert sample.dones.tolist() == [False, False, True, True]
        record_episode(writer, 5, 8)  # 7 more: the oldest make room (10 kept)
        writer.close()
        while stats.get_stats_summaries("Demonstrations/Streamed Steps").mean < 11:
            assert time.monotonic() < deadline, "the third episode was not streamed"
            trainer.advance()
            time.sleep(0.01)
        assert len(expert) == 10
        # every file read was the watcher's: the trainer's thread only took the episodes
        # (the folder did not exist at add_policy's first look)
        assert readers and threading.main_thread() not in readers
    finally:
        trainer._watcher.stop()
    assert not trainer._watcher._thread.is_alive()


def test_watching_a_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "one.demo"
    path.write_bytes(b"")
    with pytest.raises(TrainerConfigError) as refused:
        watching_trainer(tmp_path, path)
    assert str(refused.value) == (
        f"Behavior 'Basic': demonstrations.path {str(path)!r} is a file; with watch: true it "
        "must be a folder (where the recorder writes)"
    )


def test_an_episode_that_cannot_be_read_is_skipped_with_one_warning(tmp_path):
    """The spec is checked on a file's first record; a later record of another shape loses
    its episode only, with one warning, and the watcher goes on."""
    basic = BasicEnv(1).spec
    warnings = []
    watcher = DemoWatcher(
        tmp_path, behavior_spec(20, basic.discrete_branches), 1.0, warnings.append
    )
    writer = DemoWriter(tmp_path / "odd.demo", basic)
    record_episode(writer, 10, 3)
    writer.spec = dataclasses.replace(basic, observation_shapes=((7,),))  # the recorder changes
    writer.record([np.zeros(7, np.float32)], 0.0, discrete_actions=[2])
    writer.record([np.zeros(7, np.float32)], 0.0, discrete_actions=[2], done=True)
    writer.spec = basic
    record_episode(writer, 12, 2)
    writer.close()
    assert watcher.look() == 2
    assert [positions_of(e.steps) for e in watcher.take()] == [[10, 11], [12]]
    assert len(warnings) == 1 and "odd.demo: an episode of 2 records" in warnings[0]


def positions_of(steps):
    return steps.transitions.obs[0].argmax(axis=1).tolist()
