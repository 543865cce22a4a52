"""Will Unity's ML-Agents load this model? :func:`check_model` applies to an ONNX file the
rules that the ML-Agents Unity package applies when it loads a model for inference.

Read from Unity-Technologies/ml-agents, ``com.unity.ml-agents/Runtime/Inference/``: the
Inference Engine loader after release 22 (``SentisModelInfo.cs``, ``SentisModelParamLoader.cs``,
``ModelRunner.cs``, ``TensorGenerator.cs``, ``ApplierImpl.cs``), the Sentis 1.x loader of
release 21 (``SentisModelParamLoader.cs``, ``SentisModelExtensions.cs``) and the Barracuda
one of package 2.x (``BarracudaModelExtensions.cs``); tensor names from ``TensorNames.cs``.
Unity refuses a model outright only for its version (``ModelRunner`` throws); everything
else is a warning in the Inspector and then an exception while the game runs, which is why
it is checked here, before a build ships. Where Unity checks less than it relies on (the
width of ``action_masks``, the memory size of ``recurrent_in``), the stricter check is ours.

Each rule has a name (``version``, ``action-outputs``, ...), in the message of each
:class:`Violation`. Without an :class:`Expected` behavior the model is checked against
itself (its constants against its outputs); with one, also against the behavior it is for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

#: ``version_number`` values Unity loads: 2 (ML-Agents 1.x), 3 (2.x); we export 3.
SUPPORTED_VERSIONS = (2, 3)
ACTION_OUTPUTS = {  # output -> its shape constant
    "continuous_actions": "continuous_action_output_shape",
    "deterministic_continuous_actions": "continuous_action_output_shape",
    "discrete_actions": "discrete_action_output_shape",
    "deterministic_discrete_actions": "discrete_action_output_shape",
}
#: The outputs Unity reads as constants.
CONSTANTS = ("version_number", "memory_size", *dict.fromkeys(ACTION_OUTPUTS.values()))
#: Inputs Unity can fill (``TensorGenerator``), besides ``obs_<i>``.
KNOWN_INPUTS = ("action_masks", "recurrent_in", "prev_action", "epsilon", "sequence_length")
FLOAT = onnx.TensorProto.FLOAT
INTEGERS = (onnx.TensorProto.INT32, onnx.TensorProto.INT64)


@dataclass(frozen=True)
class Violation:
    """A rule the model breaks: ``rule`` names it, ``message`` says what was found."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


@dataclass(frozen=True)
class Expected:
    """The behavior the model is for, as the Unity scene has it (each part optional).

    :param observation_shapes: the shape of each sensor's observation, in sensor order,
        without the batch: ``(8,)`` for a vector, ``(3, 84, 84)`` for a camera (C, H, W).
    :param continuous_actions: the number of continuous actions.
    :param discrete_branches: the size of each discrete branch.
    """

    observation_shapes: tuple[tuple[int, ...], ...] | None = None
    continuous_actions: int | None = None
    discrete_branches: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _Tensor:
    elem_type: int
    shape: tuple[int | None, ...]  # None: a dynamic dimension

    @property
    def rank(self) -> int:
        return len(self.shape)


def _tensors(values: Any, skip: set[str]) -> dict[str, _Tensor]:
    found = {}
    for value in values:
        if value.name in skip:
            continue
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        found[value.name] = _Tensor(tensor.elem_type, dims)
    return found


def _run_once(path: Path, model: onnx.ModelProto, inputs: dict[str, _Tensor],
              outputs: list[str], constants: list[str]) -> dict[str, np.ndarray]:  # fmt: skip
    """The outputs computed as Unity's Inference Engine does on load: once, batch size 1,
    zero inputs (every action allowed, so that no softmax is over nothing), by onnxruntime.
    Without onnxruntime (not a dependency), only ``constants``, by onnx's reference
    evaluator on the part of the graph they need (it lacks the random ops of sampling):
    whether the whole model runs is then not checked."""
    try:
        import onnxruntime
    except ImportError:
        from onnx.reference import ReferenceEvaluator
        from onnx.utils import Extractor

        needed = Extractor(model).extract_model([], constants)
        return dict(zip(constants, ReferenceEvaluator(needed).run(constants, {}), strict=True))
    feed = {
        name: np.full(
            [1 if d is None else d for d in t.shape],
            1.0 if name == "action_masks" else 0.0,
            dtype=np.float32,
        )  # fmt: skip
        for name, t in inputs.items()
    }
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip(outputs, session.run(outputs, feed), strict=True))


