"""The entry-point helper, and a plugin registered through a real entry point."""

import subprocess
import sys
import textwrap

import attr
import pytest
from mlagents.plugins.trainer_type import register_trainer_plugins
from mlagents.trainers.trainer.on_policy_trainer import OnPolicyTrainer

from mla_plugin_core.host.entry_point import make_entry_point


def test_registered_plugin_is_offered_by_mlagents(tiny_plugin_path):
    import tiny_plugin

    trainer_types, trainer_settings = register_trainer_plugins()
    assert trainer_types["tiny_ppo"] is tiny_plugin.TinyTrainer
    assert trainer_settings["tiny_ppo"] is tiny_plugin.TinySettings
    assert issubclass(tiny_plugin.TinyTrainer, OnPolicyTrainer)
    # The built-in trainers are still there.
    assert {"ppo", "sac"} <= set(trainer_types)


def test_entry_point_refuses_wrong_classes_loudly():
    @attr.s(auto_attribs=True)
    class Settings:
        x: int = 1

    with pytest.raises(TypeError, match="RLTrainer"):
        make_entry_point(object, Settings)


def _learn(config_text, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(config_text))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mlagents.trainers.learn",
            str(config),
            "--run-id",
            "bad",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "hyperparameters, expected",
    [
        (
            "batch_size: 0",
            "configuration error: Basic: hyperparameters.batch_size = 0 is not allowed: "
            "must be an integer >= 1",
        ),
        (
            "epsilon: 1.5",
            "Basic: hyperparameters.epsilon = 1.5 is not allowed: must be a number > 0.0 and < 1.0",
        ),
        (
            "lambdd: 0.9",
            "Basic: hyperparameters.lambdd is not a setting of tiny_ppo: did you mean lambd? "
            "allowed: batch_size, ",
        ),
        ("batch_size: lots", "Basic: hyperparameters.batch_size = 'lots' is not allowed: must be"),
        (  # a setting of the behavior, one level too deep: not "did you mean n_step?"
            "max_steps: 50000",
            "Basic: hyperparameters.max_steps is not a setting of tiny_ppo: max_steps is a "
            "setting of the behavior (beside trainer_type and hyperparameters): move it there",
        ),
    ],
)
def test_bad_yaml_gives_one_clear_line(tiny_plugin_path, tmp_path, hyperparameters, expected):
    result = _learn(
        f"""
        behaviors:
          Basic:
            trainer_type: tiny_ppo
            hyperparameters:
              {hyperparameters}
        """,
        tmp_path,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(error_lines) == 1, result.stderr
    assert expected in error_lines[0]


def test_entry_point_refuses_postponed_annotations():
    import tiny_plugin

    namespace: dict = {}
    exec(
        "from __future__ import annotations\nimport attr\n"
        "@attr.s(auto_attribs=True)\nclass Late:\n    batch_size: int = 1\n",
        namespace,
    )
    with pytest.raises(TypeError, match="from __future__ import annotations"):
        make_entry_point(tiny_plugin.TinyTrainer, namespace["Late"])


def test_core_itself_fixes_builtin_runs():
    """With core installed, mlagents' startup installs the fixes even for built-in trainers."""
    import sys

    import torch

    from mla_plugin_core.host import config_errors  # noqa: F401

    trainer_types, _ = register_trainer_plugins()
    assert "ppo" in trainer_types
    assert getattr(torch.onnx.export, "_mla_legacy_default", False)
    assert getattr(sys.excepthook, "_mla_wrapped", False)


_REGISTER_AND_REPORT = (
    "import sys, torch\n"
    "from mlagents.plugins.trainer_type import register_trainer_plugins\n"
    "types, _ = register_trainer_plugins()\n"
    "print('tiny_ppo' in types, getattr(sys.excepthook, '_mla_wrapped', False),"
    " getattr(torch.onnx.export, '_mla_legacy_default', False))\n"
)


@pytest.mark.parametrize("switch, changed", [(None, True), ("off", False), ("0", False)])
def test_the_host_switch_turns_off_every_change_to_mlagents_learn(
    tiny_plugin_path, monkeypatch, switch, changed
):
    """``MLA_PLUGIN_HOST=off``: plugins still register, mlagents-learn is left as shipped."""
    if switch is None:
        monkeypatch.delenv("MLA_PLUGIN_HOST", raising=False)
    else:
        monkeypatch.setenv("MLA_PLUGIN_HOST", switch)
    result = subprocess.run(
        [sys.executable, "-c", _REGISTER_AND_REPORT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(changed), str(changed)]


def test_with_the_host_switch_off_a_bad_yaml_is_mlagents_traceback_again(
    tiny_plugin_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLA_PLUGIN_HOST", "off")
    result = _learn(
        """
        behaviors:
          Basic:
            trainer_type: tiny_ppo
            hyperparameters:
              batch_sise: 16
        """,
        tmp_path,
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "configuration error" not in result.stderr
