"""Turn configuration mistakes (and a NaN stop) into one clear line instead of a traceback.

mlagents lets a ``TrainerConfigError`` escape as a full traceback, names an unknown key
without a suggestion, and bends what cattrs can convert (``dueling: "false"`` is true,
``batch_size: 64.5`` is 64, ``hidden_units: 0`` trains). :func:`install` fixes that for
every trainer of the run, built-in ones too, before mlagents reads the YAML:

- every behavior is structured with a record of where it is (:mod:`.setting_errors`), so
  each refusal names ``<behavior>: <YAML path> = <value> is not allowed: <what is>``;
- an unknown key anywhere (hyperparameters, network_settings, a reward signal, the
  behavior's top level) gets a did-you-mean and the allowed keys; mlagents' lenient
  classes (``network_settings``, ``memory``, ``self_play``, ``behavioral_cloning``) are
  made strict;
- every value is checked for its type before cattrs sees it
  (:func:`~.setting_errors.check_type`: strict booleans, integral integers, finite
  numbers, enum values), and mlagents' own numeric settings for the ranges they can work
  in (:func:`_limits`: ``hidden_units >= 1``, ``gamma`` in (0, 1], ...);
- an unknown ``trainer_type`` lists the installed ones, with a close one if there is, and
  says where a missing one comes from (a plugin package; mla-plugins name theirs
  ``mla-<trainer_type>``, :func:`distribution_name`);
- once a behavior is structured, its hyperparameters' ``check_in_behavior`` runs the
  checks that need the rest of it (a buffer that cannot fit in memory, :mod:`.memory`);
- an uncaught ``TrainerConfigError`` prints ``mlagents-learn: configuration error:
  <message>`` on stderr and the process exits with status 1, as for any uncaught
  exception; so does the :class:`~mla_plugin_core.util.finite.NonFiniteError` that stops
  training at a NaN or an infinity, as ``mlagents-learn: training stopped: <message>``.

A :class:`ResumeError` (a ``--resume`` whose saved state does not fit) takes the same way
out, and while it unwinds nothing is written: :func:`refusing_resume` tells our trainers'
saves to do nothing, and mlagents' end-of-run writes of ``configuration.yaml``,
``timers.json`` and ``training_status.json`` are skipped (:mod:`.run_files` makes them
atomic, and refuses an unreadable ``training_status.json`` in one line).

It is called by the entry point of every plugin built on this package
(:func:`mla_plugin_core.host.entry_point.make_entry_point`) and by core's own entry point,
which mlagents calls before it reads the YAML.
"""

from __future__ import annotations

import functools
import sys
import typing
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import attr
import cattr
import mlagents.trainers.settings as mla_settings
from mlagents.trainers.exception import TrainerConfigError

from mla_plugin_core.host import run_errors, run_files
from mla_plugin_core.io.resume import ResumeError, refusing_resume  # noqa: F401 (its old home)
from mla_plugin_core.settings import Bounds, bounds_of
from mla_plugin_core.settings.errors import (
    Refused,
    SettingError,
    UnknownSettingError,
    Where,
    check_type,
    describe_type,
    did_you_mean,
    refusal,
    structuring,
    where,
)
from mla_plugin_core.util.finite import NonFiniteError
from mla_plugin_core.util.naming import distribution_name


def _learn_modules() -> list[Any]:
    """``mlagents.trainers.learn`` as loaded: the module, and ``__main__`` under ``python -m``."""
    found = []
    for module in (sys.modules.get("mlagents.trainers.learn"), sys.modules.get("__main__")):
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.name == "mlagents.trainers.learn" and module not in found:
            found.append(module)
    return found


@functools.cache
def _limits() -> dict[type, dict[str, Bounds]]:
    """Ranges of mlagents' own numeric settings outside which a run cannot work (every
    trainer, built-in ones too): class -> field -> Bounds; subclasses inherit them."""
    s = mla_settings
    positive, at_least_1, at_least_0 = Bounds(gt=0.0), Bounds(ge=1), Bounds(ge=0)
    signal = {"learning_rate": positive, "encoding_size": at_least_1}
    return {
        s.NetworkSettings: {"hidden_units": at_least_1, "num_layers": at_least_1},
        s.NetworkSettings.MemorySettings: {"sequence_length": at_least_1},
        s.RewardSignalSettings: {"gamma": Bounds(gt=0.0, le=1.0)},
        s.GAILSettings: signal,
        s.CuriositySettings: signal,
        s.RNDSettings: signal,
        s.HyperparamSettings: dict.fromkeys(("batch_size", "buffer_size"), at_least_1)
        | {"learning_rate": positive},
        s.OnPolicyHyperparamSettings: {"num_epoch": at_least_1},
        s.TrainerSettings: {"keep_checkpoints": at_least_0}
        | dict.fromkeys(("checkpoint_interval", "time_horizon", "summary_freq"), at_least_1),
        s.SelfPlaySettings: dict.fromkeys(
            ("save_steps", "team_change", "swap_steps", "window"), at_least_1
        )
        | {"play_against_latest_model_ratio": Bounds(ge=0.0, le=1.0)},
        s.BehavioralCloningSettings: dict.fromkeys(("steps", "samples_per_update"), at_least_0)
        | dict.fromkeys(("num_epoch", "batch_size"), at_least_1)
        | {"strength": Bounds(ge=0.0)},
    }


