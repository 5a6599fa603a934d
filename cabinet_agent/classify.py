"""Turn readings into slot states, charge sessions and change events. Pure: time comes in as an argument.

Power alone cannot tell an empty slot from a full iPad (both draw ~0 W; evcc #3846), so the
history decides, and where it cannot, the answer is ``unknown``:

* a slot that was charging and drops to idle was *removed* when the drop was abrupt (from at least
  ``removal_drop_w``) and is *charged* when the power had tapered first;
* a slot idle since the agent started is *unknown*;
* while the door is open, a charged iPad that draws nothing may be taken out unseen: the slot
  becomes *unknown* — unless the cabinet has presence inputs, which then decide. An *empty* slot
  stays empty: an iPad that comes back from lessons is never exactly full, and if it is, its first
  top-up pulse tells;
* without supply (mains off, or outside the cabinet's charging window) power says nothing: the state
  is held, and a running charge session ends as ``power_cut``.

Numbers: charger no-load ≤ 0.1 W (EU 2019/1782), 10–21 W while charging, ~2–3 W before full, top-up
pulses after (../shared/reference/hardware.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .poller import CabinetReading
from .protocol import (
    ChargeSession,
    DeviceHealth,
    DoorState,
    EventKind,
    MainsState,
    SessionEnd,
    SlotSnapshot,
    SlotState,
)
from .sessions import SessionTracker
from .thresholds import Thresholds
from .windows import ChargingWindows

__all__ = ["CabinetClassifier", "Change", "SlotClassifier", "Thresholds"]

S = SlotState


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
    door: DoorState | None = None
    session: ChargeSession | None = None


@dataclass(slots=True)
class SlotClassifier:
    slot: int
    thresholds: Thresholds
    asset_tag: str | None = None
    base: SlotState = S.UNKNOWN  # what the slot holds; a fault overlays it
    fault: str | None = None
    since: datetime | None = None
    power_w: float | None = None
    _last_valid_w: float | None = None
    _unsupplied: bool = False
    _quiet_since: datetime | None = None  # charged and not drawing since
    _last_poll: datetime | None = None
    session: SessionTracker = field(init=False)

    def __post_init__(self) -> None:
        self.session = SessionTracker(self.slot, self.asset_tag)

    @property
    def state(self) -> SlotState:
        return S.FAULT if self.fault else self.base

    # -- the state machine ---------------------------------------------------------------------
    def _from_power(self, p: float, presence: bool | None) -> tuple[SlotState, SessionEnd | None]:
        """Next base state from a supplied reading, and how a running session ends (if it does)."""
        t = self.thresholds
        if presence is False:
            return S.EMPTY, SessionEnd.REMOVED
        if p >= t.charging_min_w:
            if self.base in (S.CHARGED, S.PRESENT_IDLE, S.UNKNOWN) and p <= t.pulse_max_w:
                # A top-up pulse of a full iPad (from unknown: one that was full since we started).
                return S.CHARGED, None
            return S.CHARGING, None
        if p > t.idle_max_w:
            return self.base, None  # inside the hysteresis band
        if self.base is S.CHARGING:
            tapered = (self._last_valid_w or 0.0) < t.removal_drop_w
            if tapered:
                return S.CHARGED, SessionEnd.FULL
            # An abrupt stop: taken out — or, where a presence input says it is still there,
            # unplugged or its charger died.
            return (S.PRESENT_IDLE, SessionEnd.UNKNOWN) if presence else (S.EMPTY, SessionEnd.REMOVED)
        if presence and self.base in (S.EMPTY, S.UNKNOWN):
            return S.PRESENT_IDLE, None  # put in, draws nothing: full, or not plugged in
        return self.base, None

    def update(self, power: float | None, now: datetime, *, supplied: bool = True,
               presence: bool | None = None, door_open: bool = False,
               frozen: bool = False) -> list[Change]:
        """One poll. ``door_open``: the door is open or was opened since the last poll;
        ``frozen``: this slot's reading has not moved for a long time while others did."""
        old_state, old_base = self.state, self.base
        ended: ChargeSession | None = None
        if self.since is None:
            self.since = now
        self.power_w = power
        if power is None:
            new_base = S.UNKNOWN
            ended = self.session.end(now, SessionEnd.UNKNOWN)
            self.fault = None
        elif not supplied:
            self._unsupplied = True
            new_base = self.base
            if self.session.active:
                self.session.sample(now, power)
                ended = self.session.end(now, SessionEnd.POWER_CUT)
        else:
            t = self.thresholds
            came_back = self._unsupplied
            self._unsupplied = False
            if self.session.active:
                self.session.sample(now, power)
            new_base, how = self._from_power(power, presence)
            if came_back and old_base is S.CHARGING and power <= t.idle_max_w and presence is None:
                new_base, how = S.UNKNOWN, None  # removed while off, or full: cannot tell
            if new_base is S.CHARGING and not self.session.active:
                self.session.start(now, power, self._last_poll)
            elif how is not None and self.session.active and new_base is not S.CHARGING:
                ended = self.session.end(now, how)
            if door_open and presence is None and new_base is S.CHARGED and power < t.charging_min_w:
                new_base = S.UNKNOWN  # the door is open: a full iPad may be taken out unseen
            if new_base is S.CHARGED and (old_base is not S.CHARGED or power >= t.charging_min_w):
                self._quiet_since = now  # became charged, or a top-up pulse: not silent
            self.fault = self._fault(power, new_base, now, frozen)
            self._last_valid_w = power
        self.base = new_base
        self._last_poll = now
        changes: list[Change] = []
        if ended is not None:
            changes.append(Change(EventKind.SESSION_ENDED, None, ended.end.value, slot=self.slot,
                                  power_w=power, session=ended))
        if self.state is not old_state:
            self.since = now
            changes.insert(0, Change(EventKind.SLOT_CHANGED, old_state.value, self.state.value,
                                     slot=self.slot, power_w=power, detail=self.fault))
        return changes

    def _fault(self, power: float, base: SlotState, now: datetime, frozen: bool) -> str | None:
        t = self.thresholds
        if power > t.rating_w:
            return "overpower"
        started = self.session.started_at
        if base is S.CHARGING and started is not None and (now - started).total_seconds() > t.max_charge_s:
            return "too_long"
        if base is S.CHARGED and self._quiet_since is not None and \
                (now - self._quiet_since).total_seconds() > t.no_topup_s:
            return "no_topup"
        if frozen and base is S.CHARGING:
            return "frozen"
        return None

    def snapshot(self) -> SlotSnapshot:
        assert self.since is not None, "snapshot before the first update"
        return SlotSnapshot(slot=self.slot, state=self.state, power_w=self.power_w, since=self.since,
                            fault=self.fault)


