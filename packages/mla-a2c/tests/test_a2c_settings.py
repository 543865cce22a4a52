"""A2C hyperparameters: defaults, validation, the shipped configs, the entry point."""

from pathlib import Path

import pytest
import yaml
from mlagents.plugins.trainer_type import register_trainer_plugins
from mlagents.trainers.settings import RunOptions, ScheduleType, strict_to_cls

import mla_a2c
from mla_a2c.settings import A2CSettings
from mla_plugin_core.settings import HyperparameterError

CONFIGS = Path(mla_a2c.__file__).parent / "configs"


def test_defaults_are_classic_a2c():
    settings = A2CSettings()
    assert settings.num_epoch == 1
    assert settings.batch_size == settings.buffer_size == 2048
    assert settings.lambd == 1.0
    assert settings.optimizer == "rmsprop"
    assert settings.activation == "swish"  # mlagents' own networks unless asked otherwise
    assert A2CSettings(buffer_size=96).batch_size == 96
    assert A2CSettings(buffer_size=96, batch_size=32).batch_size == 32


def test_yaml_values_are_structured():
    settings = strict_to_cls(
        {"buffer_size": 64, "beta_schedule": "constant", "optimizer": "adam"}, A2CSettings
    )
    assert settings.batch_size == 64
    assert settings.beta_schedule is ScheduleType.CONSTANT


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("num_epoch", 3, "A2C makes one pass over each buffer"),
        ("beta", -1.0, "must be a number >= 0.0"),
        ("lambd", 1.5, "<= 1.0"),
        ("learning_rate", 0.0, "> 0.0"),
        ("value_loss_coef", -0.5, "> 0.0"),
        ("max_grad_norm", 0.0, "> 0.0"),
        ("optimizer", "sgd", "must be one of 'rmsprop', 'adam'"),
        ("rmsprop_alpha", 1.0, "< 1.0"),
        ("optimizer_eps", 0.0, "> 0.0"),
        ("buffer_size", 0, ">= 1"),
        ("activation", "sigmoid", "must be one of 'swish', 'tanh', 'relu'"),
    ],
)
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(HyperparameterError) as error:
        strict_to_cls({key: value}, A2CSettings)
    assert str(error.value).startswith(f"hyperparameters.{key} = {value!r} is not allowed")
    assert message in str(error.value)


def test_buffer_must_hold_a_batch():
    with pytest.raises(HyperparameterError, match="buffer_size = 32 is not allowed"):
        A2CSettings(buffer_size=32, batch_size=64)


def test_shipped_configs_are_named_by_behavior_and_cut_buffers_at_time_horizons():
    # That they load as A2CSettings is a conformance check (test_a2c_conformance.py).
    behaviors = {
        path.name: yaml.safe_load(path.read_text())["behaviors"] for path in CONFIGS.glob("*.yaml")
    }
    assert {name: next(iter(b)) for name, b in behaviors.items()} == {
        "a2c_basic.yaml": "Basic",
        "a2c_3DBall.yaml": "3DBall",
    }
    for (behavior,) in (b.values() for b in behaviors.values()):
        assert behavior["hyperparameters"]["buffer_size"] % behavior["time_horizon"] == 0


def test_a_string_boolean_in_the_yaml_is_refused_naming_the_key():
    register_trainer_plugins()  # what mlagents-learn does before reading the YAML
    behavior = {"trainer_type": "a2c", "hyperparameters": {"normalize_advantage": "false"}}
    with pytest.raises(HyperparameterError) as error:
        RunOptions.from_dict({"behaviors": {"Basic": behavior}})
    assert str(error.value) == (
        "Basic: hyperparameters.normalize_advantage = 'false' is not allowed: must be true or false"
    )
