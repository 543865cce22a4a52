"""pytest plugin of mla-plugin-core (entry point ``pytest11``): the ``mla_train`` fixture."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import pytest

from mla_plugin_core.testing.learn import TrainingRun, run_mlagents_learn


@pytest.fixture
def mla_train(tmp_path: Path) -> Callable[..., TrainingRun]:
    """:func:`~mla_plugin_core.testing.run_mlagents_learn` writing into the test's tmp folder.

    ``mla_train(config, env="Basic", max_steps=20_000)`` trains with the real
    ``mlagents-learn`` and returns a :class:`~mla_plugin_core.testing.TrainingRun`. Its
    parameters are those of ``run_mlagents_learn`` (``results_dir`` is set):

    - ``config``: a trainer YAML path, or its content as a mapping;
    - ``env``: ``Basic``, ``3DBall``, ``gym``, a console script or an executable path;
    - ``max_steps``: replaces every behavior's ``max_steps``;
    - ``overrides``: deep-merged into every behavior, e.g. ``{"hyperparameters": {...}}``;
    - ``seed`` (0), ``num_envs`` (1), ``run_id`` (``"run"``), ``timeout`` (900 s);
    - ``env_args``: the environment's options, e.g. ``["CartPole-v1"]`` with ``env="gym"``;
    - ``extra_args``: more ``mlagents-learn`` options, e.g. ``["--resume"]``.
    """
    return functools.partial(run_mlagents_learn, results_dir=tmp_path / "results")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``slow`` mark of the conformance kit's learning test (deselect it with
    ``-m "not slow"``)."""
    config.addinivalue_line("markers", "slow: a real training run (minutes)")
