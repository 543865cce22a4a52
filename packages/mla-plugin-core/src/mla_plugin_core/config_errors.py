"""Turn configuration mistakes (and a NaN stop) into one clear line instead of a traceback.

``mlagents-learn`` lets a ``TrainerConfigError`` (an unknown YAML key, an invalid trainer
type, one of our :class:`~mla_plugin_core.settings.HyperparameterError`) escape as a full
traceback, and a value of the wrong type (``batch_size: lots``) fails deep inside cattrs
without naming the key. :func:`install` fixes both, for every trainer of the run:

- the value of a key is structured through a wrapper that names the key and the expected
  type when conversion fails;
- an uncaught ``TrainerConfigError`` prints ``mlagents-learn: configuration error:
  <message>`` on stderr and the process exits with status 1, as for any uncaught
  exception;
- so does the :class:`~mla_plugin_core.finite.NonFiniteError` that stops training at a NaN
  or an infinity, as ``mlagents-learn: training stopped: <message>``.

A :class:`ResumeError` (a ``--resume`` whose saved state does not fit) takes the same way
out, and while it unwinds nothing is written: :func:`refusing_resume` tells our trainers'
saves to do nothing, and mlagents' end-of-run writes of ``configuration.yaml``,
``timers.json`` and ``training_status.json`` are skipped.

It is called by the entry point of every plugin built on this package
(:func:`mla_plugin_core.entry_point.make_entry_point`), which mlagents calls before it reads
the YAML.
"""

from __future__ import annotations

import functools
import sys
from types import TracebackType
from typing import Any

import mlagents.trainers.settings as mla_settings
from mlagents.trainers.exception import TrainerConfigError

from mla_plugin_core import run_errors
from mla_plugin_core.finite import NonFiniteError


class ResumeError(TrainerConfigError):
    """``--resume`` cannot continue from what is on disk; nothing was written.

    The message is one line: ``cannot resume <file>: <what differs>; <what to do>``.
    """


def refusing_resume() -> bool:
    """Whether a :class:`ResumeError` is unwinding the stack (so nothing may be saved).

    True inside the ``finally`` blocks that mlagents runs on the way out (its end-of-run
    save of every trainer, its bookkeeping files).
    """
    return isinstance(sys.exc_info()[1], ResumeError)


def _skipped_when_refusing_resume(write: Any) -> Any:
    @functools.wraps(write)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if refusing_resume():
            return None
        return write(*args, **kwargs)

    guarded._mla_wrapped = True  # type: ignore[attr-defined]
    return guarded


#: mlagents' end-of-run writes (``mlagents.trainers.learn``), skipped after a ResumeError.
_LEARN_WRITES = ("write_run_options", "write_timing_tree", "write_training_status")


def _learn_modules() -> list[Any]:
    """``mlagents.trainers.learn`` as loaded: the module, and ``__main__`` under ``python -m``."""
    found = []
    for module in (sys.modules.get("mlagents.trainers.learn"), sys.modules.get("__main__")):
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name == "mlagents.trainers.learn" and module not in found:
            found.append(module)
    return found


def _structure_naming_the_key(original: Any) -> Any:
    def check_and_structure(key: str, value: Any, class_type: type) -> Any:
        try:
            return original(key, value, class_type)
        except TrainerConfigError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            expected = getattr(mla_settings.attr.fields_dict(class_type).get(key), "type", None)
            name = getattr(expected, "__name__", str(expected))
            raise TrainerConfigError(
                f"{class_type.__name__}.{key} = {value!r} is not allowed: expected {name} ({err})"
            ) from err

    check_and_structure._mla_wrapped = True  # type: ignore[attr-defined]
    return check_and_structure


def _excepthook(
    previous: Any,
) -> Any:
    def hook(
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, (TrainerConfigError, NonFiniteError, run_errors.RunError)):
            if isinstance(exc, (ResumeError, run_errors.RunError)):
                kind = ""
            elif isinstance(exc, TrainerConfigError):
                kind = "configuration error: "
            else:
                kind = "training stopped: "
            print(f"mlagents-learn: {kind}{exc}", file=sys.stderr)
            sys.stderr.flush()
            return
        previous(exc_type, exc, tb)

    hook._mla_wrapped = True  # type: ignore[attr-defined]
    return hook


def install() -> None:
    """Install the fixes; calling it again does nothing."""
    for learn in _learn_modules():
        for name in _LEARN_WRITES:
            write = getattr(learn, name, None)
            if write is not None and not getattr(write, "_mla_wrapped", False):
                setattr(learn, name, _skipped_when_refusing_resume(write))
    run_errors.install(_learn_modules())
    if not getattr(mla_settings.check_and_structure, "_mla_wrapped", False):
        mla_settings.check_and_structure = _structure_naming_the_key(
            mla_settings.check_and_structure
        )
    if not getattr(sys.excepthook, "_mla_wrapped", False):
        sys.excepthook = _excepthook(sys.excepthook)
