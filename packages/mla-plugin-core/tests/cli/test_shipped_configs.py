"""`mla-plugin configs` / `mla-plugin config NAME`: the example YAMLs of every installed
package, found through the ``mla_plugins.configs`` entry points (mla-envs is installed with
core's tests; its PPO configs are no trainer plugin's)."""

import logging
import textwrap
from pathlib import Path

import pytest

from mla_plugin_core.cli import main
from mla_plugin_core.cli.shipped_configs import ShippedConfig, config_path, shipped_configs
from mla_plugin_core.version import __version__


def add_distribution(site: Path, name: str, entry_points: str, files: dict[str, str]) -> None:
    """A distribution (dist-info with ``entry_points``) and its ``files`` in ``site``."""
    dist_info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (dist_info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(textwrap.dedent(text))


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_configs_lists_name_package_trainer_type_and_path_of_every_package(capsys):
    assert main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "PACKAGE", "TRAINER_TYPE", "PATH"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    name, package, trainer_type, path = rows["ppo_basic.yaml"]
    assert (package, trainer_type) == ("mla-envs", "ppo")
    assert Path(path).is_file() and Path(path).name == name
    assert Path(path) == config_path("ppo_basic")
    for dqn_config in ("dqn_basic.yaml", "dqn_cartpole.yaml"):
        if dqn_config in rows:  # when mla-dqn is installed too
            assert rows[dqn_config][1:3] == ["mla-dqn", "dqn"]


def test_config_prints_the_path_or_the_text(capsys):
    assert main(["config", "ppo_basic.yaml"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert main(["config", "ppo_basic.yaml", "--print"]) == 0
    assert capsys.readouterr().out == path.read_text()
    assert main(["config", "nope.yaml", "--print"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mla-plugin: no shipped config 'nope.yaml'; installed: ")
    assert "ppo_basic.yaml" in err and err.count("\n") == 1


def test_a_missing_plugin_config_names_the_package_that_would_ship_it(capsys):
    """``a2c_3DBall.yaml`` without mla-a2c said only "no shipped config" (and mlagents-learn
    then "Config file could not be found"): the name tells the plugin and its package."""
    assert main(["config", "qr_dqn_3DBall.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "mla-plugin: no shipped config 'qr_dqn_3DBall.yaml': qr_dqn_3DBall.yaml would come "
        "with the plugin of trainer_type qr_dqn, mla-qr-dqn, which is not installed "
        "(pip install mla-qr-dqn); installed: "
    )
    assert err.count("\n") == 1
    # mlagents' own trainers' configs come with no plugin of their name; other shapes: none
    for name in ("sac_crawler.yaml", "nope.yaml", "_basic.yaml", "3d_ball.yaml"):
        assert main(["config", name]) == 2
        assert "would come with" not in capsys.readouterr().err


def test_a_distribution_declares_its_folder_in_the_entry_point_group(site, caplog):
    add_distribution(
        site,
        "acme-rl",
        """
        [mla_plugins.configs]
        acme_rl = acme_rl.examples.yamls
        """,
        {
            "acme_rl/__init__.py": "",
            "acme_rl/examples/yamls/acme_two.yaml": """
                behaviors:
                  A: {trainer_type: sac}
                  B: {}
                """,
            "acme_rl/examples/yamls/notes.txt": "not a config",
        },
    )
    add_distribution(site, "broken-rl", "[mla_plugins.configs]\nbroken = broken_rl.configs\n", {})
    with caplog.at_level(logging.WARNING):
        found = [c for c in shipped_configs() if c.package in ("acme-rl", "broken-rl")]
    path = site / "acme_rl" / "examples" / "yamls" / "acme_two.yaml"
    # B has no trainer_type: mlagents' default, ppo.
    assert found == [ShippedConfig("acme_two.yaml", "acme-rl", ("ppo", "sac"), path)]
    assert config_path("acme_two") == path
    assert (
        "broken-rl declares broken = 'broken_rl.configs' in mla_plugins.configs, but that "
        "folder is not installed"
    ) in caplog.text


def test_a_name_two_packages_ship_is_refused_with_both_paths(site):
    for package in ("first_rl", "second_rl"):
        add_distribution(
            site,
            package.replace("_", "-"),
            f"[mla_plugins.configs]\n{package} = {package}.configs\n",
            {f"{package}/__init__.py": "", f"{package}/configs/same.yaml": "behaviors: {}\n"},
        )
    with pytest.raises(LookupError) as refused:
        config_path("same.yaml")
    assert str(refused.value) == (
        f"same.yaml is shipped by first-rl and second-rl: use its path "
        f"({site / 'first_rl/configs/same.yaml'}, {site / 'second_rl/configs/same.yaml'})"
    )


def test_version_is_the_program_and_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"mla-plugin {__version__}\n"
