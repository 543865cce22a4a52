"""DemoWriter: Unity's .demo byte layout, read by mlagents' own loader, and readable while
it is still being written."""

import numpy as np
import pytest
from google.protobuf.internal.decoder import _DecodeVarint32
from mlagents.trainers.demo_loader import INITIAL_POS, load_demonstration
from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
    AgentInfoActionPairProto,
)
from mlagents_envs.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto

from mla_envs.envs.basic import BasicEnv
from mla_envs.recording import BRAIN_AT, DemoWriter


def one_hot(position: int) -> np.ndarray:
    return np.eye(20, dtype=np.float32)[position]


def complete_records(data: bytes) -> tuple[DemonstrationMetaProto, list[AgentInfoActionPairProto]]:
    """The metadata and every complete record of a file's bytes so far (a cut last record
    is left out), as a streaming reader sees them."""
    size, at = _DecodeVarint32(data, 0)
    meta = DemonstrationMetaProto.FromString(data[at : at + size])
    size, at = _DecodeVarint32(data, BRAIN_AT)
    at += size  # the brain parameters
    records = []
    while at < len(data) and (not meta.number_steps or len(records) < meta.number_steps):
        try:
            size, body = _DecodeVarint32(data, at)
        except IndexError:  # the length itself is cut
            break
        if body + size > len(data):
            break
        records.append(AgentInfoActionPairProto.FromString(data[body : body + size]))
        at = body + size
    return meta, records


def test_mlagents_reads_a_recorded_file_and_its_metadata(tmp_path):
    spec = BasicEnv(1).spec
    path = tmp_path / "walk.demo"
    with DemoWriter(path, spec) as writer:
        for _ in range(2):
            for position in range(10, 17):  # walks right to the large goal
                writer.record([one_hot(position)], -0.01 if position > 10 else 0.0,
                              discrete_actions=[2])  # fmt: skip
            writer.record([one_hot(17)], 1.0, discrete_actions=[2], done=True)
    assert INITIAL_POS == BRAIN_AT
    behavior, pairs, expected = load_demonstration(str(path))
    assert behavior.action_spec.discrete_branches == (3,)
    assert [s.shape for s in behavior.observation_specs] == [(20,)]
    assert expected == len(pairs) == 16
    assert [p.agent_info.done for p in pairs] == ([False] * 7 + [True]) * 2
    assert np.argmax(pairs[3].agent_info.observations[0].float_data.data) == 13
    meta, records = complete_records(path.read_bytes())
    assert (meta.demonstration_name, meta.number_steps, meta.api_version) == ("walk", 16, 1)
    assert meta.number_episodes == 3  # Unity's Close() counts the episode in progress
    assert meta.mean_reward == pytest.approx((2 * (1.0 - 0.06)) / 3)
    assert len(records) == 16  # the metadata copy after the last record is not a record


def test_a_file_being_recorded_reads_up_to_its_last_complete_record(tmp_path):
    spec = BasicEnv(1).spec
    path = tmp_path / "live.demo"
    writer = DemoWriter(path, spec)
    for position in range(10, 14):
        writer.record([one_hot(position)], -0.01, discrete_actions=[2])
    data = path.read_bytes()  # the recording goes on: no final metadata yet
    meta, records = complete_records(data)
    assert meta.number_steps == 0 and meta.demonstration_name == "live"
    assert [np.argmax(r.agent_info.observations[0].float_data.data) for r in records] == [
        10, 11, 12, 13,
    ]  # fmt: skip
    for cut in range(len(data) - 1, len(data) - 30, -7):  # the last record cut anywhere
        assert len(complete_records(data[:cut])[1]) == 3
    writer.record([one_hot(14)], -0.01, discrete_actions=[2])
    assert len(complete_records(path.read_bytes())[1]) == 5
    writer.close()
    assert load_demonstration(str(path))[2] == 5


def test_bad_names_and_observations_are_refused_and_nothing_is_replaced(tmp_path):
    spec = BasicEnv(1).spec
    with pytest.raises(ValueError, match="name: 'a-name-far-too-long' is longer than 13 bytes"):
        DemoWriter(tmp_path / "x.demo", spec, name="a-name-far-too-long")
    assert not (tmp_path / "x.demo").exists()
    (tmp_path / "kept.demo").write_bytes(b"a recording")
    with pytest.raises(FileExistsError):
        DemoWriter(tmp_path / "kept.demo", spec)
    assert (tmp_path / "kept.demo").read_bytes() == b"a recording"
    with DemoWriter(tmp_path / "y.demo", spec) as writer:
        with pytest.raises(ValueError, match=r"observations: expected shapes \[\(20,\)\]"):
            writer.record([np.zeros(3)], 0.0, discrete_actions=[0])
