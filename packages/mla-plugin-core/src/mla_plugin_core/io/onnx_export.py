"""Keep mlagents' ONNX export working on current torch.

Since torch 2.9, ``torch.onnx.export`` defaults to the dynamo-based exporter, which needs
the ``onnxscript`` package and produces graphs whose input/output names and opset Unity's
inference has not been checked against. mlagents (``model_serialization.py``) calls
``torch.onnx.export`` without choosing, so every run on current torch trains, then fails at
its final export and exits 1. :func:`use_legacy_exporter` makes the TorchScript-based
exporter the default again (``dynamo=False``) unless a caller asks otherwise; on torch
versions without that parameter it does nothing.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch


def use_legacy_exporter() -> None:
    """Default ``torch.onnx.export`` to ``dynamo=False``; idempotent."""
    export = torch.onnx.export
    if getattr(export, "_mla_legacy_default", False):
        return
    try:
        parameters = inspect.signature(export).parameters
    except (TypeError, ValueError):
        return
    if "dynamo" not in parameters:
        return

    @functools.wraps(export)
    def export_legacy_by_default(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("dynamo", False)
        return export(*args, **kwargs)

    export_legacy_by_default._mla_legacy_default = True  # type: ignore[attr-defined]
    torch.onnx.export = export_legacy_by_default
