"""Fixtures of mla-envs' tests (the helpers are in ``envs_testkit``)."""

import pytest
from envs_testkit import free_port


@pytest.fixture
def port() -> int:
    """A TCP port nobody listens on right now."""
    return free_port()
