"""Validated hyperparameters: bad values name the YAML key and what is allowed."""

from pathlib import Path

import attr
import cattr
import pytest
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.settings import strict_to_cls

from mla_plugin_core.settings import (
    HyperparameterError,
    OffPolicySettings,
    OnPolicySettings,
    hyperparameter,
)
from mla_plugin_core.testing.hyperparameters import (
    hyperparameter_table,
    hyperparameters,
    loose_booleans,
    readme_table_differences,
    undocumented,
    update_readme_tables,
)
from mla_plugin_core.trainers.schedules import Schedule

README = Path(__file__).parents[2] / "README.md"


@attr.s(auto_attribs=True)
class ExampleSettings(OffPolicySettings):
    tau: float = hyperparameter(0.005, gt=0.0, le=1.0)
    n_step: int = hyperparameter(1, ge=1, le=10)
    optimizer: str = hyperparameter("adam", choices=("adam", "rmsprop"))
    schedule: Schedule = hyperparameter(Schedule.LINEAR, choices=tuple(Schedule))


def test_defaults_are_valid():
    settings = ExampleSettings()
    assert settings.tau == 0.005 and settings.n_step == 1 and settings.batch_size == 128


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("tau", 0.0, "> 0.0"),
        ("tau", 1.5, "<= 1.0"),
        ("n_step", 0, ">= 1"),
        ("learning_rate", -1e-3, "> 0.0"),
        ("batch_size", 0, ">= 1"),
        ("optimizer", "sgd", "'adam', 'rmsprop'"),
        ("schedule", "cosine", "must be one of 'constant', 'linear', 'exponential'"),
        ("tau", float("nan"), "> 0.0"),
        ("n_step", True, ">= 1"),
    ],
)
def test_bad_value_names_key_and_allowed_range(key, value, allowed):
    with pytest.raises(HyperparameterError) as info:
        ExampleSettings(**{key: value})
    message = str(info.value)
    assert message.startswith(f"hyperparameters.{key} = {value!r} is not allowed")
    assert allowed in message
    assert isinstance(info.value, TrainerConfigError)


def test_an_enum_setting_takes_its_values_in_python_as_in_a_yaml():
    assert ExampleSettings(schedule="constant").schedule is Schedule.CONSTANT
    assert ExampleSettings(schedule=Schedule.EXPONENTIAL).schedule is Schedule.EXPONENTIAL
    assert strict_to_cls({"schedule": "constant"}, ExampleSettings).schedule is Schedule.CONSTANT


def test_buffer_must_hold_a_batch():
    with pytest.raises(HyperparameterError, match=r"buffer_size = 64 .* >= batch_size \(128\)"):
        ExampleSettings(buffer_size=64)
    with pytest.raises(HyperparameterError, match="buffer_size"):
        OnPolicySettings(batch_size=512, buffer_size=256)


def test_structured_through_mlagents_strict_machinery():
    settings = strict_to_cls({"tau": 0.01, "n_step": 3, "batch_size": 64}, ExampleSettings)
    assert (settings.tau, settings.n_step, settings.batch_size) == (0.01, 3, 64)
    with pytest.raises(TrainerConfigError, match="n_stepp"):
        strict_to_cls({"n_stepp": 3}, ExampleSettings)
    with pytest.raises(HyperparameterError, match="hyperparameters.n_step = 11"):
        strict_to_cls({"n_step": 11}, ExampleSettings)
    # Round trip through cattrs, as mlagents does when it writes configuration.yaml.
    assert cattr.structure(cattr.unstructure(settings), ExampleSettings) == settings


@pytest.mark.parametrize("cls", [OnPolicySettings, OffPolicySettings])
@pytest.mark.parametrize("value", ["false", "true", "maybe", 2, 0, "yes", None])
def test_booleans_take_true_or_false_only(cls, value):
    key = "normalize_advantage" if cls is OnPolicySettings else "prioritized_replay"
    with pytest.raises(HyperparameterError) as info:
        strict_to_cls({key: value}, cls)  # as mlagents reads the YAML: cattrs first
    assert str(info.value) == (
        f"hyperparameters.{key} = {value!r} is not allowed: must be true or false"
    )
    assert getattr(strict_to_cls({key: False}, cls), key) is False


def test_every_base_hyperparameter_is_documented_and_every_boolean_strict():
    for cls in (OnPolicySettings, OffPolicySettings):
        assert undocumented(cls) == [], cls
        assert loose_booleans(cls) == [], cls
    assert OnPolicySettings().normalize_advantage is True  # core standardises by default
    assert OnPolicySettings().lambd == 0.95


def test_readme_tables_are_the_declared_fields(tmp_path):
    assert readme_table_differences(README) == []
    # A table that drifted (the key core once listed but no class declared) is reported.
    drifted = tmp_path / "README.md"
    drifted.write_text(
        README.read_text().replace("| `lambd` | 0.95 |", "| `lambd` | 0.9 |"), encoding="utf-8"
    )
    assert readme_table_differences(drifted) == ["mla_plugin_core.settings:OnPolicySettings"]
    update_readme_tables(drifted)
    assert drifted.read_text() == README.read_text()


def test_docs_are_read_from_the_comment_above_each_field():
    (tau,) = [h for h in hyperparameters(DocumentedSettings) if h.name == "tau"]
    assert tau.doc == "Polyak factor, in (0, 1]. Two lines."
    assert tau.owner is DocumentedSettings
    assert undocumented(DocumentedSettings) == ["plain"]
    assert loose_booleans(DocumentedSettings) == ["plain"]
    assert "| `tau` | 0.005 | Polyak factor, in (0, 1]. Two lines. |" in hyperparameter_table(
        DocumentedSettings
    )


@attr.s(auto_attribs=True)
class DocumentedSettings(OffPolicySettings):
    #: Polyak factor, in (0, 1].
    #: Two lines.
    tau: float = hyperparameter(0.005, gt=0.0, le=1.0)
    plain: bool = False
