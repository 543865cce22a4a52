"""mla_plugin_core.settings.errors: did-you-mean, the allowed keys, and the type checks that
refuse what cattrs would bend."""

import math

import pytest
from mlagents.trainers.settings import ScheduleType

from mla_plugin_core.settings import StrictBool
from mla_plugin_core.settings.errors import (
    Refused,
    check_type,
    did_you_mean,
    unknown_key_message,
)


def test_did_you_mean_picks_the_closest_key_or_none():
    keys = ["batch_size", "buffer_size", "learning_rate", "learning_rate_schedule"]
    assert did_you_mean("learning_rat", keys) == "learning_rate"
    assert did_you_mean("bufer_size", keys) == "buffer_size"
    assert did_you_mean("zzz", keys) is None


def test_unknown_key_message_lists_the_allowed_keys_sorted():
    assert unknown_key_message("gama", ["strength", "gamma"]) == (
        "did you mean gamma? allowed: gamma, strength"
    )
    assert unknown_key_message("zzz", ["b", "a"]) == "allowed: a, b"


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        (64, int, 64),
        (64.0, int, 64),
        ("1e6", int, 1_000_000),  # PyYAML leaves 1e6 a string; an integral number is fine
        ("3e-4", float, 3e-4),  # as mlagents reads it
        (1, float, 1.0),
        (True, bool, True),
        (False, StrictBool, False),
        ("linear", ScheduleType, "linear"),
        (None, int | None, None),
        ("x", str, "x"),
        (123, str, "123"),  # `checkpoint_settings: {run_id: 123}`, as cattrs makes it
    ],
)
def test_check_type_accepts_what_mlagents_reads(value, type_, expected):
    assert check_type(value, type_) == expected


@pytest.mark.parametrize(
    ("value", "type_", "allowed"),
    [
        (64.5, int, "must be an integer"),
        ("three", int, "must be an integer"),
        (True, int, "must be an integer"),
        (math.inf, int, "must be an integer"),
        (math.inf, float, "must be a finite number"),
        (math.nan, float, "must be a finite number"),
        ("nan", float, "must be a finite number"),
        ("false", bool, "must be true or false"),
        (2, StrictBool, "must be true or false"),
        ("maybe", bool, "must be true or false"),
        ([5], str, "must be a string"),
        ("linearr", ScheduleType, "must be one of 'constant', 'linear' (did you mean 'linear'?)"),
    ],
)
def test_check_type_refuses_what_cattrs_would_bend(value, type_, allowed):
    with pytest.raises(Refused) as refused:
        check_type(value, type_)
    assert str(refused.value) == allowed
