"""Validated hyperparameter classes for trainer plugins.

mlagents structures the ``hyperparameters:`` block of a trainer YAML with its strict
``strict_to_cls`` (unknown keys are a ``TrainerConfigError``). Our classes are ordinary
``attr.s`` classes on top of mlagents' own :class:`OnPolicyHyperparamSettings` and
:class:`OffPolicyHyperparamSettings`, so that machinery keeps working; what we add are
validators that reject a bad value with a message naming the YAML key and what is allowed::

    @attr.s(auto_attribs=True)
    class MySettings(OffPolicySettings):
        gamma_n: int = hyperparameter(3, ge=1, le=10)

A bad value then stops ``mlagents-learn`` with one line (see :mod:`.config_errors`)::

    mlagents-learn: hyperparameters.gamma_n = 0 is not allowed: must be >= 1 and <= 10

Settings modules must not use ``from __future__ import annotations``: cattrs structures
each YAML value by the field's type object, and postponed annotations turn it into a
string (:func:`~mla_plugin_core.entry_point.make_entry_point` refuses such classes).
"""

import math
from collections.abc import Collection
from typing import Any

import attr
from mlagents.trainers.exception import TrainerConfigError
from mlagents.trainers.settings import (
    OffPolicyHyperparamSettings,
    OnPolicyHyperparamSettings,
)


class HyperparameterError(TrainerConfigError):
    """A hyperparameter in a trainer YAML has a value outside what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"hyperparameters.{key} = {value!r} is not allowed: {allowed}")


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

    def describe(self, finite: bool = False) -> str:
        """What is allowed, e.g. ``must be a number >= 1``; ``finite``: say it must be finite."""
        parts = []
        if self.ge is not None:
            parts.append(f">= {self.ge}")
        if self.gt is not None:
            parts.append(f"> {self.gt}")
        if self.le is not None:
            parts.append(f"<= {self.le}")
        if self.lt is not None:
            parts.append(f"< {self.lt}")
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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HyperparameterError(attribute.name, value, self.describe())
        if not math.isfinite(value):
            raise HyperparameterError(attribute.name, value, self.describe(finite=True))
        if not self.contains(value):
            raise HyperparameterError(attribute.name, value, self.describe())


@attr.s(auto_attribs=True, frozen=True)
class OneOf:
    """attrs validator: the value must be one of ``choices``."""

    choices: Collection[Any]

    def __call__(self, instance: Any, attribute: "attr.Attribute[Any]", value: Any) -> None:
        if value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise HyperparameterError(attribute.name, value, f"must be one of {allowed}")


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
    :param choices: the allowed values, for non-numeric settings.
    """
    validators: list = []
    if any(b is not None for b in (ge, gt, le, lt)):
        validators.append(Bounds(ge=ge, gt=gt, le=le, lt=lt))
    if choices is not None:
        validators.append(OneOf(tuple(choices)))
    return attr.ib(default=default, validator=validators)


def _check_floats_finite(instance: Any) -> None:
    """Every float hyperparameter, bounded or not (mlagents' own too), is finite:
    ``learning_rate: .inf`` would otherwise train on to NaN."""
    for field in attr.fields(type(instance)):
        value = getattr(instance, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise HyperparameterError(field.name, value, "must be a finite number")


def _check_buffer_holds_batch(instance: Any) -> None:
    if instance.buffer_size < instance.batch_size:
        raise HyperparameterError(
            "buffer_size",
            instance.buffer_size,
            f"must be >= batch_size ({instance.batch_size})",
        )


@attr.s(auto_attribs=True)
class OnPolicySettings(OnPolicyHyperparamSettings):
    """Common on-policy hyperparameters, validated.

    :param batch_size: experiences per gradient step (minibatch), > 0.
    :param buffer_size: experiences collected before an update, >= batch_size.
    :param learning_rate: initial optimizer step size, > 0.
    :param learning_rate_schedule: ``constant`` (default) or ``linear`` (to 0 at ``max_steps``).
    :param num_epoch: passes over the buffer per update, >= 1.
    """

    batch_size: int = hyperparameter(1024, ge=1)
    buffer_size: int = hyperparameter(10240, ge=1)
    learning_rate: float = hyperparameter(3.0e-4, gt=0.0)
    num_epoch: int = hyperparameter(3, ge=1)

    def __attrs_post_init__(self) -> None:
        _check_floats_finite(self)
        _check_buffer_holds_batch(self)


@attr.s(auto_attribs=True)
class OffPolicySettings(OffPolicyHyperparamSettings):
    """Common off-policy hyperparameters, validated.

    :param batch_size: transitions per gradient step, > 0.
    :param buffer_size: replay capacity in transitions, >= batch_size.
    :param buffer_init_steps: environment steps collected before the first update, >= 0.
    :param steps_per_update: environment steps per gradient step (all agents count), > 0.
    :param save_replay_buffer: save the replay buffer with each checkpoint for ``--resume``.
    :param reward_signal_steps_per_update: environment steps per reward-signal update, > 0.
    :param n_step: rewards summed before bootstrapping (n-step returns), 1..100; 1 is
        plain one-step TD.
    :param prioritized_replay: sample transitions in proportion to their TD error
        (Schaul et al. 2016, https://arxiv.org/abs/1511.05952) instead of uniformly.
    :param prioritized_replay_alpha: priority exponent in [0, 1]; 0 is uniform. Paper: 0.6.
    :param prioritized_replay_beta: initial importance-sampling exponent in [0, 1], annealed
        linearly to 1. Paper: 0.4.
    :param prioritized_replay_beta_steps: environment steps over which beta reaches 1;
        0 means over the whole run (``max_steps``).
    """

    batch_size: int = hyperparameter(128, ge=1)
    buffer_size: int = hyperparameter(50000, ge=1)
    learning_rate: float = hyperparameter(3.0e-4, gt=0.0)
    buffer_init_steps: int = hyperparameter(0, ge=0)
    steps_per_update: float = hyperparameter(1.0, gt=0.0)
    reward_signal_steps_per_update: float = hyperparameter(4.0, gt=0.0)
    n_step: int = hyperparameter(1, ge=1, le=100)
    prioritized_replay: bool = False
    prioritized_replay_alpha: float = hyperparameter(0.6, ge=0.0, le=1.0)
    prioritized_replay_beta: float = hyperparameter(0.4, ge=0.0, le=1.0)
    prioritized_replay_beta_steps: int = hyperparameter(0, ge=0)

    def __attrs_post_init__(self) -> None:
        _check_floats_finite(self)
        _check_buffer_holds_batch(self)