#: Classes of mlagents that it structures leniently (unknown keys ignored): made strict.
def _lenient_classes() -> list[type]:
    s = mla_settings
    return [
        s.NetworkSettings,
        s.NetworkSettings.MemorySettings,
        s.SelfPlaySettings,
        s.BehavioralCloningSettings,
    ]


def _bounds(class_type: type, key: str) -> Bounds | None:
    """Our declared bounds of a field, else mlagents' from :func:`_limits`."""
    field = attr.fields_dict(class_type).get(key)
    declared = bounds_of(field) if field is not None else None
    if declared is not None:
        return declared
    limits = _limits()
    return next((limits[c][key] for c in class_type.__mro__ if key in limits.get(c, {})), None)


def _owner(class_type: type) -> str:
    """How an unknown-key message names the block, e.g. ``dqn`` or ``network_settings``."""
    current = where() or Where()
    if issubclass(class_type, mla_settings.HyperparamSettings):
        return current.trainer_type or class_type.__name__
    if not current.path:
        return "a behavior" if class_type is mla_settings.TrainerSettings else class_type.__name__
    return ".".join(current.path)


def _check_value(key: str, value: Any, class_type: type, field: Any) -> Any:
    """``value`` of ``class_type.key`` checked for its type, finiteness and range."""
    bounds = _bounds(class_type, key)
    integer = field.type is int or (
        typing.get_origin(field.type) is typing.Union and int in typing.get_args(field.type)
    )
    try:
        checked = check_type(value, field.type)
    except Refused as refused:
        allowed = str(refused)
        if bounds is not None and allowed in ("must be an integer", "must be a finite number"):
            allowed = bounds.describe(finite=True, integer=integer)
        raise refusal(key, value, allowed) from None
    if (
        bounds is not None
        and isinstance(checked, (int, float))
        and not isinstance(checked, bool)
        and not bounds.contains(checked)
    ):
        raise refusal(key, checked, bounds.describe(integer=integer))
    if class_type is mla_settings.NetworkSettings.MemorySettings and key == "memory_size":
        if not (isinstance(checked, int) and checked >= 2 and checked % 2 == 0):
            raise refusal(key, checked, "must be an even integer >= 2")
    return checked


def _block(class_type: type) -> tuple[str, ...]:
    """``("hyperparameters",)`` for a trainer's hyperparameter class structured at the top
    of a behavior (that block is the only place such classes appear), else ``()``."""
    current = where() or Where()
    if issubclass(class_type, mla_settings.HyperparamSettings) and not current.path:
        return ("hyperparameters",)
    return ()


def _behavior_level(key: str, path: tuple[str, ...]) -> str | None:
    """``"the behavior (beside trainer_type and hyperparameters)"`` when ``key``, written in
    the ``hyperparameters`` block, is a setting of the behavior itself (``max_steps``,
    ``time_horizon``, ...), else ``None``."""
    behavior_keys = attr.fields_dict(mla_settings.TrainerSettings)
    if path == ("hyperparameters",) and key in behavior_keys:
        return "the behavior (beside trainer_type and hyperparameters)"
    return None


def _strict_check_and_structure(original: Any) -> Any:
    def check_and_structure(key: str, value: Any, class_type: type) -> Any:
        fields = attr.fields_dict(class_type)
        with structuring(*_block(class_type)) as here:
            if key not in fields:
                raise UnknownSettingError(
                    (*here.path, key), _owner(class_type), list(fields),
                    belongs=_behavior_level(key, here.path),
                )  # fmt: skip
            checked = _check_value(key, value, class_type, fields[key])
            try:
                with structuring(key):
                    return original(key, checked, class_type)
            except TrainerConfigError:
                raise
            except (ValueError, TypeError, AttributeError, KeyError) as err:
                raise refusal(key, value, describe_type(fields[key].type)) from err

    check_and_structure._mla_wrapped = True  # type: ignore[attr-defined]
    return check_and_structure


def _strict_to_cls(original: Any) -> Any:
    def strict_to_cls(d: Any, t: type) -> Any:
        with structuring(*_block(t)) as here:
            if not isinstance(d, Mapping):
                keys = ", ".join(sorted(attr.fields_dict(t)))
                if here.path:
                    raise SettingError(here.path, d, f"must be a mapping of settings ({keys})")
                raise TrainerConfigError(f"{d!r} is not allowed: must be a mapping of settings")
            return original(d, t)

    strict_to_cls._mla_wrapped = True  # type: ignore[attr-defined]
    return strict_to_cls


def _installed_trainer_types() -> list[str]:
    from mlagents.plugins import all_trainer_types

    return sorted(all_trainer_types)


