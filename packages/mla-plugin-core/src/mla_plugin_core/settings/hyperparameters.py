"""Validated hyperparameter classes for trainer plugins.

mlagents structures the ``hyperparameters:`` block of a trainer YAML with its strict
``strict_to_cls`` (unknown keys are a ``TrainerConfigError``). Our classes are ordinary
``attr.s`` classes on top of mlagents' own :class:`OnPolicyHyperparamSettings` and
:class:`OffPolicyHyperparamSettings`, so that machinery keeps working; what we add are
validators that reject a bad value with a message naming the YAML key and what is allowed.
Each hyperparameter is documented by a ``#:`` comment right above its field (the form
Sphinx autodoc reads; :mod:`mla_plugin_core.testing.hyperparameters` reads it too, and
README tables are checked against it)::

    @attr.s(auto_attribs=True)
    class MySettings(OffPolicySettings):
        #: Rewards summed before bootstrapping, 1..10.
        gamma_n: int = hyperparameter(3, ge=1, le=10)
        #: Use the target network's own max (no double Q-learning).
        plain_max: StrictBool = boolean(False)

On/off hyperparameters are :data:`StrictBool` fields declared with :func:`boolean`: the
YAML must say ``true`` or ``false``. (mlagents' cattrs would turn any value into a bool,
so that ``"false"`` or ``2`` would silently mean true.)

A bad value then stops ``mlagents-learn`` with one line (see :mod:`.config_errors`)::

    mlagents-learn: configuration error: Basic: hyperparameters.gamma_n = 0 is not allowed:
    must be an integer >= 1 and <= 10

Settings modules must not use ``from __future__ import annotations``: cattrs structures
each YAML value by the field's type object, and postponed annotations turn it into a
string (:func:`~mla_plugin_core.host.entry_point.make_entry_point` refuses such classes).
"""

import enum
import functools
import math
import typing
from collections.abc import Collection
from typing import Any, NewType, Optional

import attr
import cattr
from mlagents.trainers.settings import (
    OffPolicyHyperparamSettings,
    OnPolicyHyperparamSettings,
    ScheduleType,
)

from mla_plugin_core.settings.errors import HyperparameterError, did_you_mean
from mla_plugin_core.settings.memory import refuse_lower_bound

__all__ = [
    "Bounds",
    "HyperparameterError",
    "OffPolicySettings",
    "OnPolicySettings",
    "OneOf",
    "StrictBool",
    "boolean",
    "bounds_of",
    "hyperparameter",
]

#: The type of an on/off hyperparameter (declare it with :func:`boolean`). cattrs passes
#: the YAML value through unconverted, so that :func:`boolean`'s validator sees what was
#: written and refuses anything but ``true`` and ``false``.
StrictBool = NewType("StrictBool", bool)
cattr.register_structure_hook_func(lambda cls: cls is StrictBool, lambda value, _: value)


@attr.s(auto_attribs=True, frozen=True)
class Bounds:
    """Inclusive (``ge``/``le``) or exclusive (``gt``/``lt``) numeric bounds.

    Calling an instance is an attrs validator: it raises :class:`HyperparameterError`
    naming the attribute (the YAML key) when the value is not a finite number in range.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def describe(self, finite: bool = False, integer: bool = False) -> str:
        """What is allowed, e.g. ``must be a number >= 1``; ``finite``: say it must be
        finite; ``integer``: say it must be an integer (``must be an integer >= 1``)."""
        parts = []
        if self.ge is not None:
            parts.append(f">= {self.ge}")
        if self.gt is not None:
            parts.append(f"> {self.gt}")
        if self.le is not None:
            parts.append(f"<= {self.le}")
        if self.lt is not None:
            parts.append(f"< {self.lt}")
        if integer:
            prefix = "must be an integer"
        else:
            prefix = "must be a finite number" if finite else "must be a number"
        return f"{prefix} " + " and ".join(parts) if parts else prefix

    def contains(self, value: float) -> bool:
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def __call__(self, instance: Any, attribute: "attr.Attribute[Any]", value: Any) -> None:
        if value is None:
            return
        integer = _is_int_type(attribute.type)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HyperparameterError(attribute.name, value, self.describe(integer=integer))
        if not math.isfinite(value):
            raise HyperparameterError(
                attribute.name, value, self.describe(finite=True, integer=integer)
            )
        if (integer and value != int(value)) or not self.contains(value):
            raise HyperparameterError(attribute.name, value, self.describe(integer=integer))


def _is_int_type(type_: Any) -> bool:
    """``int`` or ``Optional[int]``."""
    if type_ is int:
        return True
    return typing.get_origin(type_) is typing.Union and int in typing.get_args(type_)


def bounds_of(field: "attr.Attribute[Any]") -> Bounds | None:
    """The :class:`Bounds` among a field's validators (declared by :func:`hyperparameter`)."""
    validator = field.validator
    found = getattr(validator, "_validators", (validator,))
    return next((v for v in found if isinstance(v, Bounds)), None)


