"""``check_model``: every model our trainers export passes; each rule of Unity's loader has a
model that breaks it, and the check names that rule (and only it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mla_plugin_core.io.model_check import Expected, check_model

FEATURES = 6


def build(path: Path, *, version: float = 3.0, memory: int = 0, continuous: int = 2,
          branches: tuple[int, ...] = (3, 2), leave_out: tuple[str, ...] = (),
          discrete_type: int = TensorProto.INT64, constant_type: int = TensorProto.FLOAT,
          masks_width: int | None = None, extra_input: str | None = None,
          recurrent_width: int | None = None, obs_names: tuple[str, ...] = ("obs_0",),
          unrunnable: bool = False) -> Path:  # fmt: skip
    """A small model with the inputs, outputs and constants of mlagents' export (hybrid
    actions, optional memory), less ``leave_out``, with one part changed by the arguments."""
    nodes, inputs, outputs, inits = [], [], [], []

    def constant(name: str, values: list[float]) -> None:
        array = np.asarray(values, dtype=np.float32)
        if constant_type != TensorProto.FLOAT:
            array = array.astype(np.int64)
        nodes.append(helper.make_node("Constant", [], [name],
                                      value=numpy_helper.from_array(array, name)))  # fmt: skip
        outputs.append(helper.make_tensor_value_info(name, constant_type, [len(values)]))

    def output(name: str, elem_type: int, shape: list) -> None:
        if name not in leave_out:
            outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    for obs in obs_names:
        inputs.append(helper.make_tensor_value_info(obs, TensorProto.FLOAT, ["batch", FEATURES]))
    constant("version_number", [version])
    if "memory_size" not in leave_out:
        constant("memory_size", [float(memory)])
    first = obs_names[0]
    if continuous:
        w = numpy_helper.from_array(np.ones((FEATURES, continuous), np.float32), "wc")
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [first, "wc"], ["continuous_actions"]))
        nodes.append(helper.make_node("Identity", ["continuous_actions"],
                                      ["deterministic_continuous_actions"]))  # fmt: skip
        for name in ("continuous_actions", "deterministic_continuous_actions"):
            output(name, TensorProto.FLOAT, ["batch", continuous])
        if "continuous_action_output_shape" not in leave_out:
            constant("continuous_action_output_shape", [float(continuous)])
    if branches:
        inits.append(numpy_helper.from_array(np.ones((FEATURES, len(branches)), np.float32), "wd"))
        nodes.append(helper.make_node("MatMul", [first, "wd"], ["logits"]))
        nodes.append(helper.make_node("Cast", ["logits"], ["discrete_actions"], to=discrete_type))
        nodes.append(helper.make_node("Identity", ["discrete_actions"],
                                      ["deterministic_discrete_actions"]))  # fmt: skip
        for name in ("discrete_actions", "deterministic_discrete_actions"):
            output(name, discrete_type, ["batch", len(branches)])
        if "discrete_action_output_shape" not in leave_out:
            constant("discrete_action_output_shape", [float(b) for b in branches])
        if "action_masks" not in leave_out:
            width = sum(branches) if masks_width is None else masks_width
            inputs.append(helper.make_tensor_value_info("action_masks", TensorProto.FLOAT,
                                                        ["batch", width]))  # fmt: skip
    if memory:
        width = memory if recurrent_width is None else recurrent_width
        if "recurrent_in" not in leave_out:
            inputs.append(helper.make_tensor_value_info("recurrent_in", TensorProto.FLOAT,
                                                        ["batch", 1, width]))  # fmt: skip
            nodes.append(helper.make_node("Identity", ["recurrent_in"], ["recurrent_out"]))
            output("recurrent_out", TensorProto.FLOAT, ["batch", 1, width])
    if unrunnable:  # an output that needs a batch of 4 (Unity runs the model with 1)
        inits.append(numpy_helper.from_array(np.array([4, -1], np.int64), "four_rows"))
        nodes.append(helper.make_node("Reshape", [first, "four_rows"], ["grouped"]))
        outputs.append(helper.make_tensor_value_info("grouped", TensorProto.FLOAT, [4, None]))
    if extra_input:
        inputs.append(helper.make_tensor_value_info(extra_input, TensorProto.FLOAT, ["batch", 1]))
    graph = helper.make_graph(nodes, "policy", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


def rules(path: Path, expected: Expected | None = None) -> set[str]:
    return {v.rule for v in check_model(path, expected)}


def test_the_reference_model_passes(tmp_path):
    assert check_model(build(tmp_path / "ok.onnx")) == []
    assert check_model(build(tmp_path / "lstm.onnx", memory=8)) == []
    behavior = Expected(observation_shapes=((FEATURES,),), continuous_actions=2,
                        discrete_branches=(3, 2))  # fmt: skip
    assert check_model(tmp_path / "ok.onnx", behavior) == []


@pytest.mark.parametrize(
    ("rule", "broken"),
    [
        ("constants", {"leave_out": ("memory_size",)}),
        ("version", {"version": 4.0}),
        ("version", {"version": 2.0, "memory": 8}),  # recurrent models of ML-Agents 1.x
        ("action-outputs", {"leave_out": ("deterministic_continuous_actions",)}),
        ("action-outputs", {"discrete_type": TensorProto.FLOAT}),  # logits, not indices
        ("action-shape", {"leave_out": ("discrete_action_output_shape",)}),
        ("action-shape", {"constant_type": TensorProto.INT64}),  # Unity casts them to float
        ("action-masks", {"leave_out": ("action_masks",)}),
        ("action-masks", {"masks_width": 4}),
        ("inputs", {"extra_input": "temperature"}),
        ("observations", {"obs_names": ("obs_0", "obs_2")}),
        ("memory", {"memory": 8, "leave_out": ("recurrent_in",)}),
        ("memory", {"memory": 8, "recurrent_width": 4}),
        pytest.param(
            "runs",
            {"unrunnable": True},
            marks=pytest.mark.skipif(
                importlib.util.find_spec("onnxruntime") is None,
                reason="whether the whole model runs is checked with onnxruntime only",
            ),
        ),  # fmt: skip
    ],
)
def test_each_rule_names_the_model_that_breaks_it(tmp_path, rule, broken):
    found = check_model(build(tmp_path / "broken.onnx", **broken))
    assert {v.rule for v in found} == {rule}, [str(v) for v in found]
    assert all("\n" not in str(v) for v in found)


def test_no_action_output_at_all(tmp_path):
    path = build(tmp_path / "none.onnx", continuous=0, branches=())
    assert rules(path) == {"action-outputs"}


@pytest.mark.parametrize(
    ("expected", "named"),
    [
        (Expected(observation_shapes=((FEATURES + 1,),)), "the sensor gives [7]"),
        (Expected(observation_shapes=((FEATURES,), (3, 84, 84))), "for the behavior's 2 sensors"),
        (Expected(continuous_actions=3), "the behavior has 3"),
        (Expected(discrete_branches=(3, 3)), "the behavior has [3, 3]"),
    ],
)
def test_a_model_for_another_behavior(tmp_path, expected, named):
    found = check_model(build(tmp_path / "ok.onnx"), expected)
    assert len(found) == 1 and named in str(found[0]), [str(v) for v in found]


def test_a_file_that_is_no_model_is_one_violation(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a model")
    (found,) = check_model(path)
    assert found.rule == "readable" and str(path) in found.message


@pytest.mark.parametrize(
    ("actions", "memory", "observations"),
    [
        ((2, (3, 2)), False, ((FEATURES,),)),  # hybrid
        ((0, (3,)), True, ((FEATURES,),)),  # discrete, recurrent
        ((2, ()), True, ((FEATURES,), (3, 36, 36))),  # continuous, recurrent, with a camera
    ],
)
def test_mlagents_own_exports_pass(tmp_path, actions, memory, observations):
    # what mlagents' exporter writes is what Unity loads: a rule that refuses it is wrong
    from mlagents.trainers.ppo.trainer import PPOSettings, PPOTrainer
    from mlagents.trainers.settings import NetworkSettings
    from mlagents.trainers.torch_entities.model_serialization import ModelSerializer
    from mlagents_envs.base_env import (
        ActionSpec,
        BehaviorSpec,
        DimensionProperty,
        ObservationSpec,
        ObservationType,
    )

    from mla_plugin_core.io.onnx_export import use_legacy_exporter
    from mla_plugin_core.testing.builders import make_trainer, trainer_settings

    use_legacy_exporter()
    camera = (DimensionProperty.NONE,) + (DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,) * 2
    specs = [
        ObservationSpec(
            shape,
            camera if len(shape) == 3 else (DimensionProperty.NONE,),
            ObservationType.DEFAULT,
            f"obs{i}",
        )  # fmt: skip
        for i, shape in enumerate(observations)
    ]
    spec = BehaviorSpec(specs, ActionSpec(actions[0], actions[1]))
    settings = trainer_settings(
        "ppo", PPOSettings(),
        memory=NetworkSettings.MemorySettings(sequence_length=4, memory_size=8) if memory else None,
    )  # fmt: skip
    try:
        trainer = make_trainer(PPOTrainer, settings, spec, tmp_path / "run")
    except Exception as error:  # mlagents 0.30 takes cameras as (H, W, C): see the notes
        if "Unsupported Sensor" in str(error) and len(observations) > 1:
            pytest.skip(f"this mlagents release takes no (C, H, W) camera: {error}")
        raise
    ModelSerializer(trainer.get_policy(next(iter(trainer.policies)))).export_policy_model(
        str(tmp_path / "policy")
    )
    behavior = Expected(observation_shapes=observations, continuous_actions=actions[0] or None,
                        discrete_branches=actions[1] or None)  # fmt: skip
    assert [str(v) for v in check_model(tmp_path / "policy.onnx", behavior)] == []


def test_without_onnxruntime_the_constants_are_still_read(tmp_path, monkeypatch):
    # onnxruntime is not a dependency of mla-plugin-core: onnx's own evaluator reads the
    # constants (it lacks the random ops of a policy's sampling, so the whole model is not
    # run: "runs" is checked only with onnxruntime)
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import fails
    assert check_model(build(tmp_path / "ok.onnx", memory=8)) == []
    assert rules(build(tmp_path / "v4.onnx", version=4.0)) == {"version"}
    assert rules(build(tmp_path / "masks.onnx", masks_width=4)) == {"action-masks"}
    assert check_model(build(tmp_path / "unrunnable.onnx", unrunnable=True)) == []


def test_the_command_prints_a_line_per_broken_rule(tmp_path, capsys):
    from mla_plugin_core.cli import main

    good = build(tmp_path / "good.onnx")
    assert main(["check-model", str(good), "--obs", str(FEATURES), "--continuous", "2",
                 "--branches", "3", "2"]) == 0  # fmt: skip
    assert "loads it" in capsys.readouterr().out
    assert main(["check-model", str(good), "--obs", "3x84x84", "--branches", "3", "3"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{good}: ") for line in lines), lines
    assert main(["check-model", str(tmp_path / "missing.onnx")]) == 2
    assert "no such file" in capsys.readouterr().err
