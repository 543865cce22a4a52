"""The import paths of mla-plugin-core 0.1 (``_moved``): each gives the module of its new
path, the same object, with a DeprecationWarning at the line of the old import."""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys

import pytest

from mla_plugin_core._moved import MOVED

#: Run in a fresh interpreter (this one imported most old paths already): each old path's
#: import, the module it gives, and the warning it raised.
_IMPORT_EVERY_OLD_PATH = """
import importlib, json, warnings
from mla_plugin_core._moved import MOVED
for old, new in sorted(MOVED.items()):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module("mla_plugin_core." + new)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        exec(f"import mla_plugin_core.{old} as imported")
    moved = [w for w in seen if "moved to" in str(w.message)]
    print(json.dumps([old, imported is module, moved[-1].filename, moved[-1].lineno,
                      str(moved[-1].message)]))
"""


def test_every_old_path_is_the_new_module_with_a_warning():
    """Each import warns, naming both paths, at the importing line (here line 1 of the
    ``exec``), and gives the very module of the new path."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_OLD_PATH], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = {row[0]: row[1:] for row in map(json.loads, result.stdout.splitlines())}
    assert set(found) == set(MOVED)
    for old, new in MOVED.items():
        message = (
            f"mla_plugin_core.{old} moved to mla_plugin_core.{new} in mla-plugin-core 0.2; "
            "the old path goes in 0.3"
        )
        assert found[old] == [True, "<string>", 1, message], (old, found[old])


def test_objects_pickled_under_an_old_path_load():
    """A pickle naming a class by its 0.1 module (as saved state may) loads the same class."""
    from mla_plugin_core.trainers.schedules import ScheduledValue

    value = ScheduledValue("linear", 1.0, 0.1, 100)
    old = pickle.dumps(value, protocol=0).replace(
        b"mla_plugin_core.trainers.schedules", b"mla_plugin_core.schedules"
    )
    assert b"mla_plugin_core.schedules" in old
    with pytest.warns(DeprecationWarning, match="mla_plugin_core.schedules moved"):
        loaded = pickle.loads(old)
    assert loaded == value and type(loaded) is ScheduledValue


def test_an_unknown_old_name_is_still_an_import_error():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("mla_plugin_core.no_such_module")
