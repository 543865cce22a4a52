"""Helpers of mla-sweep's tests: the tiny DQN trainer and the rule for the slow end-to-end tests."""

import os
from typing import Any

from mla_plugin_core.testing.releases import on_newest_mlagents


#: The end-to-end sweeps run against the newest supported mlagents only (CI budget); the
#: rest of the suite runs against every release. MLA_SWEEP_E2E=1 (or core's
#: MLA_ALL_RELEASES=1) runs them anyway.
def e2e_enabled() -> bool:
    return os.environ.get("MLA_SWEEP_E2E") == "1" or on_newest_mlagents()


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
