import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlagents.trainers.settings import ScheduleType

from mla_plugin_core.trainers.schedules import Schedule, scheduled_value


def test_constant_ignores_step():
    assert scheduled_value("constant", 0.3, 0.0, 10_000, 100) == 0.3


def test_linear_hand_values():
    assert scheduled_value(Schedule.LINEAR, 1.0, 0.1, 0, 100) == 1.0
    assert scheduled_value(Schedule.LINEAR, 1.0, 0.1, 50, 100) == pytest.approx(0.55)
    assert scheduled_value(Schedule.LINEAR, 1.0, 0.1, 100, 100) == pytest.approx(0.1)
    assert scheduled_value(Schedule.LINEAR, 1.0, 0.1, 10**9, 100) == pytest.approx(0.1)


def test_mlagents_schedule_type_is_accepted():
    assert scheduled_value(ScheduleType.LINEAR, 2.0, 0.0, 25, 100) == pytest.approx(1.5)


def test_exponential_is_geometric():
    assert scheduled_value("exponential", 1.0, 0.01, 50, 100) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="initial and final > 0"):
        scheduled_value("exponential", 1.0, 0.0, 50, 100)


@given(
    kind=st.sampled_from(["linear", "exponential"]),
    initial=st.floats(0.01, 10),
    final=st.floats(0.01, 10),
    total=st.integers(1, 10_000),
    a=st.integers(0, 20_000),
    b=st.integers(0, 20_000),
)
def test_monotone_and_bounded(kind, initial, final, total, a, b):
    lo, hi = sorted((a, b))
    v_lo = scheduled_value(kind, initial, final, lo, total)
    v_hi = scheduled_value(kind, initial, final, hi, total)
    assert min(initial, final) - 1e-9 <= v_lo <= max(initial, final) + 1e-9
    direction = math.copysign(1.0, final - initial)
    assert direction * (v_hi - v_lo) >= -1e-9


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="cosine"):
        scheduled_value("cosine", 1.0, 0.0, 1, 10)
