"""The iPad + charger model: charge curve, stop at full, top-up pulses, energy, faults."""

from __future__ import annotations

import itertools
import random

import pytest

from simulators.physics import (
    IPAD_9TH_GEN_WH,
    ChargerParams,
    IPad,
    SlotPhysics,
    charging_power_w,
)

QUIET = ChargerParams(noise=0.0)  # noise-free, so curves can be compared exactly


def _slot(soc: float | None, params: ChargerParams = QUIET, **ipad: object) -> SlotPhysics:
    tablet = None if soc is None else IPad("T-1", soc=soc, **ipad)  # type: ignore[arg-type]
    return SlotPhysics(params, tablet)


def _run(slot: SlotPhysics, seconds: float, step_s: float = 60.0,
         rng: random.Random | None = None) -> list[tuple[float, float, bool]]:
    """(soc, power_w, full) after each step."""
    rng = rng or random.Random(0)
    trace = []
    for _ in range(round(seconds / step_s)):
        slot.step(step_s, rng)
        trace.append((slot.ipad.soc if slot.ipad else -1.0, slot.power_w, slot.full))
    return trace


def _minutes_to_full(trace: list[tuple[float, float, bool]]) -> int:
    return next(i for i, (_, _, full) in enumerate(trace) if full)


@pytest.mark.parametrize(
    ("soc", "watts"),
    [
        (0.0, 20.0),
        (0.5, 20.0),
        (0.799, 20.0),
        (0.8, 20.0),  # the taper starts here (hardware.md §2: fast to ~80 %)
        (0.9, 11.25),  # half-way down the straight line from 20 W to 2.5 W
        (0.99, 20.0 - 17.5 * 0.95),
        (1.0, 0.0),  # full: the iPad stops drawing
    ],
)
def test_charging_power_follows_the_curve(soc: float, watts: float) -> None:
    assert charging_power_w(soc, QUIET) == pytest.approx(watts)


def test_power_is_flat_below_80_percent_and_tapers_after() -> None:
    trace = _run(_slot(0.3), 4 * 3600)
    bulk = [p for soc, p, _ in trace if soc < 0.79]
    taper = [p for soc, p, full in trace if soc > 0.81 and not full]
    assert bulk and set(bulk) == {20.0}
    assert len(taper) > 10
    assert all(a > b for a, b in itertools.pairwise(taper))
    assert 2.0 <= min(taper) <= 4.0  # ~2-3 W just before 100 % (hardware.md §2)


def test_charge_stops_at_100_percent_with_only_the_charger_no_load_left() -> None:
    slot = _slot(0.0)
    trace = _run(slot, 5 * 3600)
    hours_to_full = _minutes_to_full(trace) / 60
    # 2.9 h for 32.4 Wh at 20 W; an iPad Pro with 40.88 Wh took 3 h 08 (hardware.md §2).
    assert 2.5 < hours_to_full < 3.3
    assert slot.ipad is not None and slot.ipad.holding
    assert slot.full and not slot.charging
    assert slot.power_w == QUIET.no_load_w <= 0.10  # EU 2019/1782 limit


def test_a_full_ipad_tops_up_after_falling_below_95_percent() -> None:
    slot = _slot(1.0)
    trace = _run(slot, 8 * 24 * 3600)
    charging = [p > QUIET.no_load_w for _, p, _ in trace]
    starts = [i for i in range(1, len(charging)) if charging[i] and not charging[i - 1]]
    # 2 %/day standby drain (hardware.md §2: 1-5 %, GUESS): 60 h from 100 % to 95 %, then a short
    # pulse back to 100 %.
    assert len(starts) == 3
    assert 59.9 <= starts[0] / 60 <= 60.2
    for i in starts:
        soc_at_start, soc_before = trace[i][0], trace[i - 1][0]
        # It starts the moment the charge falls below 95 % (and charges for the rest of the step).
        assert soc_before >= QUIET.resume_below_soc > soc_at_start - 0.005
        assert 2.0 < trace[i][1] < 10.0  # a top-up pulse, not a bulk charge
    pulse_minutes = starts[1] - starts[0] - (60 * 60)
    assert 0 < pulse_minutes < 60
    assert min(soc for soc, _, _ in trace) >= 0.949


def test_energy_drawn_is_the_integral_of_power_and_matches_the_charge_gained() -> None:
    slot = _slot(0.1)
    soc0 = 0.1
    integral = 0.0
    for _ in range(2 * 3600):
        integral += slot.draw_w() / 3600.0
        slot.step(1.0, random.Random(0))
    # The physics integrates exactly (constant, exponential taper); 1 s rectangles come close.
    assert slot.energy_wh == pytest.approx(integral, rel=1e-4)
    assert slot.ipad is not None
    stored = (slot.ipad.soc - soc0) * IPAD_9TH_GEN_WH
    assert stored == pytest.approx(slot.energy_wh * QUIET.efficiency, rel=1e-6)


