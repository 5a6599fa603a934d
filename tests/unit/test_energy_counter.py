"""A session's energy from the slot meter's own counter (cabinet_agent/energy.py): across a wrap,
a reset, a replaced meter and missed readings, and whatever the integral of the power says."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cabinet_agent.common.protocol import EnergyMethod
from cabinet_agent.energy import CEILING_W, EnergyCounter, SessionEnergy, counter_step
from tests.support.explore import examples

U32_WH = EnergyCounter(resolution_wh=1.0, wraps_at_wh=float(2**32))  # a PZEM-016
FLOAT_KWH = EnergyCounter(resolution_wh=10.0)  # an SDM120: float kWh, no wrap


@pytest.mark.parametrize(
    ("previous", "current", "elapsed_s", "counter", "expected"),
    [
        (1000.0, 1001.0, 180.0, U32_WH, 1.0),  # 20 W for three minutes
        (1000.0, 1000.0, 1.0, U32_WH, 0.0),  # nothing flowed
        (1000.0, 1001.0, 0.0, U32_WH, 1.0),  # one step at once: within one resolution
        (2**32 - 3.0, 4.0, 2520.0, U32_WH, 7.0),  # wrapped past 4,294,967,295 Wh
        (1000.0, 0.0, 60.0, U32_WH, None),  # reset (PZEM's FC 0x42), or a new meter
        (1000.0, 250_000.0, 60.0, U32_WH, None),  # a used meter put in: more than a socket gives
        (12.5, 12.0, 60.0, FLOAT_KWH, None),  # a float counter never wraps: backwards is a reset
        (0.0, CEILING_W + 10.0, 3600.0, FLOAT_KWH, CEILING_W + 10.0),  # at the ceiling + one step
        (0.0, CEILING_W + 10.5, 3600.0, FLOAT_KWH, None),
    ],
)
def test_a_step_of_the_counter(previous: float, current: float, elapsed_s: float,
                               counter: EnergyCounter, expected: float | None) -> None:
    assert counter_step(previous, current, elapsed_s, counter) == expected


def test_a_counter_with_nonsense_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="resolution_wh"):
        EnergyCounter(resolution_wh=0.0)
    with pytest.raises(ValueError, match="wraps_at_wh"):
        EnergyCounter(resolution_wh=1.0, wraps_at_wh=1.0)


def _quantised(true_wh: float, counter: EnergyCounter) -> float:
    """What a meter shows for ``true_wh``: whole steps, and from 0 again past its wrap."""
    shown = math.floor(true_wh / counter.resolution_wh) * counter.resolution_wh
    return shown % counter.wraps_at_wh if counter.wraps_at_wh is not None else shown


COUNTERS = st.sampled_from([U32_WH, FLOAT_KWH, EnergyCounter(0.1, 6553.6)])  # the last: u16 x 0.1 Wh
STEP_S = 60.0
STEPS = st.lists(st.floats(0.0, 30.0), min_size=1, max_size=240)  # W per step: up to a 30 W slot


@settings(max_examples=examples(200), deadline=None)
@given(counter=COUNTERS, start=st.floats(0.0, 1.0), watts=STEPS,
       integral_factor=st.sampled_from([1.0, 1 / 60, 1 / 3600, 1.05, 3.0]))
def test_the_counter_decides_whatever_the_integral_says(counter: EnergyCounter, start: float,
                                                        watts: list[float],
                                                        integral_factor: float) -> None:
    """From any reading (wraps included), a session is what flowed to within two steps of the
    counter (each reading is off by less than one), even when the integral of the power is 60 or
    3,600 times too small (an agent that takes a simulator's fast clock for the wall clock) or
    three times too large; with a right integral, exactly what flowed."""
    wraps = counter.wraps_at_wh or 1e6
    true = start * wraps  # where the meter's count stands when the session starts
    energy = SessionEnergy(counter)
    previous = _quantised(true, counter)
    drawn = 0.0
    for w in watts:
        step = w * STEP_S / 3600.0
        true += step
        drawn += step
        reading = _quantised(true, counter)
        energy.add(step * integral_factor, previous, reading, STEP_S)
        previous = reading
    assert energy.method is EnergyMethod.COUNTER
    if integral_factor == 1.0:  # a good integral keeps its precision inside the counter's steps
        assert energy.wh == pytest.approx(drawn, abs=1e-6)
    else:  # a wrong one is overruled by the counter's difference (or agrees with it closely)
        assert abs(energy.wh - drawn) <= 2 * counter.resolution_wh + 1e-6, (energy.wh, drawn)


@st.composite
def _troubled_session(draw: st.DrawFn) -> tuple[EnergyCounter, list[float], dict[int, str], float]:
    counter = draw(COUNTERS)
    watts = draw(st.lists(st.floats(0.0, 30.0), min_size=2, max_size=120))
    trouble = draw(st.dictionaries(st.integers(0, len(watts) - 1),
                                   st.sampled_from(["reset", "replaced", "missed"]), max_size=4))
    start = draw(st.floats(0.0, 1.0))
    return counter, watts, trouble, start


@settings(max_examples=examples(200), deadline=None)
@given(session=_troubled_session(), new_reading=st.floats(0.0, 1.0))
def test_a_reset_a_new_meter_or_a_missed_reading_costs_only_its_own_steps(
        session: tuple[EnergyCounter, list[float], dict[int, str], float],
        new_reading: float) -> None:
    """Where the counter cannot say (reset to 0, a replaced meter that had counted elsewhere, no
    reading), that step — and after a missed reading the next — is power integrated over time;
    every other step is the counter's, to within one resolution per unbroken run of them."""
    counter, watts, trouble, start = session
    wraps = counter.wraps_at_wh or 1e6
    shown_at = start * wraps  # the count of the meter now fitted, at the session's start
    energy = SessionEnergy(counter)
    previous: float | None = _quantised(shown_at, counter)
    expected = 0.0
    integrated_steps: set[int] = set()
    for i, w in enumerate(watts):
        step = w * STEP_S / 3600.0
        what = trouble.get(i)
        if what == "reset":
            shown_at = 0.0
        elif what == "replaced":  # a used meter: its own count, far from the old one
            shown_at = new_reading * wraps
        shown_at += step
        reading = None if what == "missed" else _quantised(shown_at, counter)
        if what in ("reset", "replaced") and previous is not None:
            assume(counter_step(previous, reading or 0.0, STEP_S, counter) is None)  # detectable
        if previous is None or reading is None or what in ("reset", "replaced"):
            integrated_steps.add(i)
        expected += step
        energy.add(step * 0.5 if i in integrated_steps else step * 2.0, previous, reading, STEP_S)
        previous = reading
    counted = len(watts) - len(integrated_steps)
    runs = sum(1 for i in range(len(watts))
               if i not in integrated_steps and (i == 0 or i - 1 in integrated_steps))
    # integrated steps at half their energy (a poor integral), counted ones whatever it said
    expected -= sum(watts[i] * STEP_S / 3600.0 * 0.5 for i in integrated_steps)
    assert abs(energy.wh - expected) <= 2 * runs * counter.resolution_wh + 1e-6, (
        energy.wh, expected, trouble)
    assert energy.method is (EnergyMethod.INTEGRATED if counted == 0 else
                             EnergyMethod.MIXED if integrated_steps else EnergyMethod.COUNTER)


def test_without_a_counter_the_integral_is_the_energy() -> None:
    energy = SessionEnergy(None)
    for _ in range(3):
        energy.add(1.5, 100.0, 101.0, 60.0)  # readings of another meter are ignored
    assert energy.wh == 4.5 and energy.method is EnergyMethod.INTEGRATED
