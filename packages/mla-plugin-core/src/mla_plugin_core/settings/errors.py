"""The one format of a refused setting, and the checks of a YAML value's type.

Every setting a trainer YAML gets wrong is refused with one line (printed by
:mod:`.config_errors` after ``mlagents-learn: configuration error:``)::

    Basic: hyperparameters.batch_size = 64.5 is not allowed: must be an integer >= 1
    Basic: network_settings.hidden_units = 0 is not allowed: must be an integer >= 1
    Basic: reward_signals.extrinsic.gamma = 1.5 is not allowed: must be a number > 0.0 and <= 1.0
    Basic: hyperparameters.learning_rat is not a setting of dqn: did you mean learning_rate?
    allowed: batch_size, buffer_size, ...

The path is the YAML path below the behavior. While :mod:`.config_errors` structures a
behavior it records where it is (:func:`structuring`); an error created meanwhile takes
its behavior name and path from there, so an attrs validator that only knows its own
field name (``HyperparameterError("batch_size", ...)``) still names
``Basic: hyperparameters.demonstrations.batch_size``. Outside any structuring (a settings
class built in Python) the path is ``hyperparameters.<key>``.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
import math
import typing
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import attr
from mlagents.trainers.exception import TrainerConfigError


@attr.s(auto_attribs=True, frozen=True)
class Where:
    """The place in a trainer YAML being structured."""

    #: The behavior's name (``behaviors.<name>``), ``None`` outside one.
    behavior: str | None = None
    #: Its ``trainer_type``, once known.
    trainer_type: str | None = None
    #: The YAML path below the behavior, e.g. ``("network_settings", "memory")``.
    path: tuple[str, ...] = ()


_WHERE: ContextVar[Where | None] = ContextVar("mla_plugin_core_where", default=None)


def where() -> Where | None:
    """Where the structuring is now; ``None`` outside it."""
    return _WHERE.get()


@contextlib.contextmanager
def structuring(
    *keys: str, behavior: str | None = None, trainer_type: str | None = None
) -> Iterator[Where]:
    """Record that the YAML below ``keys`` (of ``behavior``) is being structured.

    :param keys: appended to the current path.
    :param behavior: starts a behavior (the path restarts at its top).
    :param trainer_type: the behavior's trainer type, for unknown-key messages.
    """
    outer = _WHERE.get() or Where()
    if behavior is not None:
        outer = Where(behavior=behavior)
    inner = Where(
        behavior=outer.behavior,
        trainer_type=trainer_type if trainer_type is not None else outer.trainer_type,
        path=outer.path + tuple(str(k) for k in keys),
    )
    token = _WHERE.set(inner)
    try:
        yield inner
    finally:
        _WHERE.reset(token)


def _prefix(behavior: str | None) -> str:
    return f"{behavior}: " if behavior else ""


class SettingError(TrainerConfigError):
    """A setting of a trainer YAML has a value that is not allowed.

    ``str()`` is ``<behavior>: <path> = <value!r> is not allowed: <allowed>``.

    :param path: the YAML path below the behavior, e.g. ``("network_settings", "hidden_units")``.
    :param value: the value as written (or as structured).
    :param allowed: what is allowed, e.g. ``must be an integer >= 1``.
    :param behavior: the behavior's name; by default the one being structured, if any.
    """

    def __init__(
        self, path: Sequence[str], value: Any, allowed: str, *, behavior: str | None = None
    ) -> None:
        current = where()
        self.path = tuple(path)
        self.value = value
        self.allowed = allowed
        self.behavior = behavior if behavior is not None else getattr(current, "behavior", None)
        super().__init__(
            f"{_prefix(self.behavior)}{'.'.join(self.path)} = {value!r} is not allowed: {allowed}"
        )

    @property
    def key(self) -> str:
        """The last key of the path (the field's name)."""
        return self.path[-1]


class HyperparameterError(SettingError):
    """A hyperparameter in a trainer YAML has a value outside what is allowed.

    :param key: the field's name; the path is where the structuring is (by default
        ``hyperparameters.<key>``).
    :param value: the value.
    :param allowed: what is allowed.
    :param behavior: the behavior's name, for errors raised after the YAML was read.
    """

    def __init__(self, key: str, value: Any, allowed: str, *, behavior: str | None = None) -> None:
        current = where()
        path = current.path if current is not None and current.path else ("hyperparameters",)
        super().__init__((*path, key), value, allowed, behavior=behavior)


def refusal(key: str, value: Any, allowed: str) -> SettingError:
    """The error for ``key`` at the current place of the structuring: a
    :class:`HyperparameterError` inside ``hyperparameters``, else a :class:`SettingError`."""
    current = where() or Where()
    if current.path[:1] == ("hyperparameters",):
        return HyperparameterError(key, value, allowed)
    return SettingError((*current.path, key), value, allowed)


def did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    """The choice closest to a misspelt ``word`` (difflib's ratio >= 0.6), or ``None``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return close[0] if close else None


def unknown_key_message(word: str, allowed: Sequence[str]) -> str:
    """``did you mean X? allowed: a, b, c`` (without the suggestion when none is close)."""
    guess = did_you_mean(word, allowed)
    listed = ", ".join(sorted(str(a) for a in allowed))
    return (f"did you mean {guess}? " if guess else "") + f"allowed: {listed}"


class UnknownSettingError(TrainerConfigError):
    """A key of a trainer YAML that is not a setting where it stands.

    ``str()`` is ``<behavior>: <path> is not a setting of <owner>: did you mean <key>?
    allowed: <keys>``.

    :param path: the YAML path of the unknown key.
    :param owner: the block it stands in (``dqn`` for a trainer's hyperparameters); empty
        to leave out `` of <owner>``.
    :param allowed: the keys allowed there.
    :param noun: what the key is not, ``a setting`` or e.g. ``a reward signal``.
    :param belongs: where the key is a setting instead (``the behavior``, for ``max_steps``
        written under ``hyperparameters``): said in place of a close spelling, which would
        mislead (``max_steps`` is not a misspelt ``n_step``).
    """

    def __init__(
        self, path: Sequence[str], owner: str, allowed: Sequence[str], *,
        noun: str = "a setting", belongs: str | None = None,
    ) -> None:  # fmt: skip
        self.path = tuple(path)
        self.owner = owner
        self.allowed = tuple(allowed)
        self.behavior = getattr(where(), "behavior", None)
        message = (
            f"{self.path[-1]} is a setting of {belongs}: move it there"
            if belongs
            else unknown_key_message(self.path[-1], self.allowed)
        )
        of = f" of {owner}" if owner else ""
        super().__init__(
            f"{_prefix(self.behavior)}{'.'.join(self.path)} is not {noun}{of}: {message}"
        )


class Refused(ValueError):
    """A value does not have the type it must have; ``str()`` says what is allowed."""


def describe_type(type_: Any) -> str:
    """What a value of ``type_`` must be, e.g. ``must be an integer``."""
    if type_ is bool or getattr(type_, "__supertype__", None) is bool:
        return "must be true or false"
    if type_ is int:
        return "must be an integer"
    if type_ is float:
        return "must be a finite number"
    if type_ is str:
        return "must be a string"
    if isinstance(type_, type) and issubclass(type_, enum.Enum):
        return "must be one of " + ", ".join(repr(m.value) for m in type_)
    return f"must be a {getattr(type_, '__name__', type_)}"


def _as_number(value: Any) -> float | None:
    """A YAML number (or a numeric string such as PyYAML's ``'3e-4'``) as a float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def check_type(value: Any, type_: Any) -> Any:
    """``value`` if it is of the field type ``type_``, converted as mlagents would; else
    :class:`Refused`.

    Stricter than cattrs, which turns ``"false"`` and ``2`` into ``True`` and ``64.5``
    into ``64``: a bool must be ``true``/``false``; an integer may be written as an
    integral number (``1.0e+6``, or the string ``'1e6'`` PyYAML leaves) but not
    ``64.5``; a float must be a finite number (numeric strings such as ``'3e-4'`` stay
    allowed, as in mlagents); an enum one of its values; a string a string.
    ``Optional[X]`` allows ``None``; other types are left to cattrs.
    """
    origin = typing.get_origin(type_)
    if origin is typing.Union:
        members = [t for t in typing.get_args(type_) if t is not type(None)]
        if value is None:
            return None
        if len(members) == 1:
            return check_type(value, members[0])
        return value
    if type_ is bool or getattr(type_, "__supertype__", None) is bool:
        if not isinstance(value, bool):
            raise Refused(describe_type(type_))
        return value
    if type_ is int:
        number = _as_number(value)
        if number is None or not math.isfinite(number) or number != int(number):
            raise Refused(describe_type(int))
        return int(number)
    if type_ is float:
        number = _as_number(value)
        if number is None or not math.isfinite(number):
            raise Refused(describe_type(float))
        return number
    if type_ is str:
        # A number becomes its text, as mlagents' cattrs makes it (`run_id: 123`, a
        # curriculum lesson `name: 1`); other values are refused.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise Refused(describe_type(str))
        return value
    if isinstance(type_, type) and issubclass(type_, enum.Enum):
        if isinstance(value, type_):
            return value
        values = [m.value for m in type_]
        if value not in values:
            guess = did_you_mean(str(value), [str(v) for v in values])
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise Refused(describe_type(type_) + hint)
        return value
    return value