@attr.s(auto_attribs=True, frozen=True)
class OneOf:
    """attrs validator: the value must be one of ``choices``."""

    choices: Collection[Any]

    def __call__(self, instance: Any, attribute: "attr.Attribute[Any]", value: Any) -> None:
        if value not in self.choices:
            names = [getattr(c, "value", c) for c in self.choices]  # an enum by its values
            allowed = ", ".join(map(repr, names))
            guess = did_you_mean(str(value), [str(name) for name in names])
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise HyperparameterError(attribute.name, value, f"must be one of {allowed}{hint}")


def hyperparameter(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Collection[Any] | None = None,
) -> Any:
    """Declare a validated hyperparameter field (an ``attr.ib``) with its default.

    :param default: value used when the YAML does not set the key.
    :param ge, gt, le, lt: numeric bounds (inclusive / exclusive).
    :param choices: the allowed values, for non-numeric settings. Members of one enum are
        also accepted by their values (``exploration_schedule="constant"``), as in a YAML.
    """
    validators: list = []
    if any(b is not None for b in (ge, gt, le, lt)):
        validators.append(Bounds(ge=ge, gt=gt, le=le, lt=lt))
    converter = None
    if choices is not None:
        choices = tuple(choices)
        validators.append(OneOf(choices))
        kinds = {type(choice) for choice in choices}
        if len(kinds) == 1 and issubclass(enum_type := kinds.pop(), enum.Enum):
            converter = functools.partial(_enum_member, enum_type)
    return attr.ib(default=default, validator=validators, converter=converter)


