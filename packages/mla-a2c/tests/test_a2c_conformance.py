"""mla-plugin-core's conformance checks for trainer_type a2c (registration, documented
hyperparameters and README table, strict booleans, shipped configs, ONNX export, the
contracts of core's on-policy trainer, and the Basic learning run)."""

from pathlib import Path

from mlagents_envs.base_env import ActionSpec

import mla_a2c
from mla_plugin_core.testing.conformance import LearningRun, PluginConformance


class TestA2CConformance(PluginConformance):
    trainer_type = "a2c"
    readme = Path(__file__).parents[1] / "README.md"
    action_specs = (ActionSpec.create_discrete((3, 2)), ActionSpec(2, (3,)))
    #: The shipped Basic config, CI-sized. Basic's optimal return is 0.93, a random walk's
    #: about 0; seeded runs reached 0.93 (seed 1) and 0.926 (seed 2) at 10k steps. Runs are
    #: not bit-reproducible (mlagents steps the env in a subprocess): 16k steps of margin.
    learning_run = LearningRun(
        config=Path(mla_a2c.__file__).parent / "configs" / "a2c_basic.yaml",
        env="Basic",
        max_steps=16_000,
        threshold=0.9,
        seed=1,
    )
