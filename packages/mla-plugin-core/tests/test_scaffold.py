"""`mla-plugin new`: the generated package has the repository's shape and valid code.

That a generated package passes its own tests and trains through mlagents-learn is shown
in tests-integration (it needs a fresh environment to install the package into).
"""

import ast

import pytest
import tomllib

from mla_plugin_core.cli import main
from mla_plugin_core.cli.scaffold.generate import KINDS, PluginNames


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