@dataclass
class CabinetClassifier:
    slot_count: int
    thresholds: Thresholds = field(default_factory=Thresholds)
    asset_tags: dict[int, str] = field(default_factory=dict)
    windows: ChargingWindows = field(default_factory=ChargingWindows)
    door: DoorState = DoorState.UNKNOWN
    mains: MainsState = MainsState.UNKNOWN
    temperature_c: float | None = None
    devices: tuple[DeviceHealth, ...] = ()
    slots: list[SlotClassifier] = field(init=False)
    _same_count: list[int] = field(init=False)
    _others_moved: list[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.slots = [SlotClassifier(i + 1, self.thresholds, self.asset_tags.get(i + 1))
                      for i in range(self.slot_count)]
        self._same_count = [0] * self.slot_count
        self._others_moved = [False] * self.slot_count

    def _device_changes(self, devices: tuple[DeviceHealth, ...]) -> list[Change]:
        changes = []
        previous = {d.name: d for d in self.devices}
        for device in devices:
            was = previous.get(device.name)
            if was is not None and was.ok != device.ok:
                kind = EventKind.DEVICE_RECOVERED if device.ok else EventKind.DEVICE_FAULT
                changes.append(Change(kind, "ok" if was.ok else "fault", "ok" if device.ok else "fault",
                                      device=device.name, detail=device.error))
            elif was is None and not device.ok:
                changes.append(Change(EventKind.DEVICE_FAULT, None, "fault", device=device.name,
                                      detail=device.error))
        self.devices = devices
        return changes

    def _frozen(self, powers: tuple[float | None, ...]) -> list[bool]:
        """Charging slots whose reading stays identical while other slots' readings move
        (a meter channel stuck without an error: MaxGrmm/EF-PowerOcean-TcpModbus#34)."""
        moved = [s.power_w is not None and p is not None and p != s.power_w
                 for s, p in zip(self.slots, powers, strict=True)]
        frozen = []
        for i, (slot, power) in enumerate(zip(self.slots, powers, strict=True)):
            steady = power is not None and power == slot.power_w and power >= self.thresholds.charging_min_w
            if steady:
                self._same_count[i] += 1
                self._others_moved[i] |= any(m for j, m in enumerate(moved) if j != i)
            else:
                self._same_count[i] = 0
                self._others_moved[i] = False
            frozen.append(self._same_count[i] >= self.thresholds.frozen_polls and self._others_moved[i])
        return frozen

    def update(self, reading: CabinetReading, now: datetime) -> list[Change]:
        if len(reading.slot_power) != self.slot_count:
            raise ValueError(f"{len(reading.slot_power)} readings for {self.slot_count} slots")
        changes = self._device_changes(reading.devices)
        if reading.door is not self.door:
            changes.append(Change(EventKind.DOOR_CHANGED, self.door.value, reading.door.value))
        door_open = DoorState.OPEN in (reading.door, self.door)  # open now, or until just now
        self.door = reading.door
        if reading.mains is not self.mains:
            changes.append(Change(EventKind.MAINS_CHANGED, self.mains.value, reading.mains.value))
            self.mains = reading.mains
        self.temperature_c = reading.temperature_c
        supplied = reading.mains is not MainsState.OFF and self.windows.active(now)
        frozen = self._frozen(reading.slot_power)
        present = reading.presence or (None,) * self.slot_count
        for i, (slot, power) in enumerate(zip(self.slots, reading.slot_power, strict=True)):
            slot_changes = slot.update(power, now, supplied=supplied, presence=present[i],
                                       door_open=door_open, frozen=frozen[i])
            changes.extend(_with_door(c, self.door) for c in slot_changes)
        return changes

    def states(self) -> list[SlotState]:
        return [s.state for s in self.slots]

    def snapshots(self) -> list[SlotSnapshot]:
        return [s.snapshot() for s in self.slots]


def _with_door(change: Change, door: DoorState) -> Change:
    return Change(change.kind, change.old, change.new, change.slot, change.device, change.power_w,
                  change.detail, door, change.session)
