"""mla-plugin-core's conformance checks for trainer_type a2c (registration, documented
hyperparameters and README table, strict booleans, shipped configs, ONNX export)."""

from pathlib import Path

from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.testing.conformance import PluginConformance


class TestA2CConformance(PluginConformance):
    trainer_type = "a2c"
    readme = Path(__file__).parents[1] / "README.md"
    action_specs = (ActionSpec.create_discrete((3, 2)), ActionSpec(2, (3,)))
