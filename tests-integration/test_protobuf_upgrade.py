"""A working install survives a protobuf upgrade (what installing onnxruntime, ray or a
current tensorboard does): mla-protobuf, which comes with mla-plugin-core, lets mlagents
build its messages with the new protobuf instead of failing with "Descriptors cannot be
created directly"."""

import subprocess

import yaml
from conftest import ROOT, torch_pin

from mla_plugin_core.testing import ppo_basic_smoke_config
from mla_plugin_core.testing.learn import free_base_port

CHECK = (
    "import mlagents.trainers.learn, mla_protobuf\n"
    "from google.protobuf.internal import api_implementation\n"
    "from mlagents_envs.communicator_objects import unity_message_pb2\n"
    "print(api_implementation.Type(), mla_protobuf.is_hooked(unity_message_pb2))\n"
)


def test_upgrading_protobuf_leaves_mlagents_working(make_venv, wheels, tmp_path):
    venv = make_venv("mla-envs", "protobuf<3.21")
    before = venv.python(CHECK)
    assert before.returncode == 0, before.stderr
    assert before.stdout.split() == ["python", "False"]

    upgrade = subprocess.run(
        [
            "uv", "pip", "install", "-q", "--config-file", str(ROOT / "uv.toml"),
            "--python", str(venv.bin / "python"), "--find-links", str(wheels), *torch_pin(),
            "--upgrade-package", "protobuf", "onnxruntime", "protobuf>=5",
        ],
        capture_output=True, text=True,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    after = venv.python(CHECK)
    assert after.returncode == 0, after.stderr
    assert after.stdout.split() == ["upb", "True"]

    config = tmp_path / "basic.yaml"
    config.write_text(yaml.safe_dump(ppo_basic_smoke_config(400)))
    run = venv.run(
        "mlagents-learn", str(config), "--run-id", "upgraded", "--results-dir",
        str(tmp_path / "results"), "--env", str(venv.bin / "mla-env-basic"),
        "--base-port", str(free_base_port()), "--no-graphics", timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert list((tmp_path / "results" / "upgraded").glob("**/Basic*.onnx"))
