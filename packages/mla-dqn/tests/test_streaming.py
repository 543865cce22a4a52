"""DemoFolder (#25, work in progress): episodes of .demo files taken while they are written."""

import numpy as np
from google.protobuf.internal.encoder import _VarintBytes

from mla_dqn.streaming import DemoFolder
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
    writer._file.write(_VarintBytes(3) + b"\xff\xff\xff")  # a body protobuf rejects
    writer._file.flush()
    record_episode(writer, 12, 2)
    warnings = []
    taken = DemoFolder(tmp_path, warnings.append).poll()
    assert [positions(e) for _, _, e in taken] == [[10, 11], [12, 13]]
    assert len(warnings) == 1 and "broken.demo" in warnings[0] and "skipped" in warnings[0]
