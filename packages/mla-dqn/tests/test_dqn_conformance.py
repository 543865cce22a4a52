"""mla-plugin-core's conformance checks for trainer_type dqn (registration, documented
hyperparameters and README tables, strict booleans, shipped configs, ONNX export)."""

from pathlib import Path

from mla_plugin_core.testing.conformance import PluginConformance


class TestDQNConformance(PluginConformance):
    trainer_type = "dqn"
    readme = Path(__file__).parents[1] / "README.md"
