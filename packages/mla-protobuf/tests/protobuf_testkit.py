"""Shared facts for mla-protobuf's tests: which protobuf is installed, the message modules."""

from __future__ import annotations

import pkgutil

import google.protobuf
import mlagents_envs.communicator_objects as communicator_objects
import pytest

#: protobuf >= 4: the hook builds the old-style modules; below: it must do nothing.
CURRENT_PROTOBUF = int(google.protobuf.__version__.split(".")[0]) >= 4

MESSAGE_MODULES = sorted(
    f"{communicator_objects.__name__}.{info.name}"
    for info in pkgutil.iter_modules(communicator_objects.__path__)
    if info.name.endswith("_pb2")
)

current_only = pytest.mark.skipif(not CURRENT_PROTOBUF, reason="needs protobuf >= 4")