def _enum_member(enum_type: type[enum.Enum], value: Any) -> Any:
    """``enum_type``'s member of value ``value``; anything else as it is, for the validator
    to name what is allowed."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except (ValueError, TypeError):
        return value


def _is_bool(instance: Any, attribute: "attr.Attribute[Any]", value: Any) -> None:
    """attrs validator: ``True`` or ``False`` only (not ``"false"``, ``1`` or ``"yes"``)."""
    if not isinstance(value, bool):
        raise HyperparameterError(attribute.name, value, "must be true or false")


def boolean(default: bool) -> Any:
    """Declare an on/off hyperparameter field (an ``attr.ib``) of type :data:`StrictBool`.

    :param default: value used when the YAML does not set the key.
    """
    return attr.ib(default=default, validator=_is_bool)


def _check_floats_finite(instance: Any) -> None:
    """Every float hyperparameter, bounded or not (mlagents' own too), is finite:
    ``learning_rate: .inf`` would otherwise train on to NaN."""
    for field in attr.fields(type(instance)):
        value = getattr(instance, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise HyperparameterError(field.name, value, "must be a finite number")


def _signal_names(behavior: Any) -> list[str]:
    """The reward signal names of a structured ``TrainerSettings``."""
    return [getattr(key, "value", str(key)) for key in behavior.reward_signals]


def _check_buffer_holds_batch(instance: Any) -> None:
    if instance.buffer_size < instance.batch_size:
        raise HyperparameterError(
            "buffer_size",
            instance.buffer_size,
            f"must be >= batch_size ({instance.batch_size})",
        )


@attr.s(auto_attribs=True)
class OnPolicySettings(OnPolicyHyperparamSettings):
    """Common on-policy hyperparameters, validated (every key core's on-policy trainer reads)."""

    #: Experiences per gradient step (minibatch), >= 1. Each epoch uses every experience
    #: of the buffer once, the last minibatch taking the remainder.
    batch_size: int = hyperparameter(1024, ge=1)
    #: Experiences collected before an update, >= ``batch_size`` (whole trajectories are
    #: added, so an update can start with a few more).
    buffer_size: int = hyperparameter(10240, ge=1)
    #: Initial optimizer step size, > 0.
    learning_rate: float = hyperparameter(3.0e-4, gt=0.0)
    #: ``constant``, or ``linear`` (decays to ~0 at ``max_steps``).
    learning_rate_schedule: ScheduleType = ScheduleType.CONSTANT
    #: Steps over which ``learning_rate_schedule: linear`` takes the learning rate to ~0,
    #: where it then stays; ``null`` (the default): ``max_steps``, as mlagents does. A run
    #: may then go on past the decay with a policy that gradient steps no longer change.
    learning_rate_decay_steps: Optional[int] = hyperparameter(None, ge=1)  # noqa: UP045
    #: Passes over the buffer per update, >= 1.
    num_epoch: int = hyperparameter(3, ge=1)
    #: GAE lambda in [0, 1] (Schulman et al. 2016, https://arxiv.org/abs/1506.02438);
    #: 1.0 gives Monte-Carlo returns minus the value baseline. 0.95 is mlagents' PPO default.
    lambd: float = hyperparameter(0.95, ge=0.0, le=1.0)
    #: Standardise the advantages (mean 0, std 1) over each update buffer, once before
    #: the update's minibatches, as mlagents' PPO does.
    normalize_advantage: StrictBool = boolean(True)

    def __attrs_post_init__(self) -> None:
        _check_floats_finite(self)
        _check_buffer_holds_batch(self)

    def check_in_behavior(self, behavior: Any) -> None:
        """Checks that need the rest of the behavior's settings (``TrainerSettings``);
        :mod:`.config_errors` calls it once the behavior is structured.

        ``buffer_size`` must be at most ``max_steps``: an update waits for
        ``buffer_size`` experiences, so a larger buffer would never train. Its lower-bound
        size (:mod:`.memory`) must fit in memory.
        """
        if self.buffer_size > behavior.max_steps:
            raise HyperparameterError(
                "buffer_size",
                self.buffer_size,
                f"must be <= max_steps ({behavior.max_steps}): an update waits for "
                "buffer_size experiences, so this run would never update",
            )
        refuse_lower_bound(self.buffer_size, _signal_names(behavior), "the update buffer")


@attr.s(auto_attribs=True)
class OffPolicySettings(OffPolicyHyperparamSettings):
    """Common off-policy hyperparameters, validated (every key core's off-policy trainer reads)."""

    #: Transitions per gradient step, >= 1.
    batch_size: int = hyperparameter(128, ge=1)
    #: Replay capacity in transitions, >= ``batch_size``; once full, the oldest are
    #: overwritten.
    buffer_size: int = hyperparameter(50000, ge=1)
    #: Environment steps collected before the first update, >= 0.
    buffer_init_steps: int = hyperparameter(0, ge=0)
    #: Environment steps (all agents count) per gradient step, > 0.
    steps_per_update: float = hyperparameter(1.0, gt=0.0)
    #: Save the replay buffer with each checkpoint, and reload it on ``--resume``.
    save_replay_buffer: StrictBool = boolean(False)
    #: Environment steps per update of learning reward signals (curiosity, GAIL, RND), > 0.
    reward_signal_steps_per_update: float = hyperparameter(4.0, gt=0.0)
    #: Rewards summed before bootstrapping (n-step returns), 1..100; 1 is plain one-step TD.
    n_step: int = hyperparameter(1, ge=1, le=100)
    #: Sample transitions in proportion to their TD error (Schaul et al. 2016,
    #: https://arxiv.org/abs/1511.05952) instead of uniformly.
    prioritized_replay: StrictBool = boolean(False)
    #: Priority exponent in [0, 1]; 0 is uniform. Paper: 0.6.
    prioritized_replay_alpha: float = hyperparameter(0.6, ge=0.0, le=1.0)
    #: Initial importance-sampling exponent in [0, 1], annealed linearly to 1. Paper: 0.4.
    prioritized_replay_beta: float = hyperparameter(0.4, ge=0.0, le=1.0)
    #: Environment steps over which beta reaches 1, >= 0; 0 means over the whole run
    #: (``max_steps``).
    prioritized_replay_beta_steps: int = hyperparameter(0, ge=0)
    #: Initial optimizer step size, > 0.
    learning_rate: float = hyperparameter(3.0e-4, gt=0.0)
    #: ``constant``, or ``linear`` (decays to ~0 at ``max_steps``).
    learning_rate_schedule: ScheduleType = ScheduleType.CONSTANT
    #: Steps over which ``learning_rate_schedule: linear`` takes the learning rate to ~0,
    #: where it then stays; ``null`` (the default): ``max_steps``, as mlagents does. A run
    #: may then go on past the decay with a policy that gradient steps no longer change.
    learning_rate_decay_steps: Optional[int] = hyperparameter(None, ge=1)  # noqa: UP045

    def __attrs_post_init__(self) -> None:
        _check_floats_finite(self)
        _check_buffer_holds_batch(self)

    def check_in_behavior(self, behavior: Any) -> None:
        """Checks that need the rest of the behavior's settings (``TrainerSettings``);
        :mod:`.config_errors` calls it once the behavior is structured.

        The replay buffer's lower-bound size (:mod:`.memory`: without observations and
        actions, known only once the environment is up) must fit in memory; the exact size
        is checked again when the buffer is created.
        """
        refuse_lower_bound(
            self.buffer_size,
            _signal_names(behavior),
            "the replay buffer",
            bool(self.prioritized_replay),
        )
