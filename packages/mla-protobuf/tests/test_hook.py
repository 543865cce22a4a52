"""The hook builds mlagents' old-protoc modules on protobuf >= 4 and leaves the rest alone."""

from __future__ import annotations

import ast
import importlib
import os
import site
import subprocess
import sys
from pathlib import Path

import mla_protobuf
import pytest
from google.protobuf.internal import api_implementation
from mla_protobuf.hook import DescriptorFinder
from protobuf_messages import STEP_MESSAGE_BYTES, step_message
from protobuf_testkit import CURRENT_PROTOBUF, MESSAGE_MODULES, current_only

# Names old protoc output binds that are its own helpers, not part of the module's API.
PROTOC_HELPERS = {
    "sys", "_b", "_sym_db", "_descriptor", "_message", "_reflection", "_symbol_database",
    "descriptor_pb2", "enum_type_wrapper",
}  # fmt: skip
FIRST_FINDER = "import sys; print(type(sys.meta_path[0]).__module__)"


def module_source(name: str) -> bytes:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).read_bytes()


def is_old_style(name: str) -> bool:
    return b"serialized_pb=" in module_source(name)


def test_pth_file_is_installed():
    """The wheel put its .pth in site-packages and a fresh interpreter has the hook first."""
    pth = [Path(d) / "mla_protobuf_hook.pth" for d in site.getsitepackages()]
    assert any(p.is_file() for p in pth), f"mla_protobuf_hook.pth not in {pth}"
    env = {k: v for k, v in os.environ.items() if k != mla_protobuf.DISABLE_VARIABLE}
    fresh = subprocess.run([sys.executable, "-c", FIRST_FINDER], env=env, capture_output=True)
    assert fresh.stdout.decode().strip() == "mla_protobuf.hook", fresh.stderr.decode()


@pytest.mark.parametrize("value", ["0", "off"])
def test_environment_variable_turns_it_off(value):
    env = {**os.environ, mla_protobuf.DISABLE_VARIABLE: value}
    fresh = subprocess.run([sys.executable, "-c", FIRST_FINDER], env=env, capture_output=True)
    assert fresh.stdout.decode().strip() != "mla_protobuf.hook"


def test_mlagents_era_modules_exist():
    """The message modules this package is about (21 in every supported mlagents-envs)."""
    assert len(MESSAGE_MODULES) == 21
    assert sum(map(is_old_style, MESSAGE_MODULES)) >= 20


@pytest.mark.parametrize("name", MESSAGE_MODULES, ids=lambda n: n.rsplit(".", 1)[1])
def test_module_imports_with_what_the_old_one_defined(name):
    """Every name the old module defines (classes, descriptors, enum values) is there, the
    file descriptor is exactly the module's serialized literal, the classes say their module."""
    module = importlib.import_module(name)
    source = module_source(name)
    hooked = CURRENT_PROTOBUF and is_old_style(name)
    assert mla_protobuf.is_hooked(module) == hooked
    assert module.__file__ == importlib.util.find_spec(name).origin
    defined = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            defined |= {alias.asname or alias.name for alias in node.names}
    missing = sorted(n for n in defined - PROTOC_HELPERS if not hasattr(module, n))
    assert not missing, f"{name} lacks {missing}"
    if is_old_style(name):
        literal = mla_protobuf.serialized_descriptor(source, name)
        assert module.DESCRIPTOR.serialized_pb == literal
    for message_name in module.DESCRIPTOR.message_types_by_name:
        assert getattr(module, message_name).__module__ == name


def test_status_names_the_implementation():
    importlib.import_module("mlagents_envs.communicator_objects.unity_message_pb2")
    status = mla_protobuf.status()
    assert status["installed"] and status["active"] == CURRENT_PROTOBUF
    assert status["implementation"] == api_implementation.Type()
    if CURRENT_PROTOBUF:
        assert status["implementation"] == "upb"
        assert "mlagents_envs.communicator_objects.unity_message_pb2" in status["loaded"]
    else:
        assert status["loaded"] == []