def test_big_steps_and_small_steps_agree() -> None:
    coarse, fine = _slot(0.2), _slot(0.2)
    coarse.step(3 * 3600, random.Random(0))
    _run(fine, 3 * 3600, step_s=1.0)
    assert coarse.ipad is not None and fine.ipad is not None
    assert coarse.ipad.soc == pytest.approx(fine.ipad.soc, abs=0.01)
    assert coarse.energy_wh == pytest.approx(fine.energy_wh, rel=0.01)


@pytest.mark.parametrize(
    ("soc", "broken", "mains_on", "watts", "charging", "full"),
    [
        (None, False, True, QUIET.no_load_w, False, False),  # empty slot: charger no-load only
        (0.5, True, True, QUIET.no_load_w, False, False),  # broken iPad: present, draws nothing
        (0.5, False, False, 0.0, False, False),  # no mains: nothing at all
        (None, False, False, 0.0, False, False),
        (1.0, False, True, QUIET.no_load_w, False, True),
        (0.5, False, True, 20.0, True, False),
    ],
)
def test_what_a_slot_draws(soc: float | None, broken: bool, mains_on: bool, watts: float,
                           charging: bool, full: bool) -> None:
    slot = _slot(soc, broken=broken) if soc is not None else _slot(None)
    slot.set_mains(mains_on)
    slot.step(600, random.Random(0))
    assert slot.power_w == pytest.approx(watts)
    assert slot.energy_wh == pytest.approx(watts * 600 / 3600)
    assert (slot.charging, slot.full, slot.present) == (charging, full, soc is not None)


def test_removing_the_ipad_drops_the_slot_to_no_load_at_once() -> None:
    slot = _slot(0.4)
    assert slot.power_w == 20.0
    ipad = slot.remove()
    assert ipad.soc == 0.4
    assert slot.power_w == QUIET.no_load_w
    with pytest.raises(ValueError, match="empty"):
        slot.remove()


def test_without_mains_the_ipad_slowly_discharges() -> None:
    slot = _slot(0.6)
    slot.set_mains(False)
    slot.step(10 * 3600, random.Random(0))
    assert slot.ipad is not None
    assert slot.ipad.soc == pytest.approx(0.6 - 10 * QUIET.self_discharge_per_h)
    assert slot.energy_wh == 0.0


def test_mains_returning_restarts_a_holding_ipad_below_full() -> None:
    slot = _slot(1.0)
    slot.set_mains(False)
    slot.step(3600, random.Random(0))
    slot.set_mains(True)
    assert slot.charging


def test_a_worn_battery_takes_less_energy_and_time_to_fill() -> None:
    new, worn = _slot(0.0), _slot(0.0, health=0.75)
    new_trace, worn_trace = _run(new, 5 * 3600), _run(worn, 5 * 3600)
    assert _minutes_to_full(worn_trace) < 0.8 * _minutes_to_full(new_trace)
    assert worn.energy_wh == pytest.approx(0.75 * new.energy_wh, rel=0.05)


def test_measurement_noise_stays_within_its_band() -> None:
    params = ChargerParams(noise=0.01)
    slot = _slot(0.2, params)
    rng = random.Random(7)
    readings = []
    for _ in range(200):
        slot.step(1.0, rng)
        readings.append(slot.power_w)
    assert all(19.8 <= r <= 20.2 for r in readings)
    assert len(set(readings)) > 100  # it really is noisy


def test_same_seed_same_readings_other_seed_other_readings() -> None:
    def readings(seed: int) -> list[float]:
        return [p for _, p, _ in _run(_slot(0.5, ChargerParams()), 3600, rng=random.Random(seed))]

    assert readings(1) == readings(1)
    assert readings(1) != readings(2)


@pytest.mark.parametrize(
    ("field", "value"),
    [("charge_power_w", 0.0), ("taper_start_soc", 1.0), ("taper_end_power_w", 30.0),
     ("no_load_w", -0.1), ("efficiency", 1.5), ("resume_below_soc", 0.0), ("noise", 0.6)],
)
def test_charger_params_are_validated(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        ChargerParams(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value"), [("soc", 1.2), ("soc", -0.1), ("health", 0.0),
                                              ("capacity_wh", 0.0)])
def test_ipad_values_are_validated(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        IPad("T", **{field: value})  # type: ignore[arg-type]


def test_negative_steps_are_refused() -> None:
    with pytest.raises(ValueError, match="dt_s"):
        _slot(0.5).step(-1.0, random.Random(0))
