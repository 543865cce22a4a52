"""The mark of mla-ray's longest cluster tests."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow_cluster: the longest cluster tests, run by nox -s slow"
    )