def trainer_type_message(name: Any, installed: list[str]) -> str:
    """Why ``trainer_type: name`` is refused: the installed types, a close one, and where a
    type that is not installed would come from (core knows no plugin by name: a close
    installed type may be a typo's, or only look like a plugin's, as sac and a2c)."""
    listed = "installed: " + ", ".join(installed)
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        return listed
    package = distribution_name(name)
    guess = did_you_mean(name, installed)
    if guess is not None:
        return (
            f"did you mean {guess}? {listed}; if {name} is a plugin's trainer type, install "
            f"its package (mla-plugins name theirs mla-<trainer_type>: pip install {package})"
        )
    return (
        f"{name} is not installed; {listed}; a trainer type comes with its plugin package, "
        f"which mla-plugins name mla-<trainer_type> (pip install {package})"
    )


def _check_trainer_type(d: Mapping[str, Any]) -> str:
    """The behavior's trainer type, refused with the installed ones if unknown."""
    default = getattr(mla_settings.TrainerSettings, "default_override", None)
    name = d.get("trainer_type", getattr(default, "trainer_type", "ppo"))
    installed = _installed_trainer_types()
    if name not in installed:
        raise SettingError(("trainer_type",), name, trainer_type_message(name, installed))
    return name


def _check_max_steps(d: Mapping[str, Any]) -> None:
    """``max_steps`` as mlagents reads it (``int(float(value))``), refused when that is not
    a whole number >= 0."""
    if "max_steps" not in d:
        return
    try:
        check_type(d["max_steps"], int)
        if int(float(d["max_steps"])) >= 0:
            return
    except Refused:
        pass
    raise SettingError(("max_steps",), d["max_steps"], "must be an integer >= 0")


def _structure_trainer_settings(original: Any) -> Any:
    def structure(d: Any, t: type) -> Any:
        current = where()
        behavior = current.behavior if current is not None else None
        with structuring(behavior=behavior or "default_settings"):
            if not isinstance(d, Mapping):
                raise TrainerConfigError(
                    f"{behavior or 'default_settings'}: {d!r} is not allowed: must be a "
                    "mapping of settings (trainer_type, hyperparameters, ...)"
                )
            trainer_type = _check_trainer_type(d)
            _check_max_steps(d)
            with structuring(trainer_type=trainer_type):
                result = original(d, t)
                check = getattr(result.hyperparameters, "check_in_behavior", None)
                if check is not None:
                    with structuring("hyperparameters"):
                        check(result)
            return result

    structure._mla_wrapped = True  # type: ignore[attr-defined]
    return structure


def _structure_behaviors(d: Any, t: type) -> Any:
    """``behaviors:`` structured one behavior at a time, each error naming its behavior."""
    if not isinstance(d, Mapping):
        raise TrainerConfigError(
            f"behaviors = {d!r} is not allowed: must be a mapping of behavior names to settings"
        )
    result = {}
    for name, settings in d.items():
        with structuring(behavior=str(name)):
            try:
                result[name] = cattr.structure(settings, mla_settings.TrainerSettings)
            except (SettingError, UnknownSettingError):
                raise
            except TrainerConfigError as err:
                if str(err).startswith(f"{name}: "):  # it names the behavior already
                    raise
                raise TrainerConfigError(f"{name}: {err}") from err
    return mla_settings.TrainerSettings.DefaultTrainerDict(result)


def _structure_reward_signals(original: Any) -> Any:
    def structure(d: Any, t: type) -> Any:
        names = [signal.value for signal in mla_settings.RewardSignalType]
        current = where() or Where()
        if not isinstance(d, Mapping):
            raise SettingError(current.path, d, "must be a mapping of reward signals to settings")
        for name in d:
            if name not in names:
                raise UnknownSettingError(
                    (*current.path, str(name)), "", names, noun="a reward signal"
                )
        result = {}
        for name, settings in d.items():
            with structuring(name):
                result.update(original({name: settings}, t))
        return result

    return structure


def _strict_class(d: Any, t: type) -> Any:
    return mla_settings.strict_to_cls(d, t)


def _install_structuring() -> None:
    """Replace mlagents' structuring of a behavior by the checked one (once)."""
    s = mla_settings
    if getattr(s.check_and_structure, "_mla_wrapped", False):
        return
    s.check_and_structure = _strict_check_and_structure(s.check_and_structure)
    s.strict_to_cls = _strict_to_cls(s.strict_to_cls)
    cattr.register_structure_hook(
        s.TrainerSettings, _structure_trainer_settings(s.TrainerSettings.structure)
    )
    cattr.register_structure_hook(s.TrainerSettings.DefaultTrainerDict, _structure_behaviors)
    signals = attr.fields_dict(s.TrainerSettings)["reward_signals"].type  # the Dict type
    cattr.register_structure_hook_func(
        lambda t: t == signals, _structure_reward_signals(s.RewardSignalSettings.structure)
    )
    for lenient in _lenient_classes():
        cattr.register_structure_hook(lenient, _strict_class)


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
    run_files.install(_learn_modules())
    run_errors.install(_learn_modules())
    _install_structuring()
    if not getattr(sys.excepthook, "_mla_wrapped", False):
        sys.excepthook = _excepthook(sys.excepthook)
