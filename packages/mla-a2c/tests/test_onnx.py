"""The ONNX model mlagents exports for an A2C policy: Unity's names, torch's actions."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from a2c_testkit import OBS_SIZE, make_trainer
from mlagents.trainers.torch_entities.model_serialization import ModelSerializer
from mlagents_envs.base_env import ActionSpec

from mla_plugin_core.io.onnx_export import use_legacy_exporter
from mla_plugin_core.testing.builders import vector_behavior_spec

BATCH = 5
CONTINUOUS = [
    "continuous_actions",
    "continuous_action_output_shape",
    "deterministic_continuous_actions",
]
DISCRETE = ["discrete_actions", "discrete_action_output_shape", "deterministic_discrete_actions"]


def export(trainer, tmp_path) -> ort.InferenceSession:
    use_legacy_exporter()
    ModelSerializer(trainer.policy).export_policy_model(str(tmp_path / "policy"))
    return ort.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])


def torch_outputs(trainer, obs: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    """The actor's export forward pass, named as ModelSerializer names its outputs."""
    serializer = ModelSerializer(trainer.policy)
    with torch.no_grad():
        outputs = trainer.policy.actor(
            [torch.as_tensor(obs)], torch.as_tensor(masks), torch.zeros(BATCH, 1, 0)
        )
    return {
        name: np.asarray(out) for name, out in zip(serializer.output_names, outputs, strict=True)
    }


@pytest.mark.parametrize(
    "action_spec, names",
    [
        (ActionSpec.create_continuous(2), CONTINUOUS),
        (ActionSpec.create_discrete((3, 2)), DISCRETE),
        (ActionSpec(2, (3,)), CONTINUOUS + DISCRETE),
    ],
    ids=["continuous", "discrete", "hybrid"],
)
@pytest.mark.parametrize("conditional_sigma", [False, True])
@pytest.mark.parametrize("activation", ["swish", "tanh"])
def test_onnx_has_unity_names_and_torch_deterministic_actions(
    tmp_path, action_spec, names, conditional_sigma, activation
):
    trainer = make_trainer(
        vector_behavior_spec(action_spec),
        tmp_path,
        normalize=True,
        conditional_sigma=conditional_sigma,
        activation=activation,
    )
    session = export(trainer, tmp_path)
    inputs = {i.name for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    assert "obs_0" in inputs
    assert outputs == ["version_number", "memory_size", *names]

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(BATCH, OBS_SIZE)).astype(np.float32)
    masks = np.ones((BATCH, sum(action_spec.discrete_branches)), dtype=np.float32)
    feed = {"obs_0": obs}
    if "action_masks" in inputs:
        feed["action_masks"] = masks
    onnx_out = dict(zip(outputs, session.run(None, feed), strict=True))
    expected = torch_outputs(trainer, obs, masks)
    assert onnx_out["version_number"].item() == 3  # mlagents' MLAgents2_0 model API
    assert onnx_out["memory_size"].item() == 0
    for name in ("deterministic_continuous_actions", "deterministic_discrete_actions"):
        if name in names:
            np.testing.assert_allclose(onnx_out[name], expected[name], rtol=1e-5, atol=1e-6)


def test_onnx_respects_action_masks(tmp_path):
    action_spec = ActionSpec.create_discrete((3, 2))
    trainer = make_trainer(vector_behavior_spec(action_spec), tmp_path)
    session = export(trainer, tmp_path)
    obs = np.random.default_rng(1).normal(size=(BATCH, OBS_SIZE)).astype(np.float32)
    # branch 0: only action 2 allowed; branch 1: only action 0 allowed (1 = allowed)
    masks = np.tile(np.array([0, 0, 1, 1, 0], dtype=np.float32), (BATCH, 1))
    names = [o.name for o in session.get_outputs()]
    out = dict(zip(names, session.run(None, {"obs_0": obs, "action_masks": masks}), strict=True))
    for name in ("discrete_actions", "deterministic_discrete_actions"):
        np.testing.assert_array_equal(out[name], np.tile([2, 0], (BATCH, 1)))


def _camera_spec(action_spec: ActionSpec):
    from mlagents_envs.base_env import (
        BehaviorSpec,
        DimensionProperty,
        ObservationSpec,
        ObservationType,
    )

    camera = (DimensionProperty.NONE,) + (DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,) * 2
    return BehaviorSpec(
        [
            ObservationSpec((OBS_SIZE,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "v"),
            ObservationSpec((3, 36, 36), camera, ObservationType.DEFAULT, "camera"),
        ],
        action_spec,
    )


@pytest.mark.parametrize("kind", ["discrete", "continuous", "hybrid", "recurrent", "visual"])
def test_every_kind_of_export_passes_unity_model_checks(tmp_path, kind):
    """What Unity's ML-Agents checks when it loads a model (mla-plugin check-model), for each
    kind of A2C behavior: discrete, continuous, hybrid, recurrent and visual."""
    from mlagents.trainers.settings import NetworkSettings

    from mla_plugin_core.io.model_check import Expected, check_model

    actions = {
        "discrete": ActionSpec.create_discrete((3, 2)),
        "continuous": ActionSpec.create_continuous(2),
    }.get(kind, ActionSpec(2, (3,)))
    memory = NetworkSettings.MemorySettings(sequence_length=4, memory_size=8)
    shapes: tuple = ((OBS_SIZE,),)
    if kind == "visual":
        shapes = ((OBS_SIZE,), (3, 36, 36))
        try:
            trainer = make_trainer(_camera_spec(actions), tmp_path)
        except Exception as error:  # mlagents 0.30 takes cameras as (H, W, C)
            if "Unsupported Sensor" in str(error):
                pytest.skip(f"this mlagents release takes no (C, H, W) camera: {error}")
            raise
    else:
        spec = vector_behavior_spec(actions)
        trainer = make_trainer(spec, tmp_path, memory=memory if kind == "recurrent" else None)
    use_legacy_exporter()
    ModelSerializer(trainer.policy).export_policy_model(str(tmp_path / "policy"))
    expected = Expected(
        observation_shapes=shapes,
        continuous_actions=actions.continuous_size or None,
        discrete_branches=tuple(actions.discrete_branches) or None,
    )
    assert [str(v) for v in check_model(tmp_path / "policy.onnx", expected)] == []
