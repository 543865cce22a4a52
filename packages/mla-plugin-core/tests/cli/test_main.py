"""mla_plugin_core.cli.main: ``mla-plugin uv-toml``, from the standard library alone."""

from __future__ import annotations

import sys

import tomllib

from mla_plugin_core.cli import main


def test_uv_toml_command_prints_the_metadata_of_every_supported_release(capsys):
    assert main(["uv-toml"]) == 0
    metadata = tomllib.loads(capsys.readouterr().out)["dependency-metadata"]
    versions = {(entry["name"], entry["version"]) for entry in metadata}
    for release in ("0.30.0", "1.0.0", "1.1.0"):
        assert {("mlagents", release), ("mlagents-envs", release)} <= versions


def test_uv_toml_needs_only_the_standard_library():
    """README's index install runs ``mla-plugin uv-toml`` where core was installed with
    ``--no-deps``: the command must not import yaml, packaging or anything else."""
    import subprocess

    code = (
        "import sys, mla_plugin_core.cli as cli\n"
        "cli.main(['uv-toml'])\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))\n"
        "print('THIRD-PARTY', loaded, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "[[dependency-metadata]]" in result.stdout
    loaded = set(
        result.stderr.strip().splitlines()[-1].removeprefix("THIRD-PARTY ")[2:-2].split("', '")
    )
    # Besides core: what .pth files load at startup (mla-protobuf's hook, setuptools').
    assert loaded <= {"mla_plugin_core", "mla_protobuf", "_distutils_hack", "__main__"}, loaded
