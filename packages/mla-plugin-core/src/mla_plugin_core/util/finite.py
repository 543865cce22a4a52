"""Stop training at the first NaN or infinity, before it reaches a checkpoint.

A learning rate that is far too large makes a loss NaN within a few gradient steps; after
one more step every parameter is NaN, the policy acts at random (or torch's sampling
fails) and, left alone, mlagents would save that state as checkpoints and an ONNX model.
This module is the one place where "finite" is checked:

- :func:`non_finite_entries` lists the NaN/inf entries of stats, arrays, tensors and
  nested state dicts (a module's parameters, an optimizer's moments);
- :func:`check_values` and :func:`check_state` raise :class:`NonFiniteError`, whose
  message is one line: what went non-finite, at which step, and a hint.

The base trainers call them on the losses of every gradient step (on-policy, the reward
signals' too); on-policy also after each update on the parameters and on what the updated
policy computes; and on the whole state before each checkpoint (see
:class:`~mla_plugin_core.trainers.base.PluginTrainerMixin`).
:class:`~mla_plugin_core.io.checkpoint.AtomicTorchModelSaver` checks again before it writes
anything: no non-finite checkpoint or ONNX is written and the last finite ones stay.
``mlagents-learn`` then stops with exit status 1 and the one line
(see :mod:`.config_errors`)::

    mlagents-learn: training stopped: Basic: Losses/Q Loss = nan, Policy/Q Mean = nan (and
    1 more) at step 217; lower hyperparameters.learning_rate (now 1e+30); checkpoints
    written before are kept and no non-finite model was saved
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from mlagents.trainers.exception import TrainerError

#: How many non-finite entries a message names before it says "and N more".
NAMED_IN_MESSAGE = 2

#: The hint of a save that was refused.
REFUSED_SAVE = "refusing to save it: the checkpoint files already written are kept"


class NonFiniteError(TrainerError):
    """A loss, stat or parameter became NaN or infinite; ``str()`` is one line.

    :param what: the non-finite things, e.g. ``"Losses/Q Loss = nan"``.
    :param step: the environment step at which it was found.
    :param hint: what to change, e.g. ``"lower hyperparameters.learning_rate (now 10)"``.
    :param context: whose state it is, e.g. the behavior name; may be empty.
    """

    def __init__(self, what: str, step: int, hint: str, context: str = "") -> None:
        self.what = what
        self.step = int(step)
        self.hint = hint
        self.context = context
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}{what} at step {self.step}; {hint}")


def _entries(value: Any, name: str) -> Iterator[tuple[str, Any]]:
    """``(name, leaf)`` for every leaf of nested mappings and lists/tuples."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _entries(item, f"{name}/{key}" if name else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _entries(item, f"{name}/{i}" if name else str(i))
    else:
        yield name, value


def _describe(value: Any) -> str | None:
    """``None`` if ``value`` is finite (or not a number); else how it is non-finite."""
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.is_complex()):
            return None
        finite = torch.isfinite(value.detach())
        if bool(finite.all()):
            return None
        if value.dim() == 0:
            return f"= {value.item()}"
        return f"has {int((~finite).sum())} of {value.numel()} values NaN/inf"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "fc":
            return None
        finite_array = np.isfinite(value)
        if finite_array.all():
            return None
        if value.ndim == 0:
            return f"= {value.item()}"
        return f"has {int((~finite_array).sum())} of {value.size} values NaN/inf"
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else f"= {value}"
    return None


def non_finite_entries(values: Any) -> list[str]:
    """``"name = nan"``-like descriptions of every NaN/inf entry of ``values``.

    :param values: a float, tensor or array, or nested mappings/lists of them (stats
        dicts, ``state_dict()``\\ s of modules and optimizers). Integers, strings and
        other leaves count as finite.
    """
    found = []
    for name, leaf in _entries(values, ""):
        description = _describe(leaf)
        if description is not None:
            found.append(f"{name} {description}" if name else description)
    return found


def _summary(found: list[str]) -> str:
    named = ", ".join(found[:NAMED_IN_MESSAGE])
    more = len(found) - NAMED_IN_MESSAGE
    return f"{named} (and {more} more)" if more > 0 else named


def check_values(values: Any, *, step: int, hint: str, context: str = "") -> None:
    """Raise :class:`NonFiniteError` if ``values`` (e.g. a stats dict) has a NaN/inf entry.

    :param values: as for :func:`non_finite_entries`.
    :param step: environment step, for the message.
    :param hint: what the user can change, for the message.
    :param context: whose values they are (a behavior name), for the message.
    """
    found = non_finite_entries(values)
    if found:
        raise NonFiniteError(_summary(found), step, hint, context)


def state_of(modules: Mapping[str, Any]) -> dict[str, Any]:
    """``name -> state_dict()`` of modules and optimizers (anything with ``state_dict``),
    as mlagents' model saver writes them."""
    return {name: module.state_dict() for name, module in modules.items()}


def check_state(state: Mapping[str, Any], *, step: int, hint: str, context: str = "") -> None:
    """Raise :class:`NonFiniteError` if a parameter, buffer or optimizer moment in
    ``state`` (name -> ``state_dict()``, see :func:`state_of`) is NaN or infinite."""
    found = non_finite_entries(state)
    if found:
        raise NonFiniteError("non-finite model state " + _summary(found), step, hint, context)
