"""Shared sweep files and the rule for the slow end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

#: A DQN on Basic that reaches ~0.9 within 2,000 steps on seed 1 (8 agents, ~15 s).
TINY_DQN: dict[str, Any] = {
    "behaviors": {
        "Basic": {
            "trainer_type": "dqn",
            "hyperparameters": {
                "learning_rate": 1.0e-3,
                "learning_rate_schedule": "constant",
                "batch_size": 32,
                "buffer_size": 5000,
                "buffer_init_steps": 200,
                "steps_per_update": 8.0,
                "exploration_steps": 600,
                "n_step": 3,
            },
            "network_settings": {"hidden_units": 32, "num_layers": 1},
            "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
            "max_steps": 1500,
            "summary_freq": 500,
            "time_horizon": 64,
            "checkpoint_interval": 500,
        }
    }
}


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
