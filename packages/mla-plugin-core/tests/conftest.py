import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture
def tiny_plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder holding a ``tiny-plugin`` distribution (dist-info with an entry point).

    It is put on ``sys.path`` and ``PYTHONPATH`` so that both this process and a
    ``mlagents-learn`` subprocess discover the ``tiny_ppo`` trainer through
    ``importlib.metadata``, like any installed plugin.
    """
    site = tmp_path / "site"
    dist_info = site / "tiny_plugin-0.0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tiny-plugin\nVersion: 0.0.1\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[mlagents.trainer_type]\ntiny_ppo = tiny_plugin:get_type_and_setting\n"
    )
    paths = [str(site), str(HERE)]
    for path in reversed(paths):
        monkeypatch.syspath_prepend(path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths + sys.path))
    # mlagents keeps every trainer type it ever registered in two module dicts: without
    # this, tiny_ppo would stay registered for the tests that run after
    import mlagents.plugins as registry

    kept = dict(registry.all_trainer_types), dict(registry.all_trainer_settings)
    yield site
    registries = (registry.all_trainer_types, registry.all_trainer_settings)
    for now, before in zip(registries, kept, strict=True):
        now.clear()
        now.update(before)
