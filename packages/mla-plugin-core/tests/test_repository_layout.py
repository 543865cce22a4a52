"""Every package's tests can be collected together: ``pytest packages/*/tests`` in one process.

As in the packages ``mla-plugin new`` generates: no ``tests/__init__.py`` (which would make
every suite the package ``tests``) and module names unique across the repository (pytest
imports each test module by its file name).
"""

from collections import Counter
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[2]
SUITES = sorted(PACKAGES.glob("*/tests"))


@pytest.mark.skipif(len(SUITES) < 2, reason="not in the repository")
def test_test_folders_are_no_packages_and_module_names_are_unique():
    assert [str(s) for s in SUITES if (s / "__init__.py").exists()] == []
    names = Counter(path.name for suite in SUITES for path in suite.glob("*.py"))
    assert [name for name, n in names.items() if n > 1 and name != "conftest.py"] == []
