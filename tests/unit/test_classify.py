"""Slot states from power, as timelines: at t push this reading, expect that state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cabinet_agent.classify import CabinetClassifier, SlotClassifier, Thresholds
from cabinet_agent.poller import CabinetReading
from cabinet_agent.protocol import DeviceHealth, DoorState, EventKind, MainsState, SlotState

T0 = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
ON = MainsState.ON


def _run(powers: list[float | None], mains: MainsState = ON) -> list[SlotState]:
    slot = SlotClassifier(1, Thresholds())
    states = []
    for i, power in enumerate(powers):
        slot.update(power, mains, T0 + timedelta(seconds=i))
        states.append(slot.state)
    return states


E, C, F, U = SlotState.EMPTY, SlotState.CHARGING, SlotState.CHARGED, SlotState.UNKNOWN


@pytest.mark.parametrize(
    ("powers", "expected"),
    [
        # idle since start: empty or full, the hardware cannot tell
        ([0.05, 0.05], [U, U]),
        # inserted, charges, pulled out while drawing 18 W -> empty
        ([0.05, 18.0, 18.0, 0.05], [U, C, C, E]),
        # charges, tapers to 2.5 W, stops -> charged
        ([18.0, 9.0, 4.0, 2.5, 0.05], [C, C, C, C, F]),
        # charged iPad tops up with a 3 W pulse: stays charged, and after it as well
        ([18.0, 2.5, 0.05, 3.0, 3.0, 0.05], [C, C, F, F, F, F]),
        # a large draw after charged is a new iPad or a deep discharge: charging
        ([18.0, 2.5, 0.0, 15.0], [C, C, F, C]),
        # inside the hysteresis band nothing flips
        ([18.0, 0.7, 0.8, 0.6], [C, C, C, C]),
        # a missing reading is unknown, never 0 and never the last value
        ([18.0, None, 18.0], [C, U, C]),
        # empty stays empty at no-load
        ([18.0, 0.0, 0.1, 0.05], [C, E, E, E]),
    ],
)
def test_slot_timeline(powers: list[float | None], expected: list[SlotState]) -> None:
    assert _run(powers) == expected


def test_without_mains_power_says_nothing() -> None:
    assert _run([18.0, 0.0], mains=MainsState.OFF) == [U, U]


def test_since_moves_only_on_change() -> None:
    slot = SlotClassifier(1, Thresholds())
    slot.update(18.0, ON, T0)
    slot.update(17.0, ON, T0 + timedelta(seconds=5))
    assert slot.snapshot().since == T0
    slot.update(0.0, ON, T0 + timedelta(seconds=9))
    assert slot.snapshot().since == T0 + timedelta(seconds=9)
    assert slot.snapshot().state is E


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        Thresholds(idle_max_w=2.0, charging_min_w=1.0)


def _reading(power: tuple[float | None, ...], door: DoorState = DoorState.CLOSED,
             devices: tuple[DeviceHealth, ...] = ()) -> CabinetReading:
    return CabinetReading(power, door, ON, 21.0, devices, 0.01)


def test_cabinet_reports_each_change_once() -> None:
    cabinet = CabinetClassifier(2)
    ok = (DeviceHealth(name="meter", ok=True),)
    first = cabinet.update(_reading((18.0, 0.0), devices=ok), T0)
    assert {(c.kind, c.slot, c.new) for c in first} >= {(EventKind.SLOT_CHANGED, 1, "charging"),
                                                        (EventKind.DOOR_CHANGED, None, "closed")}
    assert cabinet.update(_reading((18.0, 0.0), devices=ok), T0) == []
    changes = cabinet.update(_reading((0.0, 0.0), DoorState.OPEN, ok), T0)
    assert [(c.kind, c.slot, c.old, c.new) for c in changes] == [
        (EventKind.DOOR_CHANGED, None, "closed", "open"),
        (EventKind.SLOT_CHANGED, 1, "charging", "empty"),
    ]


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
