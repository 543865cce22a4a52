"""Every package's tests can be collected together: ``pytest packages/*/tests`` in one process;
core's tests mirror its source tree.

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
    names = Counter(path.name for suite in SUITES for path in suite.rglob("*.py"))
    assert [name for name, n in names.items() if n > 1 and name != "conftest.py"] == []


def test_core_tests_mirror_its_source_tree():
    """``tests/<layer>/test_<module>.py`` tests ``mla_plugin_core/<layer>/<module>.py`` (or
    the package ``<module>/``); what spans layers stays at the top of ``tests/``."""
    tests = Path(__file__).parent
    source = tests.parent / "src" / "mla_plugin_core"
    if not source.is_dir():
        pytest.skip("not in the repository")
    orphans = []
    for test in sorted(tests.glob("*/test_*.py")):
        layer, module = test.parent.name, test.stem.removeprefix("test_")
        if not ((source / layer / f"{module}.py").exists() or (source / layer / module).is_dir()):
            orphans.append(str(test.relative_to(tests)))
    assert orphans == []
    layers = {p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert {p.name for p in tests.iterdir() if p.is_dir() and p.name != "__pycache__"} <= layers
