"""Installing one algorithm's wheel makes its trainer_type available, and nothing else; the
wheels alone (nothing installed beside them) train and export ONNX on every release."""

import re

import pytest
from conftest import ROOT
from install_kit import train_dqn_briefly

REGISTERED = (
    "from mlagents.plugins.trainer_type import register_trainer_plugins\n"
    "import importlib.util\n"
    "types, settings = register_trainer_plugins()\n"
    "print(sorted(types))\n"
    "print([m for m in ('mla_dqn', 'mla_a2c') if importlib.util.find_spec(m)])\n"
)


@pytest.mark.parametrize(
    "distribution, trainer_type, absent", [("mla-dqn", "dqn", "a2c"), ("mla-a2c", "a2c", "dqn")]
)
def test_one_wheel_one_trainer(make_venv, mlagents_version, distribution, trainer_type, absent):
    venv = make_venv(distribution)
    result = venv.python(REGISTERED)
    assert result.returncode == 0, result.stderr
    registered, importable = result.stdout.splitlines()[-2:]
    assert trainer_type in registered and absent not in registered
    assert importable == f"['mla_{trainer_type}']"
    assert "Error initializing Trainer plugins" not in result.stderr
    version = venv.python(
        "import importlib.metadata as m; print(m.version('mlagents'), m.version('mla-plugin-core'))"
    )
    assert version.stdout.split()[0] == mlagents_version


def without_onnx(uv_toml: str) -> str:
    """``uv_toml`` with every ``onnx`` requirement taken out of mlagents' corrected metadata."""
    stripped, removed = re.subn(r'"onnx[<>=!~][^"]*",?\s*', "", uv_toml)
    assert removed, "uv.toml names no onnx requirement any more: update this test"
    return stripped


def test_wheels_alone_export_onnx(make_venv, tmp_path):
    """Our wheels bring the onnx package that torch >= 2 writes the model with (mlagents 0.30.0
    does not list it): with mlagents' requirements stripped of onnx, a run still exports."""
    config = tmp_path / "uv-without-onnx.toml"
    config.write_text(without_onnx((ROOT / "uv.toml").read_text()))
    venv = make_venv("mla-dqn", "mla-envs", config=config)
    train_dqn_briefly(venv, tmp_path)
