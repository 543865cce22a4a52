"""What every trainer plugin must satisfy, as a test class its own tests subclass.

mlagents drops a plugin whose entry point fails with one log line, reads the YAML with
cattrs (which turns ``"false"`` into ``True``), and exports ONNX at the end of a run: the
checks below catch each of these in seconds, without running ``mlagents-learn``. They also
check the contracts the plugin inherits from core's base trainers (:mod:`.contracts`: kill
and resume, a refused resume, the NaN stop, on-policy bootstrapping, the off-policy store),
and, marked ``slow`` and only when :attr:`PluginConformance.learning_run` is set, that it
learns a small task through the real ``mlagents-learn``::

    from pathlib import Path

    from mla_plugin_core.testing.conformance import PluginConformance


    class TestConformance(PluginConformance):
        trainer_type = "my_dqn"
        readme = Path(__file__).parents[1] / "README.md"  # or None: no table to check

The subclass's name must start with ``Test`` for pytest to collect it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import attr
import numpy as np
import pytest
import yaml
from mlagents.plugins.trainer_type import register_trainer_plugins
from mlagents.trainers.settings import RunOptions
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.settings import (
    HyperparameterError,
    OffPolicySettings,
    OnPolicySettings,
    StrictBool,
)
from mla_plugin_core.testing import contracts
from mla_plugin_core.testing.builders import make_trainer, trainer_settings, vector_behavior_spec
from mla_plugin_core.testing.hyperparameters import (
    loose_booleans,
    readme_table_differences,
    undocumented,
)
from mla_plugin_core.trainers.off_policy import OffPolicyPluginTrainer
from mla_plugin_core.trainers.on_policy import OnPolicyPluginTrainer

#: Values a strict boolean refuses (YAML ``"false"`` is a string, which cattrs makes true).
NOT_BOOLEANS = ("false", "true", "maybe", 2, 0, "yes")


@dataclass(frozen=True)
class LearningRun:
    """A short real training run the plugin must pass (:meth:`PluginConformance.test_learns`).

    :param config: the trainer YAML (path), e.g. one of the plugin's shipped configs.
    :param env: ``Basic``, ``3DBall``, ... (see :func:`~mla_plugin_core.testing.run_mlagents_learn`).
    :param max_steps: the run's length.
    :param threshold: the final mean reward it must reach (keep a margin: one seed).
    :param seed: the run's seed.
    """

    config: Path
    env: str
    max_steps: int
    threshold: float
    seed: int = 0


class PluginConformance:
    """Conformance tests of one trainer type; subclass as ``Test...`` and set the attributes.

    :cvar trainer_type: the ``trainer_type`` of the YAML (the entry point's key).
    :cvar readme: the README whose ``<!-- hyperparameters: ... -->`` tables must equal the
        settings classes (see :mod:`.hyperparameters`); ``None`` to skip that check.
    :cvar action_specs: the actions the ONNX export is checked with: one trainer each.
    :cvar obs_size: size of the single vector observation of those trainers.
    :cvar contract_hyperparameters: settings for the contracts' trainers (e.g. a smaller
        ``buffer_size`` so that an update comes quickly); the rest are the defaults.
    :cvar learning_run: the slow learning test's run; ``None`` skips it.
    """

    trainer_type: ClassVar[str]
    readme: ClassVar[Path | None] = None
    action_specs: ClassVar[Sequence[ActionSpec]] = (ActionSpec.create_discrete((3, 2)),)
    obs_size: ClassVar[int] = 4
    contract_hyperparameters: ClassVar[dict[str, Any]] = {}
    learning_run: ClassVar[LearningRun | None] = None

    def registered(self) -> tuple[Any, type]:
        """The trainer and settings classes mlagents' registry offers for ``trainer_type``
        (calling every installed entry point, as ``mlagents-learn`` does first)."""
        trainer_types, settings_types = register_trainer_plugins()
        assert self.trainer_type in trainer_types, (
            f"mlagents does not offer trainer_type {self.trainer_type!r} (its entry point "
            f"is missing or failed; mlagents only logs that): has {sorted(trainer_types)}"
        )
        return trainer_types[self.trainer_type], settings_types[self.trainer_type]

    def test_is_registered_and_derives_from_core(self) -> None:
        trainer_cls, settings_cls = self.registered()
        assert trainer_cls.get_trainer_name() == self.trainer_type
        pairs = [
            (OnPolicyPluginTrainer, OnPolicySettings),
            (OffPolicyPluginTrainer, OffPolicySettings),
        ]
        assert any(
            issubclass(trainer_cls, trainer_base) and issubclass(settings_cls, settings_base)
            for trainer_base, settings_base in pairs
        ), f"{trainer_cls.__name__} / {settings_cls.__name__} do not derive from core's bases"

    def test_every_hyperparameter_is_documented(self) -> None:
        _, settings_cls = self.registered()
        for cls in _settings_classes(settings_cls):
            assert undocumented(cls) == [], f"{cls.__name__}: no '#:' comment above these"

    def test_booleans_take_true_or_false_only(self) -> None:
        _, settings_cls = self.registered()
        for cls in _settings_classes(settings_cls):
            assert loose_booleans(cls) == [], f"{cls.__name__}: declare with boolean()"
        for field in attr.fields(settings_cls):
            if field.type is StrictBool:
                for value in NOT_BOOLEANS:
                    with pytest.raises(HyperparameterError, match="must be true or false"):
                        settings_cls(**{field.name: value})

    def test_readme_tables_equal_the_settings(self) -> None:
        if self.readme is None:
            pytest.skip("readme = None: this plugin has no README hyperparameter tables to check")
        stale = readme_table_differences(self.readme)
        assert stale == [], (
            f"{self.readme}: the tables of {stale} differ from the classes; rewrite them with "
            f"`python -m mla_plugin_core.testing.hyperparameters {self.readme}`"
        )

    def test_shipped_configs_load(self) -> None:
        trainer_cls, settings_cls = self.registered()
        package = importlib.import_module(trainer_cls.__module__.split(".")[0])
        configs = sorted((Path(str(package.__file__)).parent / "configs").glob("*.yaml"))
        for config in configs:
            options = RunOptions.from_dict(yaml.safe_load(config.read_text()))
            for name, behavior in options.behaviors.items():
                assert behavior.trainer_type == self.trainer_type, (config.name, name)
                assert isinstance(behavior.hyperparameters, settings_cls), (config.name, name)

    def _exported_models(self, tmp_path: Path) -> Iterator[tuple[ActionSpec, Path]]:
        """Each of :attr:`action_specs` and the ONNX file of a new trainer with those actions
        (mlagents' own exporter, as at the end of a run)."""
        from mlagents.trainers.torch_entities.model_serialization import ModelSerializer

        from mla_plugin_core.io.onnx_export import use_legacy_exporter

        trainer_cls, settings_cls = self.registered()
        use_legacy_exporter()
        for i, action_spec in enumerate(self.action_specs):
            spec = vector_behavior_spec(action_spec, self.obs_size)
            settings = trainer_settings(self.trainer_type, settings_cls())
            trainer = make_trainer(trainer_cls, settings, spec, tmp_path / f"run{i}")
            path = tmp_path / f"policy{i}"
            ModelSerializer(trainer.policy).export_policy_model(str(path))
            yield action_spec, path.with_suffix(".onnx")

    def test_shipped_configs_checkpoint_often(self) -> None:
        trainer_cls, _ = self.registered()
        package = importlib.import_module(trainer_cls.__module__.split(".")[0])
        folder = Path(str(package.__file__)).parent / "configs"
        risky = [
            line for config in sorted(folder.glob("*.yaml")) for line in checkpoint_risk(config)
        ]
        assert not risky, risky

    def test_onnx_export_runs_in_onnxruntime(self, tmp_path: Path) -> None:
        ort = pytest.importorskip("onnxruntime")
        for action_spec, path in self._exported_models(tmp_path):
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            feed = {node.name: _ones(node) for node in session.get_inputs()}
            names = [output.name for output in session.get_outputs()]
            outputs = dict(zip(names, session.run(None, feed), strict=True))
            if action_spec.discrete_size:
                actions = outputs["deterministic_discrete_actions"]
                assert actions.shape == (2, action_spec.discrete_size)
                assert all(
                    0 <= a < n
                    for a, n in zip(actions[0], action_spec.discrete_branches, strict=True)
                )
            if action_spec.continuous_size:
                actions = outputs["deterministic_continuous_actions"]
                assert actions.shape == (2, action_spec.continuous_size)
                assert np.isfinite(actions).all()

    def test_exported_model_passes_unity_model_checks(self, tmp_path: Path) -> None:
        """The ONNX export of each of :attr:`action_specs` breaks none of the rules Unity's
        ML-Agents applies when it loads a model (``mla-plugin check-model``)."""
        from mla_plugin_core.io.model_check import Expected, check_model

        for action_spec, path in self._exported_models(tmp_path):
            behavior = Expected(
                observation_shapes=((self.obs_size,),),
                continuous_actions=action_spec.continuous_size or None,
                discrete_branches=tuple(action_spec.discrete_branches) or None,
            )
            found = check_model(path, behavior)
            assert not found, f"{action_spec}: " + "; ".join(map(str, found))

    # --- the contracts of core's base trainers (see .contracts) -------------------------

    def recipe(self) -> contracts.TrainerRecipe:
        """The contracts' trainer: the first of :attr:`action_specs`, the settings' defaults
        with :attr:`contract_hyperparameters`."""
        trainer_cls, settings_cls = self.registered()
        return contracts.TrainerRecipe(
            trainer_cls,
            self.trainer_type,
            settings_cls(**self.contract_hyperparameters),
            vector_behavior_spec(self.action_specs[0], self.obs_size),
        )

    def test_resumes_where_it_stopped(self, tmp_path: Path) -> None:
        contracts.resumes_where_it_stopped(self.recipe(), tmp_path)

    def test_refuses_a_resume_with_another_network(self, tmp_path: Path) -> None:
        contracts.refuses_another_network(self.recipe(), tmp_path)

    def test_stops_at_a_non_finite_loss(self, tmp_path: Path) -> None:
        contracts.stops_at_a_non_finite_loss(self.recipe(), tmp_path)

    def test_bootstraps_at_time_outs_only(self, tmp_path: Path) -> None:
        recipe = self.recipe()
        if not issubclass(recipe.trainer_cls, OnPolicyPluginTrainer):
            pytest.skip("an on-policy contract")
        contracts.bootstraps_at_time_outs_only(recipe, tmp_path)

    def test_stores_and_samples_what_it_was_given(self, tmp_path: Path) -> None:
        recipe = self.recipe()
        if not issubclass(recipe.trainer_cls, OffPolicyPluginTrainer):
            pytest.skip("an off-policy contract")
        contracts.stores_what_it_was_given(recipe, tmp_path)

    @pytest.mark.slow
    def test_learns(self, mla_train: Any) -> None:
        """:attr:`learning_run` through the real ``mlagents-learn`` reaches its threshold."""
        run_settings = self.learning_run
        if run_settings is None:
            pytest.skip("learning_run = None: no learning run declared")
        run = mla_train(
            run_settings.config,
            env=run_settings.env,
            max_steps=run_settings.max_steps,
            seed=run_settings.seed,
        )
        assert run.returncode == 0, run.summary()
        assert run.final_reward >= run_settings.threshold, run.summary()


#: A run this short (about a minute here) may checkpoint only at its end.
SHORT_RUN_STEPS = 20_000


def checkpoint_risk(config: Path) -> list[str]:
    """The behaviors of the trainer YAML ``config`` that a kill could cost more than a quarter
    of their run: ``checkpoint_interval`` (mlagents' default: 500,000) above ``max_steps / 4``,
    unless the run is short (:data:`SHORT_RUN_STEPS`). One line each, naming file and values."""
    from mlagents.trainers.settings import TrainerSettings

    defaults = attr.fields_dict(TrainerSettings)  # mlagents' own defaults for what is unset
    found = []
    for name, b in (yaml.safe_load(config.read_text()).get("behaviors") or {}).items():
        max_steps = int(float(b.get("max_steps", defaults["max_steps"].default)))
        interval = int(float(b.get("checkpoint_interval", defaults["checkpoint_interval"].default)))
        if max_steps > SHORT_RUN_STEPS and interval > max_steps // 4:
            found.append(
                f"{config.name}: {name}: checkpoint_interval {interval} of max_steps {max_steps} "
                "(a kill loses up to that much; at most max_steps / 4)"
            )
    return found


def _settings_classes(settings_cls: type) -> list[type]:
    """``settings_cls`` and the attrs classes of its nested blocks (e.g. demonstrations)."""
    found = [settings_cls]
    for field in attr.fields(settings_cls):
        for candidate in (field.type, *getattr(field.type, "__args__", ())):
            if isinstance(candidate, type) and attr.has(candidate) and candidate not in found:
                found.append(candidate)
    return found


def _ones(node: Any) -> np.ndarray:
    """An input of two samples for an ONNX graph input (dynamic dimensions become 2): zero
    observations, every action allowed (``action_masks`` 1)."""
    shape = [d if isinstance(d, int) else 2 for d in node.shape]
    fill = 1.0 if node.name == "action_masks" else 0.0
    return np.full(shape, fill, dtype=np.float32)