@dataclass
class _Model:
    """What the rules read: the graph's inputs and outputs, the outputs' values from one run
    (as Unity's), and what was found so far."""

    inputs: dict[str, _Tensor]
    outputs: dict[str, _Tensor]
    values: dict[str, np.ndarray]
    expected: Expected
    found: list[Violation]

    def broken(self, rule: str, message: str) -> None:
        self.found.append(Violation(rule, message))

    def constant(self, name: str) -> list[int]:
        return [int(v) for v in np.asarray(self.values[name]).ravel()]


def check_model(path: str | Path, expected: Expected | None = None) -> list[Violation]:
    """The rules ``path`` breaks (none: Unity loads it and can run it)."""
    path = Path(path)
    try:
        graph = onnx.load(str(path))
    except Exception as error:  # noqa: BLE001 - any unreadable file is one violation
        return [Violation("readable", f"{path} is not an ONNX model Unity can read: {error}")]
    inputs = _tensors(graph.graph.input, {i.name for i in graph.graph.initializer})
    outputs = _tensors(graph.graph.output, set())
    found = [
        Violation("constants", f'no output "{name}": Unity reads it from every model')
        for name in ("version_number", "memory_size")
        if name not in outputs
    ]
    constants = [n for n in outputs if n in CONSTANTS]
    try:  # every output, as Unity computes them all (constants included) on load
        values = _run_once(path, graph, inputs, list(outputs), constants)
    except Exception as error:  # noqa: BLE001 - Unity would fail the same way on load
        why = " ".join(str(error).split())[:300]
        return [*found, Violation("runs", "the model does not run on zero inputs at batch "
                                  "size 1, as Unity runs it when it loads it: "
                                  f"{type(error).__name__}: {why}")]  # fmt: skip
    if found:
        return found
    model = _Model(inputs, outputs, values, expected or Expected(), found)
    memory = _check_version(model)
    _check_actions(model)
    _check_observations(model)
    _check_memory(model, memory)
    return found


def _check_version(model: _Model) -> int:
    """``version_number`` and ``memory_size`` (the only rules Unity refuses a model for);
    the memory size."""
    version, memory = model.constant("version_number")[0], model.constant("memory_size")[0]
    if version not in SUPPORTED_VERSIONS:
        model.broken("version", f"version_number is {version}; Unity loads "
                                f"{' or '.join(map(str, SUPPORTED_VERSIONS))}")  # fmt: skip
    if version == 2 and memory > 0:
        model.broken("version", "a version 2 model with memory_size > 0: Unity refuses "
                                "recurrent models of ML-Agents 1.x")  # fmt: skip
    if memory < 0:
        model.broken("memory-size", f"memory_size is {memory}: must be 0, or the memory's width")
    return memory


def _check_actions(model: _Model) -> None:
    """Each kind of action: both outputs (stochastic, deterministic), of the right type and
    width, with a float shape constant; discrete ones with their masks; and the behavior's."""
    if not any(name in model.outputs for name in ACTION_OUTPUTS):
        model.broken("action-outputs", f"no action output (one of {', '.join(ACTION_OUTPUTS)})")
    for kind in ("continuous", "discrete"):
        names = [f"{kind}_actions", f"deterministic_{kind}_actions"]
        if not any(n in model.outputs for n in names):
            continue
        for name in names:
            if name not in model.outputs:
                when = "on" if name.startswith("deterministic") else "off"
                model.broken("action-outputs", f"{name} is missing: Unity uses it when "
                                               f"'Deterministic Inference' is {when}")  # fmt: skip
        constant = f"{kind}_action_output_shape"
        if constant not in model.outputs:
            model.broken("action-shape", f"{kind} actions without the output {constant}")
            continue
        if model.outputs[constant].elem_type != FLOAT:
            model.broken("action-shape", f"{constant} must be float (Unity casts it to float)")
        sizes = model.constant(constant)
        width = (sizes[0] if sizes else 0) if kind == "continuous" else len(sizes)
        for name in (n for n in names if n in model.outputs):
            t = model.outputs[name]
            if kind == "continuous" and t.elem_type != FLOAT:
                model.broken("action-outputs", f"{name} must be float")
            if kind == "discrete" and t.elem_type not in INTEGERS:
                model.broken("action-outputs", f"{name} must be an integer type (action indices)")
            if t.rank != 2 or t.shape[1] not in (None, width):
                model.broken("action-outputs", f"{name} has shape {_shown(t.shape)}; {constant} "
                                               f"says [batch, {width}]")  # fmt: skip
        if not sizes or min(sizes) <= 0:
            model.broken("action-shape", f"{constant} is {sizes}: sizes > 0 (one per branch "
                                         "for discrete actions)")  # fmt: skip
        if kind == "discrete":
            _check_masks(model, sizes)
        _check_expected_actions(model, kind, sizes)


