"""`mla-plugin new`: the generated package has the repository's shape and valid code.

That a generated package passes its own tests and trains through mlagents-learn is shown
in tests-integration (it needs a fresh environment to install the package into).
"""

import ast
import importlib
import sys
import types

import pytest
import tomllib
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.settings import (
    RewardSignalSettings,
    RewardSignalType,
    TrainerSettings,
)
from mlagents_envs.base_env import (
    ActionSpec,
)

from mla_plugin_core.cli import main
from mla_plugin_core.cli.scaffold.generate import KINDS, PluginNames, generate
from mla_plugin_core.testing.builders import vector_behavior_spec


@pytest.mark.parametrize("kind", KINDS)
def test_generated_package_has_the_repository_shape(tmp_path, kind, capsys):
    assert main(["new", "my_algo", "--kind", kind, "--dir", str(tmp_path)]) == 0
    root = tmp_path / "mla-my-algo"
    for relative in (
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "src/mla_my_algo/__init__.py",
        "src/mla_my_algo/version.py",
        "src/mla_my_algo/py.typed",
        "src/mla_my_algo/settings.py",
        "src/mla_my_algo/optimizer.py",
        "src/mla_my_algo/trainer.py",
        "src/mla_my_algo/configs/my_algo_basic.yaml",
        "tests/test_my_algo_registration.py",
        "tests/test_my_algo_learning.py",
    ):
        assert (root / relative).is_file(), relative
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "mla-my-algo"
    assert pyproject["project"]["entry-points"]["mlagents.trainer_type"] == {
        "my_algo": "mla_my_algo.trainer:get_type_and_setting"
    }
    assert pyproject["project"]["entry-points"]["mla_plugins.configs"] == {
        "mla_my_algo": "mla_my_algo.configs"
    }
    assert pyproject["project"]["dependencies"] == ["mla-plugin-core>=0.1,<0.2"]
    leftovers = []
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_text()
            leftovers += [
                path.name
                for token in ("__PACKAGE__", "__CLASS__", "__TRAINER_TYPE__")
                if token in text
            ]
            if path.suffix == ".py":
                ast.parse(text, filename=str(path))
    assert leftovers == []
    assert "class MyAlgoTrainer" in (root / "src/mla_my_algo/trainer.py").read_text()
    # Test modules are named after the plugin, without a tests package, so that the test
    # suites of several generated plugins can run in one pytest session.
    assert not (root / "tests" / "__init__.py").exists()
    assert "Wrote" in capsys.readouterr().out


def test_existing_folder_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "mla-taken").mkdir()
    (tmp_path / "mla-taken" / "keep.txt").write_text("mine")
    assert main(["new", "taken", "--kind", "on-policy", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "mla-taken" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("bad", ["MyAlgo", "1algo", "my-algo", ""])
def test_bad_names_are_refused_with_the_rule(bad):
    with pytest.raises(ValueError, match="lowercase"):
        PluginNames.from_name(bad)


def test_config_lookup_names_what_is_installed(capsys):
    assert main(["config", "no_such_config.yaml"]) == 2
    err = capsys.readouterr().err
    assert "no shipped config 'no_such_config.yaml'" in err and "; installed: " in err


def test_scaffolded_off_policy_trainer_refuses_signals_with_different_gammas(tmp_path):
    """The summed-reward Q-network has one discount; the template used to take the first
    signal's and train silently on a wrong target."""
    generate(PluginNames.from_name("gamma_check"), "off-policy", tmp_path)
    sys.path.insert(0, str(tmp_path / "mla-gamma-check" / "src"))
    try:
        trainer_module = importlib.import_module("mla_gamma_check.trainer")
        settings_module = importlib.import_module("mla_gamma_check.settings")
    finally:
        sys.path.pop(0)
    hyperparameters = settings_module.GammaCheckSettings()
    settings = TrainerSettings(
        trainer_type="gamma_check",
        hyperparameters=hyperparameters,
        reward_signals={
            RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=0.99),
            RewardSignalType.CURIOSITY: RewardSignalSettings(gamma=0.9),
        },
    )
    fake = types.SimpleNamespace(trainer_settings=settings, hyperparameters=hyperparameters, seed=0)
    behavior = types.SimpleNamespace(brain_name="Basic")
    create_policy = trainer_module.GammaCheckTrainer.create_policy
    with pytest.raises(TrainerConfigError, match="Basic: reward signals need one gamma"):
        create_policy(fake, behavior, vector_behavior_spec(ActionSpec(0, (3,)), obs_size=2))
