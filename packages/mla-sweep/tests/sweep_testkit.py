"""Helpers of mla-sweep's tests: the rule for the slow end-to-end tests."""

import importlib.metadata
import os

#: The end-to-end sweeps run against the newest supported mlagents only (CI budget); the
#: rest of the suite runs against every release. MLA_SWEEP_E2E=1 runs them anyway.
NEWEST_MLAGENTS = "1.1.0"


def e2e_enabled() -> bool:
    return (
        os.environ.get("MLA_SWEEP_E2E") == "1"
        or importlib.metadata.version("mlagents") == NEWEST_MLAGENTS
    )
