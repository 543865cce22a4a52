"""Validated hyperparameters: bad values name the YAML key and what is allowed."""

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


@attr.s(auto_attribs=True)
class ExampleSettings(OffPolicySettings):
    tau: float = hyperparameter(0.005, gt=0.0, le=1.0)
    n_step: int = hyperparameter(1, ge=1, le=10)
    optimizer: str = hyperparameter("adam", choices=("adam", "rmsprop"))


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
