"""NaN/inf: found in stats and state dicts, refused by the saver, one line at exit,
refused as hyperparameters."""

import math
import os

import attr
import numpy as np
import pytest
import torch
from mlagents.trainers.policy.torch_policy import TorchPolicy
from mlagents.trainers.settings import NetworkSettings, TrainerSettings
from mlagents.trainers.torch_entities.networks import SimpleActor
from mlagents_envs.base_env import (
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

from mla_plugin_core.host import config_errors
from mla_plugin_core.io.checkpoint import AtomicTorchModelSaver
from mla_plugin_core.settings import (
    HyperparameterError,
    OffPolicySettings,
    OnPolicySettings,
)
from mla_plugin_core.util.finite import NonFiniteError, check_values, non_finite_entries

SPEC = BehaviorSpec(
    [ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "vec")],
    ActionSpec.create_discrete((2,)),
)


def test_non_finite_entries_names_stats_arrays_and_nested_state():
    state = {
        "Policy": {"w": torch.tensor([1.0, math.nan, math.inf]), "steps": torch.tensor([3])},
        "Optimizer:adam": {"param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999)}]},
    }
    assert non_finite_entries(state) == ["Policy/w has 2 of 3 values NaN/inf"]
    stats = {"Losses/Q Loss": math.nan, "Policy/Learning Rate": 1e-3, "TD errors": None}
    assert non_finite_entries(stats) == ["Losses/Q Loss = nan"]
    assert non_finite_entries({"td": np.array([0.0, -np.inf])}) == ["td has 1 of 2 values NaN/inf"]
    assert non_finite_entries({"lr": math.inf, "ok": 1, "name": "x"}) == ["lr = inf"]
    with pytest.raises(NonFiniteError) as raised:
        check_values(stats, step=42, hint="lower hyperparameters.learning_rate", context="Basic")
    assert str(raised.value) == (
        "Basic: Losses/Q Loss = nan at step 42; lower hyperparameters.learning_rate"
    )


def make_saver(tmp_path) -> tuple[AtomicTorchModelSaver, TorchPolicy]:
    settings = TrainerSettings(
        hyperparameters=OnPolicySettings(),
        network_settings=NetworkSettings(hidden_units=8, num_layers=1),
    )
    policy = TorchPolicy(0, SPEC, settings.network_settings, SimpleActor, {})
    saver = AtomicTorchModelSaver(settings, str(tmp_path), load=False)
    saver.register(policy)
    return saver, policy


def test_saver_refuses_a_non_finite_state_and_keeps_the_last_checkpoint(tmp_path):
    saver, policy = make_saver(tmp_path)
    saver.save_checkpoint("Basic", 100)
    files = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert {"checkpoint.pt", "Basic-100.pt", "Basic-100.onnx"} <= set(files)

    weight = next(p for p in policy.actor.parameters() if p.dim() == 2)
    with torch.no_grad():
        weight[0, 0] = math.nan
    with pytest.raises(NonFiniteError) as raised:
        saver.save_checkpoint("Basic", 200)
    message = str(raised.value)
    assert message.startswith("Basic: non-finite model state Policy/") and "at step 200" in message
    assert "\n" not in message
    # Nothing written, nothing replaced: the step-100 files are the last ones.
    after = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    assert after == files


def test_excepthook_prints_one_line_for_a_non_finite_stop(capsys):
    previous = []
    hook = config_errors._excepthook(lambda *args: previous.append(args))
    error = NonFiniteError("Losses/Q Loss = nan", 1032, "lower hyperparameters.learning_rate")
    hook(type(error), error, None)
    assert capsys.readouterr().err == (
        "mlagents-learn: training stopped: Losses/Q Loss = nan at step 1032; "
        "lower hyperparameters.learning_rate\n"
    )
    assert previous == []
    other = RuntimeError("boom")
    hook(type(other), other, None)
    assert previous == [(RuntimeError, other, None)]


@attr.s(auto_attribs=True)
class WithUnboundedFloat(OffPolicySettings):
    scale: float = 1.0  # declared without hyperparameter(): still checked finite


@pytest.mark.parametrize("cls", [OnPolicySettings, OffPolicySettings])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_learning_rate_is_refused_naming_the_key(cls, value):
    with pytest.raises(HyperparameterError) as raised:
        cls(learning_rate=value)
    assert str(raised.value) == (
        f"hyperparameters.learning_rate = {value!r} is not allowed: must be a finite number > 0.0"
    )


def test_every_float_hyperparameter_must_be_finite():
    with pytest.raises(HyperparameterError) as raised:
        WithUnboundedFloat(scale=math.inf)
    assert str(raised.value) == (
        "hyperparameters.scale = inf is not allowed: must be a finite number"
    )
    with pytest.raises(HyperparameterError, match="prioritized_replay_alpha = nan"):
        OffPolicySettings(prioritized_replay_alpha=math.nan)
    assert WithUnboundedFloat(scale=1e30).scale == 1e30  # huge is allowed, only not finite is not
