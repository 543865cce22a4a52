"""The mla-plugin-core wheel, installed into a fresh venv by the README recipe, passes its tests."""

import pytest
from conftest import ROOT


# The same tests run from source against every release in the tests(mla-plugin-core-*) sessions.
@pytest.mark.latest_only
def test_core_wheel_passes_its_own_tests(make_venv, tmp_path):
    venv = make_venv("mla-plugin-core", "mla-envs", "pytest", "hypothesis")
    where = venv.python("import mla_plugin_core; print(mla_plugin_core.__file__)")
    assert "site-packages" in where.stdout, where.stdout + where.stderr  # the wheel, not the tree
    tests = venv.run(
        "python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
        str(ROOT / "packages" / "mla-plugin-core" / "tests"), cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout
