"""mlagents' own files of a run, written so that a kill cannot truncate them.

When a run ends (``max_steps`` reached, Ctrl+C, an error), ``mlagents-learn`` writes three
files in the ``finally`` of its ``run_training``, each opened straight onto its destination:

- ``<run>/configuration.yaml``, the settings the run used;
- ``<run>/run_logs/timers.json``, its timing tree;
- ``<run>/run_logs/training_status.json``, its checkpoints, lessons and ELO, which the next
  ``--resume`` reads first.

A kill during those writes (a job scheduler's timeout, a second Ctrl+C, a lost node) leaves
an empty or half-written file, and the next ``--resume`` then stops with a ``JSONDecodeError``
traceback from mlagents. :func:`install` replaces the three writes by atomic ones
(a temporary file, renamed when complete; skipped altogether while a ``--resume`` is being
refused, see :mod:`mla_plugin_core.io.resume`), and mlagents' reading of
``training_status.json`` by one that refuses a file it cannot parse in one line, naming the
file and what to do, before anything of the run is written.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from mlagents.trainers.training_status import GlobalTrainingStatus

from mla_plugin_core.io.checkpoint import TRAINING_STATUS_FILE, write_training_status
from mla_plugin_core.io.resume import ResumeError, refusing_resume
from mla_plugin_core.util.atomic_file import atomic_write

#: mlagents' name of the settings file in ``<results>/<run-id>``.
RUN_OPTIONS_FILE = "configuration.yaml"
#: mlagents' name of the timing tree in ``<results>/<run-id>/run_logs``.
TIMERS_FILE = "timers.json"


def write_run_options(output_dir: str, run_options: Any) -> None:
    """``configuration.yaml`` of the run, atomically (mlagents' key order kept)."""
    with atomic_write(os.path.join(output_dir, RUN_OPTIONS_FILE), "w") as file:
        yaml.dump(run_options.as_dict(), file, sort_keys=False)


def write_timing_tree(output_dir: str) -> None:
    """``timers.json`` of the run, atomically."""
    from mlagents_envs.timers import get_timer_tree

    with atomic_write(os.path.join(output_dir, TIMERS_FILE), "w") as file:
        json.dump(get_timer_tree(), file, indent=4)


def write_status(output_dir: str) -> None:
    """``training_status.json`` of the run, atomically."""
    write_training_status(output_dir)


def load_training_status(path: str) -> None:
    """mlagents' reading of ``training_status.json`` on ``--resume``, with an unreadable
    file refused in one line (:class:`ResumeError`) instead of a traceback.

    A missing file is mlagents' business (it warns and resumes without it), as is a file of
    an incompatible mlagents version.
    """
    try:
        with open(path, "rb") as file:
            json.loads(file.read().decode("utf-8"))
    except FileNotFoundError:
        pass
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResumeError(
            f"cannot resume {path}: it is not valid JSON ({_reason(error)}; a run killed while "
            "writing it?): move it away to resume without mlagents' list of checkpoints and "
            "curriculum lessons, or start a new --run-id"
        ) from None
    _ORIGINAL_LOAD(path)


def _reason(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return "empty" if not error.doc.strip() else str(error)
    return "not UTF-8 text"


def _guarded(write: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(write)
    def guarded(*args: Any, **kwargs: Any) -> None:
        if refusing_resume():
            return
        write(*args, **kwargs)

    guarded._mla_wrapped = True  # type: ignore[attr-defined]
    return guarded


#: mlagents' end-of-run writes in ``mlagents.trainers.learn``, and their replacements.
_LEARN_WRITES: dict[str, Callable[..., None]] = {
    "write_run_options": write_run_options,
    "write_timing_tree": write_timing_tree,
    "write_training_status": write_status,
}
_ORIGINAL_LOAD: Callable[[str], None] = GlobalTrainingStatus.load_state


def install(learn_modules: Iterable[Any]) -> None:
    """Replace the writes in each loaded ``mlagents.trainers.learn`` module (the module, and
    ``__main__`` under ``python -m``) and the reading of the status; idempotent."""
    for learn in learn_modules:
        for name, replacement in _LEARN_WRITES.items():
            current = getattr(learn, name, None)
            if current is not None and not getattr(current, "_mla_wrapped", False):
                setattr(learn, name, _guarded(replacement))
    if GlobalTrainingStatus.load_state is _ORIGINAL_LOAD:
        GlobalTrainingStatus.load_state = staticmethod(load_training_status)  # type: ignore[method-assign]


__all__ = [
    "RUN_OPTIONS_FILE",
    "TIMERS_FILE",
    "TRAINING_STATUS_FILE",
    "install",
    "load_training_status",
]