def _check_masks(model: _Model, branches: list[int]) -> None:
    masks = model.inputs.get("action_masks")
    if masks is None:
        model.broken("action-masks", "discrete actions without the input action_masks")
    elif masks.rank != 2 or masks.shape[1] not in (None, sum(branches)):
        model.broken("action-masks", f"action_masks has shape {_shown(masks.shape)}; the "
                                     f"branches {branches} need [batch, {sum(branches)}]")  # fmt: skip


def _check_expected_actions(model: _Model, kind: str, sizes: list[int]) -> None:
    want = model.expected
    if kind == "continuous" and want.continuous_actions is not None:
        if sizes[:1] != [want.continuous_actions]:
            model.broken("action-shape", f"{sizes[0] if sizes else 0} continuous actions; the "
                                         f"behavior has {want.continuous_actions}")  # fmt: skip
    if kind == "discrete" and want.discrete_branches is not None:
        if tuple(sizes) != tuple(want.discrete_branches):
            model.broken("action-shape", f"discrete branches {sizes}; the behavior has "
                                         f"{list(want.discrete_branches)}")  # fmt: skip


def _check_observations(model: _Model) -> None:
    """``obs_0`` .. ``obs_<n-1>`` of the ranks Unity feeds, nothing Unity cannot fill, all
    float; with the behavior's sensors, their shapes (cameras as C, H, W)."""
    inputs = model.inputs
    observations = sorted(int(n[4:]) for n in inputs if n.startswith("obs_") and n[4:].isdigit())
    if observations != list(range(len(observations))):
        listed = ", ".join(f"obs_{i}" for i in observations)
        model.broken("observations", f"observation inputs {listed}: must be obs_0 .. "
                                     f"obs_{len(observations) - 1} without a gap")  # fmt: skip
    for name, t in inputs.items():
        if not (name.startswith("obs_") and name[4:].isdigit()) and name not in KNOWN_INPUTS:
            model.broken("inputs", f"unexpected input {name}: Unity fills only obs_<i>, "
                                   f"{', '.join(KNOWN_INPUTS)}")  # fmt: skip
        elif t.elem_type != FLOAT:
            model.broken("inputs", f"{name} must be float: Unity feeds every input as float")
    for i in observations:
        if inputs[f"obs_{i}"].rank not in (2, 3, 4):
            model.broken("observations", f"obs_{i} has rank {inputs[f'obs_{i}'].rank}: Unity "
                                         "feeds [batch, n], [batch, a, b] or [batch, C, H, W]")  # fmt: skip
    sensors = model.expected.observation_shapes
    if sensors is None:
        return
    if len(observations) != len(sensors):
        model.broken("observations", f"{len(observations)} observation inputs for the "
                                     f"behavior's {len(sensors)} sensors")  # fmt: skip
    for i, shape in enumerate(sensors[: len(observations)]):
        got = inputs[f"obs_{i}"].shape[1:]
        if len(got) != len(shape) or any(
            g not in (None, s) for g, s in zip(got, shape, strict=True)
        ):
            model.broken("observations", f"obs_{i} is {_shown(got)} per agent; the sensor "
                                         f"gives {list(shape)} (cameras: C, H, W)")  # fmt: skip


def _check_memory(model: _Model, memory: int) -> None:
    """``recurrent_in`` and ``recurrent_out`` as [batch, 1, memory_size] when there is a memory
    (Unity reads and writes them at [agent, 0, j]), neither when there is none."""
    if memory <= 0:
        if "recurrent_in" in model.inputs:
            model.broken("memory", "recurrent_in without a memory_size > 0: Unity feeds none")
        return
    for name, where in (("recurrent_in", model.inputs), ("recurrent_out", model.outputs)):
        t = where.get(name)
        if t is None:
            model.broken("memory", f"memory_size is {memory} but the model has no {name}")
        elif t.rank != 3 or t.shape[1:] not in ((1, memory), (None, memory), (1, None)):
            model.broken("memory", f"{name} has shape {_shown(t.shape)}; memory_size {memory} "
                                   f"needs [batch, 1, {memory}]")  # fmt: skip


def _shown(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in shape) + "]"
