"""Which mlagents release a slow test runs against.

A plugin's suite runs against every supported mlagents release (the nox matrix); long
end-to-end runs whose outcome does not depend on the release (a learning curve, random kills
and resumes) need only run once, against the newest. ``MLA_ALL_RELEASES=1`` runs them
against any release.
"""

from __future__ import annotations

import importlib.metadata
import os

import pytest

#: The newest mlagents release the matrix supports (noxfile's ``MLAGENTS_RELEASES``).
NEWEST_MLAGENTS = "1.1.0"
#: Set to ``1`` to run :data:`newest_mlagents_only` tests against any release.
ALL_RELEASES_VARIABLE = "MLA_ALL_RELEASES"


def on_newest_mlagents() -> bool:
    """Whether the installed mlagents is :data:`NEWEST_MLAGENTS` (or all releases are asked)."""
    return (
        os.environ.get(ALL_RELEASES_VARIABLE) == "1"
        or importlib.metadata.version("mlagents") == NEWEST_MLAGENTS
    )


#: Marks a slow, release-independent test: it runs against the newest mlagents only.
newest_mlagents_only = pytest.mark.skipif(
    not on_newest_mlagents(),
    reason=f"a slow run that does not depend on the release: against mlagents "
    f"{NEWEST_MLAGENTS} only ({ALL_RELEASES_VARIABLE}=1 runs it here)",
)
