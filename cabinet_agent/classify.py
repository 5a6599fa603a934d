"""Turn readings into slot states and change events. Pure: no I/O, time comes in as an argument.

Power alone cannot tell an empty slot from a full iPad (both draw ~0 W; evcc #3846), so the
history decides: a slot that was charging and drops to idle was *removed* when the drop was
abrupt (from ≥ ``removal_drop_w``) and is *charged* when power had tapered first. A slot that
has always been idle since the agent started is *unknown*: the hardware cannot tell.
Numbers: charger no-load ≤ 0.1 W (EU 2019/1782), 10–21 W while charging, ~2–3 W before full,
top-up pulses after (../shared/reference/hardware.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .poller import CabinetReading
from .protocol import DeviceHealth, DoorState, EventKind, MainsState, SlotSnapshot, SlotState

__all__ = ["CabinetClassifier", "Change", "SlotClassifier", "Thresholds"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    idle_max_w: float = 0.5  # no-load 0.1 W plus the meter's 0.1 W resolution and noise
    charging_min_w: float = 1.0  # between the two: hysteresis band, the state stays
    removal_drop_w: float = 5.0  # tapering ends near 2–3 W; a drop from above this is a removal
    pulse_max_w: float = 6.0  # top-up pulses of a charged iPad stay below this (GUESS 2–5 W)

    def __post_init__(self) -> None:
        if not 0 <= self.idle_max_w < self.charging_min_w <= self.removal_drop_w:
            raise ValueError("need 0 <= idle_max_w < charging_min_w <= removal_drop_w")


@dataclass(frozen=True, slots=True)
class Change:
    """Something that became different in this poll; becomes one event message."""

    kind: EventKind
    old: str | None
    new: str | None
    slot: int | None = None
    device: str | None = None
    power_w: float | None = None
    detail: str | None = None


@dataclass(slots=True)
class SlotClassifier:
    slot: int
    thresholds: Thresholds
    state: SlotState = SlotState.UNKNOWN
    since: datetime | None = None
    power_w: float | None = None
    _last_valid_w: float | None = None

    def _next(self, power: float | None, mains: MainsState) -> SlotState:
        t = self.thresholds
        if power is None or mains is MainsState.OFF:
            return SlotState.UNKNOWN  # no reading, or no supply: power says nothing
        if power >= t.charging_min_w:
            if self.state is SlotState.CHARGED and power <= t.pulse_max_w:
                return SlotState.CHARGED  # a top-up pulse
            return SlotState.CHARGING
        if power <= t.idle_max_w:
            if self.state is SlotState.CHARGING:
                last = self._last_valid_w or 0.0
                return SlotState.EMPTY if last >= t.removal_drop_w else SlotState.CHARGED
            return self.state  # empty stays empty, charged stays charged, unknown stays unknown
        return self.state  # inside the hysteresis band

    def update(self, power: float | None, mains: MainsState, now: datetime) -> Change | None:
        new = self._next(power, mains)
        self.power_w = power
        if power is not None:
            self._last_valid_w = power
        if self.since is None:
            self.since = now
        if new is self.state:
            return None
        old, self.state, self.since = self.state, new, now
        return Change(EventKind.SLOT_CHANGED, old.value, new.value, slot=self.slot, power_w=power)

    def snapshot(self) -> SlotSnapshot:
        assert self.since is not None, "snapshot before the first update"
        return SlotSnapshot(slot=self.slot, state=self.state, power_w=self.power_w, since=self.since)


@dataclass
class CabinetClassifier:
    slot_count: int
    thresholds: Thresholds = field(default_factory=Thresholds)
    door: DoorState = DoorState.UNKNOWN
    mains: MainsState = MainsState.UNKNOWN
    temperature_c: float | None = None
    devices: tuple[DeviceHealth, ...] = ()
    slots: list[SlotClassifier] = field(init=False)

    def __post_init__(self) -> None:
        self.slots = [SlotClassifier(i + 1, self.thresholds) for i in range(self.slot_count)]

    def update(self, reading: CabinetReading, now: datetime) -> list[Change]:
        if len(reading.slot_power) != self.slot_count:
            raise ValueError(f"{len(reading.slot_power)} readings for {self.slot_count} slots")
        changes: list[Change] = []
        previous = {d.name: d for d in self.devices}
        for device in reading.devices:
            was = previous.get(device.name)
            if was is not None and was.ok != device.ok:
                kind = EventKind.DEVICE_RECOVERED if device.ok else EventKind.DEVICE_FAULT
                changes.append(Change(kind, "ok" if was.ok else "fault", "ok" if device.ok else "fault",
                                      device=device.name, detail=device.error))
            elif was is None and not device.ok:
                changes.append(Change(EventKind.DEVICE_FAULT, None, "fault", device=device.name,
                                      detail=device.error))
        self.devices = reading.devices
        if reading.door is not self.door:
            changes.append(Change(EventKind.DOOR_CHANGED, self.door.value, reading.door.value))
            self.door = reading.door
        if reading.mains is not self.mains:
            changes.append(Change(EventKind.MAINS_CHANGED, self.mains.value, reading.mains.value))
            self.mains = reading.mains
        self.temperature_c = reading.temperature_c
        for slot, power in zip(self.slots, reading.slot_power, strict=True):
            change = slot.update(power, reading.mains, now)
            if change is not None:
                changes.append(change)
        return changes

    def states(self) -> list[SlotState]:
        return [s.state for s in self.slots]

    def snapshots(self) -> list[SlotSnapshot]:
        return [s.snapshot() for s in self.slots]
