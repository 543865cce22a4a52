"""``newest_mlagents_only``: slow release-independent tests run once, against the newest."""

import importlib.metadata

from mla_plugin_core.testing import releases


def test_on_newest_mlagents_follows_the_installed_release(monkeypatch):
    monkeypatch.delenv(releases.ALL_RELEASES_VARIABLE, raising=False)
    installed = importlib.metadata.version("mlagents")
    assert releases.on_newest_mlagents() == (installed == releases.NEWEST_MLAGENTS)
    monkeypatch.setattr(releases, "NEWEST_MLAGENTS", "0.0.1")
    assert not releases.on_newest_mlagents()
    monkeypatch.setenv(releases.ALL_RELEASES_VARIABLE, "1")  # asked for every release
    assert releases.on_newest_mlagents()


def test_newest_is_the_newest_release_of_the_nox_matrix():
    from pathlib import Path

    noxfile = (Path(__file__).resolve().parents[4] / "noxfile.py").read_text()
    matrix = noxfile.split("MLAGENTS_RELEASES = ", 1)[1].split("\n", 1)[0]
    assert f'"{releases.NEWEST_MLAGENTS}": "latest"' in matrix, matrix