def test_wire_format_is_protobuf_320s():
    """Same bytes as protobuf 3.20.3 with the old modules, and they parse back."""
    message = step_message()
    assert message.SerializeToString() == STEP_MESSAGE_BYTES
    parsed = type(message).FromString(STEP_MESSAGE_BYTES)
    infos = parsed.unity_output.rl_output.agentInfos["Basic?team=0"].value
    assert [i.id for i in infos] == [0, 1] and infos[1].done and not infos[0].done
    assert list(infos[1].observations[0].float_data.data) == [1.0, 1.5, -2.0]
    assert list(infos[0].action_mask) == [False, True]


def test_demo_file_round_trip(tmp_path):
    """mlagents' own .demo writer and loader (varint framing from protobuf internals)."""
    from mlagents.trainers.demo_loader import load_demonstration, write_demo
    from mlagents_envs.communicator_objects.agent_info_action_pair_pb2 import (
        AgentInfoActionPairProto,
    )
    from mlagents_envs.communicator_objects.brain_parameters_pb2 import (
        ActionSpecProto,
        BrainParametersProto,
    )
    from mlagents_envs.communicator_objects.demonstration_meta_pb2 import (
        DemonstrationMetaProto,
    )

    infos = step_message().unity_output.rl_output.agentInfos["Basic?team=0"].value
    pairs = [AgentInfoActionPairProto(agent_info=info) for info in infos]
    for pair in pairs:
        pair.action_info.discrete_actions.append(1)
    meta = DemonstrationMetaProto(api_version=1, demonstration_name="t", number_steps=2)
    brain = BrainParametersProto(
        brain_name="Basic",
        action_spec=ActionSpecProto(num_discrete_actions=1, discrete_branch_sizes=[2]),
    )
    path = tmp_path / "t.demo"
    write_demo(str(path), meta, brain, pairs)
    spec, loaded, total = load_demonstration(str(path))
    assert total == 2 and loaded == pairs
    assert spec.action_spec.discrete_branches == (2,)
    assert spec.observation_specs[0].shape == (3,)


def test_side_channel_round_trip():
    """A side channel message (the Any-packed training analytics one goes through protobuf)."""
    from google.protobuf.any_pb2 import Any
    from mlagents.trainers.training_analytics_side_channel import (
        TrainingAnalyticsSideChannel,
    )
    from mlagents_envs.communicator_objects.training_analytics_pb2 import (
        TrainingEnvironmentInitialized,
    )

    event = TrainingEnvironmentInitialized(mlagents_version="x", num_envs=2)
    wrapped = Any()
    wrapped.Pack(event)
    out = TrainingEnvironmentInitialized()
    assert Any.FromString(wrapped.SerializeToString()).Unpack(out) and out == event
    assert TrainingAnalyticsSideChannel().channel_id is not None


@current_only
def test_unreadable_module_is_one_clear_import_error(tmp_path):
    (tmp_path / "broken_pb2.py").write_text(
        "DESCRIPTOR = _descriptor.FileDescriptor(name='x', serialized_pb=make_bytes())\n"
    )
    name = "mlagents_envs.communicator_objects.broken_pb2"
    with pytest.raises(ImportError, match=r"broken_pb2.*serialized_pb is not a string.*HOOK=0"):
        DescriptorFinder().find_spec(name, [str(tmp_path)])


def test_serialized_descriptor_reads_only_the_literal():
    old = b"import sys\nDESCRIPTOR = _d.FileDescriptor(name='a', serialized_pb=_b('\\n\\x01a\\xff'))\n"
    assert mla_protobuf.serialized_descriptor(old) == b"\n\x01a\xff"
    as_bytes = b"DESCRIPTOR = _d.FileDescriptor(serialized_pb=b'\\x08\\x01')\nraise SystemExit\n"
    assert mla_protobuf.serialized_descriptor(as_bytes) == b"\x08\x01"
    with pytest.raises(ValueError, match="m_pb2.py: no DESCRIPTOR"):
        mla_protobuf.serialized_descriptor(b"DESCRIPTOR = None\n", "m_pb2.py")


def test_leaves_other_modules_alone():
    finder = DescriptorFinder()
    assert finder.find_spec("json", None) is None
    assert finder.find_spec("mlagents_envs.communicator_objects.unity_to_external_pb2_grpc") is None
