"""Shared sweep files of mla-sweep's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sweep_testkit import TINY_DQN


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow_cluster: the longest cluster tests, run by nox -s slow"
    )


def write_sweep(
    folder: Path, name: str, sweep: dict[str, Any], trainer: dict | None = None
) -> Path:
    """Write ``<folder>/<name>.yaml``: ``trainer`` (default TINY_DQN) plus ``sweep:``."""
    document = {**yaml.safe_load(yaml.safe_dump(trainer or TINY_DQN)), "sweep": sweep}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def sweep_file(tmp_path: Path):
    def make(sweep: dict[str, Any], name: str = "sweep", trainer: dict | None = None) -> Path:
        return write_sweep(tmp_path, name, {"env": "mla-env-basic", **sweep}, trainer)

    return make
