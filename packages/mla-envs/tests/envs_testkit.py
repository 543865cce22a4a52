"""Helpers of mla-envs' tests: console-script paths, free ports, launching the real client."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def script(name: str) -> str:
    """Absolute path of an installed console script (``mla-env-basic`` ...)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"console script {name} is not installed (pip install -e mla-envs)")
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now (other test runs share the machine)."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def mlagents_learn_command(
    config: Path, run_id: str, results: Path, executable: str, *extra: str
) -> list[str]:
    """``mlagents-learn`` with our env, results in ``results``, a free port, no graphics.

    ``extra`` goes before ``--env-args`` (which must come last).
    """
    return [
        script("mlagents-learn"),
        str(config),
        "--run-id",
        run_id,
        "--results-dir",
        str(results),
        "--env",
        script(executable),
        "--base-port",
        str(free_port()),
        "--no-graphics",
        "--force",
        *extra,
    ]


def scalars(results: Path, run_id: str, behavior: str, tag: str) -> list[tuple[int, float]]:
    """``(step, value)`` of a TensorBoard scalar the trainer wrote for ``behavior``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(results / run_id / behavior))
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return []
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]
