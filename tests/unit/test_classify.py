"""Slot states from power, as timelines: at t push this reading, expect that state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cabinet_agent.classify import CabinetClassifier, SlotClassifier
from cabinet_agent.common.protocol import (
    Certainty,
    DeviceHealth,
    DoorState,
    EventKind,
    MainsState,
    SessionEnd,
    SlotState,
)
from cabinet_agent.poller import CabinetReading
from cabinet_agent.thresholds import Thresholds
from cabinet_agent.windows import ChargingWindows

T0 = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
ON = MainsState.ON
E, C, F, U, P, X = (SlotState.EMPTY, SlotState.CHARGING, SlotState.CHARGED, SlotState.UNKNOWN,
                    SlotState.PRESENT_IDLE, SlotState.FAULT)


def _run(powers: list[float | None], step_s: float = 1.0, **kwargs: object) -> list[SlotState]:
    slot = SlotClassifier(1, Thresholds())
    states = []
    for i, power in enumerate(powers):
        slot.update(power, T0 + timedelta(seconds=i * step_s), **kwargs)  # type: ignore[arg-type]
        states.append(slot.state)
    return states


@pytest.mark.parametrize(
    ("powers", "expected"),
    [
        # idle since start: empty or full, the hardware cannot tell
        ([0.05, 0.05], [U, U]),
        # inserted, charges, pulled out while drawing 18 W -> empty
        ([0.05, 18.0, 18.0, 0.05], [U, C, C, E]),
        # charges, tapers to 2.5 W, stops -> charged
        ([18.0, 9.0, 4.0, 2.5, 0.05], [C, C, C, C, F]),
        # a charged iPad tops up with a 7 W pulse: stays charged, during and after
        ([18.0, 2.5, 0.05, 7.0, 3.0, 0.05], [C, C, F, F, F, F]),
        # a large draw after charged is a new iPad: charging
        ([18.0, 2.5, 0.0, 15.0], [C, C, F, C]),
        # inside the hysteresis band nothing flips
        ([18.0, 0.7, 0.8, 0.6], [C, C, C, C]),
        # a missing reading is unknown, never 0 and never the last value
        ([18.0, None, 18.0], [C, U, C]),
        # empty stays empty at no-load
        ([18.0, 0.0, 0.1, 0.05], [C, E, E, E]),
        # above the slot's rating: a fault, which clears when the draw is normal again
        ([18.0, 45.0, 18.0], [C, X, C]),
    ],
)
def test_slot_timeline(powers: list[float | None], expected: list[SlotState]) -> None:
    assert _run(powers) == expected


def test_without_supply_the_state_is_held_and_a_drop_is_no_removal() -> None:
    slot = SlotClassifier(1, Thresholds())
    slot.update(18.0, T0)
    changes = slot.update(0.0, T0 + timedelta(seconds=1), supplied=False)
    assert slot.state is C
    assert [(c.kind, c.new) for c in changes] == [(EventKind.SESSION_ENDED, "power_cut")]
    # Power back and the slot draws: charging again, a new session.
    slot.update(17.0, T0 + timedelta(seconds=2))
    assert slot.state is C and slot.session.active


def test_supply_back_and_idle_after_charging_is_unknown() -> None:
    slot = SlotClassifier(1, Thresholds())
    slot.update(18.0, T0)
    slot.update(0.0, T0 + timedelta(seconds=1), supplied=False)
    slot.update(0.05, T0 + timedelta(seconds=2))
    assert slot.state is U  # taken out while off, or charged: cannot tell


@pytest.mark.parametrize(("before", "after", "certainty"),
                         [([18.0, 0.0], E, Certainty.CERTAIN), ([18.0, 2.0, 0.05], F, Certainty.PROBABLE)],
                         ids=["empty stays empty", "charged may be taken unseen"])
def test_an_open_door_makes_charged_idle_slots_probable(before: list[float], after: SlotState,
                                                        certainty: Certainty) -> None:
    slot = SlotClassifier(1, Thresholds())
    for i, power in enumerate(before):
        slot.update(power, T0 + timedelta(seconds=i))
    assert slot.state in (E, F) and slot.certainty is Certainty.CERTAIN
    slot.update(0.05, T0 + timedelta(seconds=10), door_open=True)
    assert (slot.state, slot.certainty) == (after, certainty)
    assert slot.snapshot().unseen_since == (T0 + timedelta(seconds=10) if after is F else None)


def test_an_open_door_leaves_charging_slots_alone() -> None:
    slot = SlotClassifier(1, Thresholds())
    slot.update(18.0, T0)
    slot.update(18.0, T0 + timedelta(seconds=1), door_open=True)
    assert slot.state is C


def test_a_pulse_from_unknown_is_a_full_ipad_topping_up() -> None:
    assert _run([0.05, 7.0, 0.05]) == [U, F, F]
    assert _run([0.05, 15.0]) == [U, C]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # presence input: put in and drawing nothing -> present but idle (full, or not plugged in)
        ([(0.05, True)], [P]),
        ([(0.05, False)], [E]),
        # taken out while charged: the presence input knows
        ([(18.0, True), (2.0, True), (0.05, True), (0.05, False)], [C, C, F, E]),
        # abrupt stop while still present: unplugged or the charger died
        ([(18.0, True), (0.05, True)], [C, P]),
        # door cycles do not matter when presence is measured
        ([(18.0, True), (2.0, True), (0.05, True)], [C, C, F]),
        # a present idle iPad that tops up was full
        ([(0.05, True), (5.0, True), (0.05, True)], [P, F, F]),
    ],
)
def test_presence_inputs_decide(steps: list[tuple[float, bool]], expected: list[SlotState]) -> None:
    slot = SlotClassifier(1, Thresholds())
    states = []
    for i, (power, present) in enumerate(steps):
        slot.update(power, T0 + timedelta(seconds=i), presence=present, door_open=True)
        states.append(slot.state)
    assert states == expected


def test_since_moves_only_on_change() -> None:
    slot = SlotClassifier(1, Thresholds())
    slot.update(18.0, T0)
    slot.update(17.0, T0 + timedelta(seconds=5))
    assert slot.snapshot().since == T0
    slot.update(0.0, T0 + timedelta(seconds=9))
    assert slot.snapshot().since == T0 + timedelta(seconds=9)
    assert slot.snapshot().state is E


def test_charging_too_long_is_a_fault() -> None:
    t = Thresholds(max_charge_s=3600)
    slot = SlotClassifier(1, t)
    slot.update(18.0, T0)
    slot.update(18.0, T0 + timedelta(seconds=3599))
    assert slot.state is C
    changes = slot.update(18.0, T0 + timedelta(seconds=3601))
    assert slot.state is X and slot.fault == "too_long"
    assert [(c.kind, c.old, c.new, c.detail) for c in changes] == [
        (EventKind.SLOT_CHANGED, "charging", "fault", "too_long")]


def test_a_charged_ipad_that_never_tops_up_is_a_fault() -> None:
    t = Thresholds(no_topup_s=86400)
    slot = SlotClassifier(1, t)
    slot.update(18.0, T0)
    slot.update(2.0, T0 + timedelta(hours=2))
    slot.update(0.05, T0 + timedelta(hours=3))
    slot.update(0.05, T0 + timedelta(hours=20))
    assert slot.state is F
    slot.update(0.05, T0 + timedelta(hours=28))
    assert (slot.state, slot.fault) == (X, "no_topup")
    slot.update(5.0, T0 + timedelta(hours=29))  # the pulse finally comes
    assert slot.state is F


def test_sessions_integrate_energy_and_say_how_they_ended() -> None:
    slot = SlotClassifier(1, Thresholds())
    slot.update(0.05, T0)
    sessions = []
    # 20 W for an hour, then an abrupt removal
    for minute in range(1, 62):
        power = 20.0 if minute <= 60 else 0.05
        sessions += [c.session for c in slot.update(power, T0 + timedelta(minutes=minute)) if c.session]
    assert len(sessions) == 1
    session = sessions[0]
    assert session.end is SessionEnd.REMOVED
    assert session.asset_tag is None  # the server's inventory names the iPad, not the agent
    # Seen first at minute 1 after an idle poll at minute 0: it began midway, at 0:30.
    assert session.started_at == T0 + timedelta(seconds=30)
    assert session.energy_wh == pytest.approx(20.0 * 59.5 / 60 + (20.0 + 0.05) / 2 / 60, rel=1e-3)
    assert session.peak_w == 20.0
    assert session.duration_s == 60.5 * 60
    assert session.taper_wh is None


def _reading(power: tuple[float | None, ...], door: DoorState = DoorState.CLOSED,
             devices: tuple[DeviceHealth, ...] = (), mains: MainsState = ON) -> CabinetReading:
    return CabinetReading(power, door, mains, 21.0, devices, 0.01)


def test_cabinet_reports_each_change_once_with_the_door_attached() -> None:
    cabinet = CabinetClassifier(2)
    ok = (DeviceHealth(name="meter", ok=True),)
    first = cabinet.update(_reading((18.0, 0.0), devices=ok), T0)
    assert {(c.kind, c.slot, c.new) for c in first} >= {(EventKind.SLOT_CHANGED, 1, "charging"),
                                                        (EventKind.DOOR_CHANGED, None, "closed")}
    assert cabinet.update(_reading((18.0, 0.0), devices=ok), T0) == []
    changes = cabinet.update(_reading((0.0, 0.0), DoorState.OPEN, ok), T0 + timedelta(seconds=1))
    assert [(c.kind, c.slot, c.old, c.new, c.door) for c in changes if c.kind != EventKind.SESSION_ENDED] == [
        (EventKind.DOOR_CHANGED, None, "closed", "open", None),
        (EventKind.SLOT_CHANGED, 1, "charging", "empty", DoorState.OPEN),
    ]


def test_opening_the_door_makes_charged_idle_slots_probable_at_cabinet_level() -> None:
    cabinet = CabinetClassifier(3)
    cabinet.update(_reading((18.0, 18.0, 18.0)), T0)
    cabinet.update(_reading((2.0, 18.0, 0.0)), T0 + timedelta(seconds=1))
    cabinet.update(_reading((0.05, 18.0, 0.0)), T0 + timedelta(seconds=2))
    assert cabinet.states() == [F, C, E]
    assert not cabinet.evidence_changed or cabinet.certainties() == [Certainty.CERTAIN] * 3
    changes = cabinet.update(_reading((0.05, 18.0, 0.0), DoorState.OPEN), T0 + timedelta(seconds=3))
    assert cabinet.states() == [F, C, E]
    assert cabinet.certainties() == [Certainty.PROBABLE, Certainty.CERTAIN, Certainty.CERTAIN]
    assert [c.kind for c in changes] == [EventKind.DOOR_CHANGED]  # no slot event, but a new state
    assert cabinet.evidence_changed
    cabinet.update(_reading((0.05, 18.0, 0.0), DoorState.CLOSED), T0 + timedelta(seconds=4))
    assert cabinet.states() == [F, C, E]
    assert cabinet.snapshots()[0].unseen_since == T0 + timedelta(seconds=3)


def test_a_frozen_reading_while_others_move_is_a_fault() -> None:
    cabinet = CabinetClassifier(2, Thresholds(frozen_polls=5))
    for i in range(5):
        cabinet.update(_reading((15.0, 15.0 + i * 0.1)), T0 + timedelta(seconds=i))
    assert cabinet.states() == [C, C]
    changes = cabinet.update(_reading((15.0, 15.6)), T0 + timedelta(seconds=6))
    assert cabinet.states() == [X, C]
    assert [(c.slot, c.new, c.detail) for c in changes] == [(1, "fault", "frozen")]
    cabinet.update(_reading((15.1, 15.7)), T0 + timedelta(seconds=7))
    assert cabinet.states() == [C, C]


def test_no_not_charging_outside_the_charging_window() -> None:
    night = ChargingWindows.parse(["22:00-06:00"], "UTC")
    cabinet = CabinetClassifier(1, windows=night)
    cabinet.update(_reading((18.0,)), datetime(2026, 11, 30, 5, 58, tzinfo=UTC))
    changes = cabinet.update(_reading((0.0,)), datetime(2026, 11, 30, 6, 1, tzinfo=UTC))
    assert cabinet.states() == [C]  # the window closed: the drop is no removal
    assert [c.new for c in changes if c.kind is EventKind.SESSION_ENDED] == ["power_cut"]


def test_mains_off_holds_states() -> None:
    cabinet = CabinetClassifier(1)
    cabinet.update(_reading((18.0,)), T0)
    changes = cabinet.update(_reading((0.0,), mains=MainsState.OFF), T0 + timedelta(seconds=1))
    assert cabinet.states() == [C]
    assert (EventKind.MAINS_CHANGED, "on", "off") in [(c.kind, c.old, c.new) for c in changes]


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        Thresholds(idle_max_w=2.0, charging_min_w=1.0)
    with pytest.raises(ValueError):
        Thresholds(rating_w=5.0)


def test_device_fault_and_recovery_are_events() -> None:
    cabinet = CabinetClassifier(1)
    cabinet.update(_reading((18.0,), devices=(DeviceHealth(name="meter", ok=True),)), T0)
    failed = (DeviceHealth(name="meter", ok=False, error="timeout"),)
    bad = cabinet.update(_reading((None,), devices=failed), T0)
    assert [(c.kind, c.device, c.detail) for c in bad if c.device] == [
        (EventKind.DEVICE_FAULT, "meter", "timeout")]
    assert cabinet.states() == [U]
    good = cabinet.update(_reading((18.0,), devices=(DeviceHealth(name="meter", ok=True),)), T0)
    assert [c.kind for c in good if c.device] == [EventKind.DEVICE_RECOVERED]


@pytest.mark.parametrize(
    ("window", "time_utc", "active"),
    [("22:00-06:00", "23:30", True), ("22:00-06:00", "05:59", True), ("22:00-06:00", "06:00", False),
     ("08:00-16:00", "12:00", True), ("08:00-16:00", "16:00", False), ("00:00-24:00", "13:00", True)],
)
def test_charging_windows(window: str, time_utc: str, active: bool) -> None:
    hour, minute = (int(x) for x in time_utc.split(":"))
    windows = ChargingWindows.parse([window], "UTC")
    assert windows.active(datetime(2026, 11, 30, hour, minute, tzinfo=UTC)) is active


@pytest.mark.parametrize("text", ["22-06", "25:00-06:00", "08:00-08:00", "8:60-9:00"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        ChargingWindows.parse([text])
