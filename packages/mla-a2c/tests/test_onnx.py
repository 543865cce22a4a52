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
