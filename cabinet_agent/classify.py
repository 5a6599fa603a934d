"""Turn readings into slot states, charge sessions and change events. Pure: time comes in as an argument.

Power alone cannot tell an empty slot from a full iPad (both draw ~0 W; evcc #3846), so each slot
keeps what the hardware can *prove*, and says how sure it is (``Certainty``):

* a presence input (switch, plug detection) decides presence outright: no inference;
* on power-only cabinets, a draw proves an iPad is there (a charge, or a top-up pulse of a full
  one: it resumes below 95 %, support.apple.com/118418). A charging slot that drops to idle was
  *removed* when the drop was abrupt (from at least ``removal_drop_w``: certainly empty) and is
  *charged* when the power had tapered first;
* a door opening cannot make a charged, silent slot unknown: it stays *charged*, but only
  *probable*, with ``unseen_since`` (the first opening after its last draw). Without a door contact
  every silent moment is such an opening. An empty slot stays empty: an iPad that comes back from
  lessons is never exactly full and draws at once;
* a full iPad that stays in its slot tops up within the evidence window (``Thresholds``: from
  100 % to 95 % at the slowest standby drain). No draw for that long, counting only time with
  supply, is the evidence: a *probable* charged slot (or one silent since the agent started) is
  then *empty* (probable, ``detail = no_sign``), and a *certain* one (it cannot have left) is a
  ``no_topup`` fault. A pulse at any time proves the iPad there again;
* with presence inputs, an iPad present and silent since the agent started may be full: it is
  *present_idle* with ``cannot_tell`` (no not-charging alert) until the evidence window passes
  without a pulse. An iPad put in while the agent watches, or one whose charge stopped abruptly,
  is *present_idle* for certain: it should draw and does not;
* without supply (mains off, or outside the cabinet's charging window) power says nothing: the
  state is held, silence does not count as evidence, and a running charge session ends as
  ``power_cut``. A slot idle since the agent started (and no presence input) is *unknown*.

A session's energy comes from the slot meter's own counter where its profile has one
(``energy.py``). Durations count in the cabinet's seconds: ``time_scale`` of them per second of
``now`` (1, or a simulator's speed; ``sessions.py``).

Numbers: charger no-load ≤ 0.1 W (EU 2019/1782), 10–21 W while charging, ~2–3 W before full, top-up
pulses after (../shared/reference/hardware.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .common.protocol import (
    Certainty,
    ChargeSession,
    DeviceHealth,
    DoorState,
    EventKind,
    MainsState,
    SessionEnd,
    SlotSnapshot,
    SlotState,
)
from .energy import EnergyCounter
from .poller import CabinetReading
from .sessions import CounterReading, SessionTracker
from .thresholds import Thresholds
from .windows import ChargingWindows

__all__ = ["CabinetClassifier", "Change", "SlotClassifier", "Thresholds"]

S = SlotState
C = Certainty
NO_SIGN = "no_sign"  # detail of a change to empty by the evidence window


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
    counter: EnergyCounter | None = None  # the slot meter's energy counter, if it keeps one
    time_scale: float = 1.0  # the cabinet's seconds per second of ``now`` (a simulator's speed)
    base: SlotState = S.UNKNOWN  # what the slot holds; a fault overlays it
    certainty: Certainty = C.CANNOT_TELL
    fault: str | None = None
    since: datetime | None = None
    power_w: float | None = None
    last_draw_at: datetime | None = None  # the last proof that an iPad was there
    unseen_since: datetime | None = None  # since then it may have left without being seen
    _silent_s: float = 0.0  # supplied time without a draw, since the last draw (or the start)
    _last_valid_w: float | None = None
    _unsupplied: bool = False
    _last_poll: datetime | None = None
    _counter: CounterReading | None = None  # the last reading of the slot's energy counter
    session: SessionTracker = field(init=False)

    def __post_init__(self) -> None:
        self.session = SessionTracker(self.slot, self.counter, self.time_scale)

    @property
    def state(self) -> SlotState:
        return S.FAULT if self.fault else self.base

    # -- the state machine ---------------------------------------------------------------------
    def _from_power(self, p: float, presence: bool | None
                    ) -> tuple[SlotState, Certainty, SessionEnd | None]:
        """Next base state and certainty from a supplied reading, and how a running session ends."""
        t = self.thresholds
        if presence is False:
            return S.EMPTY, C.CERTAIN, SessionEnd.REMOVED
        if p >= t.charging_min_w:
            # A small draw on a slot that may hold a full iPad is its top-up pulse: charged (from
            # unknown: full since we started; from empty by evidence: the evidence was wrong).
            may_hold_full = self.base in (S.CHARGED, S.PRESENT_IDLE, S.UNKNOWN) or (
                self.base is S.EMPTY and self.certainty is C.PROBABLE)
            if may_hold_full and p <= t.pulse_max_w:
                return S.CHARGED, C.CERTAIN, None
            return S.CHARGING, C.CERTAIN, None
        if p > t.idle_max_w:
            return self.base, self.certainty, None  # inside the hysteresis band
        if self.base is S.CHARGING:
            tapered = (self._last_valid_w or 0.0) < t.removal_drop_w
            if tapered:
                return S.CHARGED, C.CERTAIN, SessionEnd.FULL
            # An abrupt stop: taken out — or, where a presence input says it is still there,
            # unplugged or its charger died.
            if presence:
                return S.PRESENT_IDLE, C.CERTAIN, SessionEnd.UNKNOWN
            return S.EMPTY, C.CERTAIN, SessionEnd.REMOVED
        if presence:
            if self.base is S.EMPTY:
                return S.PRESENT_IDLE, C.CERTAIN, None  # put in while we watched, draws nothing
            if self.base is S.UNKNOWN:
                return S.PRESENT_IDLE, C.CANNOT_TELL, None  # there since we started: maybe full
        return self.base, self.certainty, None

    def update(self, power: float | None, now: datetime, *, supplied: bool = True,
               presence: bool | None = None, door_open: bool = False, door_known: bool = True,
               frozen: bool = False, energy_wh: float | None = None) -> list[Change]:
        """One poll. ``energy_wh``: the slot's energy counter, where its meter keeps one;
        ``door_open``: the door is open or was opened since the last poll;
        ``door_known``: the cabinet has a door contact and it answers (otherwise every silent
        moment may hide an opening); ``frozen``: this slot's reading has not moved for a long time
        while others did."""
        old_state, old_base = self.state, self.base
        ended: ChargeSession | None = None
        detail: str | None = None
        if self.since is None:
            self.since = now
        elapsed = ((now - self._last_poll).total_seconds() * self.time_scale
                   if self._last_poll is not None else 0.0)
        self.power_w = power
        if power is None:
            new_base, self.certainty = S.UNKNOWN, C.CANNOT_TELL
            ended = self.session.end(now, SessionEnd.UNKNOWN)
            self.fault = None
        elif not supplied:
            self._unsupplied = True
            new_base = self.base
            if self.session.active:
                self.session.sample(now, power, energy_wh)
                ended = self.session.end(now, SessionEnd.POWER_CUT)
        else:
            t = self.thresholds
            came_back = self._unsupplied
            self._unsupplied = False
            if self.session.active:
                self.session.sample(now, power, energy_wh)
            new_base, certainty, how = self._from_power(power, presence)
            if came_back and old_base is S.CHARGING and power <= t.idle_max_w and presence is None:
                new_base, certainty, how = S.UNKNOWN, C.CANNOT_TELL, None  # removed while off, or full
            if new_base is S.CHARGING and not self.session.active:
                self.session.start(now, power, self._last_poll, energy_wh, self._counter)
            elif how is not None and self.session.active and new_base is not S.CHARGING:
                ended = self.session.end(now, how)
            self.certainty = certainty
            if power >= t.charging_min_w:
                self.last_draw_at, self.unseen_since, self._silent_s = now, None, 0.0
            else:
                if not came_back:
                    self._silent_s += elapsed
                new_base, detail = self._judge_silence(new_base, presence, door_open, door_known, now)
            self.fault = self._fault(power, new_base, now, frozen)
            self._last_valid_w = power
        self.base = new_base
        self._last_poll = now
        if energy_wh is not None:
            self._counter = (now, energy_wh)
        changes: list[Change] = []
        if ended is not None:
            changes.append(Change(EventKind.SESSION_ENDED, None, ended.end.value, slot=self.slot,
                                  power_w=power, session=ended))
        if self.state is not old_state:
            self.since = now
            changes.insert(0, Change(EventKind.SLOT_CHANGED, old_state.value, self.state.value,
                                     slot=self.slot, power_w=power, detail=self.fault or detail))
        return changes

    def _judge_silence(self, base: SlotState, presence: bool | None, door_open: bool,
                       door_known: bool, now: datetime) -> tuple[SlotState, str | None]:
        """A silent, supplied poll: what a door opening and the evidence window make of the slot."""
        if presence is not None:
            if base is S.PRESENT_IDLE and self.certainty is C.CANNOT_TELL and self._past_window():
                self.certainty = C.CERTAIN  # a full iPad would have topped up by now
            return base, None
        if base is S.CHARGED:
            if (door_open or not door_known) and self.unseen_since is None:
                self.unseen_since = now
            if self.unseen_since is not None:
                self.certainty = C.PROBABLE
                if self._past_window():
                    return S.EMPTY, NO_SIGN  # no top-up for the whole window: it is gone
            return base, None
        if base is S.UNKNOWN and self._past_window():
            self.certainty = C.PROBABLE  # silent since the agent started: no iPad would be
            if self.unseen_since is None:
                self.unseen_since = self.since
            return S.EMPTY, NO_SIGN
        return base, None

    def _past_window(self) -> bool:
        return self._silent_s >= self.thresholds.evidence_window_s

    def _fault(self, power: float, base: SlotState, now: datetime, frozen: bool) -> str | None:
        t = self.thresholds
        if power > t.rating_w:
            return "overpower"
        started = self.session.started_at
        if base is S.CHARGING and started is not None and \
                (now - started).total_seconds() * self.time_scale > t.max_charge_s:
            return "too_long"
        if base is S.CHARGED and self.certainty is C.CERTAIN and self.last_draw_at is not None and \
                self._silent_s > t.topup_limit_s:
            return "no_topup"  # it cannot have left (no door since), yet it never tops up
        if frozen and base is S.CHARGING:
            return "frozen"
        return None

    def snapshot(self) -> SlotSnapshot:
        assert self.since is not None, "snapshot before the first update"
        return SlotSnapshot(slot=self.slot, state=self.state, power_w=self.power_w, since=self.since,
                            fault=self.fault, certainty=C.CERTAIN if self.fault else self.certainty,
                            last_draw_at=self.last_draw_at, unseen_since=self.unseen_since)

    @property
    def evidence(self) -> tuple[SlotState, Certainty, datetime | None]:
        """What a state message must carry anew when it changes (last_draw_at moves every poll
        while charging: it rides along with the next state message instead)."""
        return (self.state, self.certainty, self.unseen_since)


@dataclass
class CabinetClassifier:
    slot_count: int
    thresholds: Thresholds = field(default_factory=Thresholds)
    windows: ChargingWindows = field(default_factory=ChargingWindows)
    # Per slot, its meter's energy counter (None: none); empty: no slot has one.
    counters: tuple[EnergyCounter | None, ...] = ()
    time_scale: float = 1.0  # the cabinet's seconds per second of ``now`` (a simulator's speed)
    door: DoorState = DoorState.UNKNOWN
    mains: MainsState = MainsState.UNKNOWN
    temperature_c: float | None = None
    devices: tuple[DeviceHealth, ...] = ()
    slots: list[SlotClassifier] = field(init=False)
    # The last update changed a slot's state, certainty or unseen_since: a new state message is due
    # even when no event is (a door opening makes charged slots probable).
    evidence_changed: bool = field(default=False, init=False)
    _same_count: list[int] = field(init=False)
    _others_moved: list[bool] = field(init=False)

    def __post_init__(self) -> None:
        if self.counters and len(self.counters) != self.slot_count:
            raise ValueError(f"{len(self.counters)} counters for {self.slot_count} slots")
        counters = self.counters or (None,) * self.slot_count
        self.slots = [SlotClassifier(i + 1, self.thresholds, counters[i], self.time_scale)
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
        moved_count = sum(moved)
        frozen = []
        for i, (slot, power) in enumerate(zip(self.slots, powers, strict=True)):
            steady = power is not None and power == slot.power_w and power >= self.thresholds.charging_min_w
            if steady:
                self._same_count[i] += 1
                self._others_moved[i] |= moved_count - moved[i] > 0  # another slot's reading moved
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
        energies = reading.slot_energy_wh or (None,) * self.slot_count
        door_known = reading.door is not DoorState.UNKNOWN
        self.evidence_changed = False
        for i, (slot, power) in enumerate(zip(self.slots, reading.slot_power, strict=True)):
            before = slot.evidence
            slot_changes = slot.update(power, now, supplied=supplied, presence=present[i],
                                       door_open=door_open, door_known=door_known, frozen=frozen[i],
                                       energy_wh=energies[i])
            self.evidence_changed |= slot.evidence != before
            changes.extend(_with_door(c, self.door) for c in slot_changes)
        return changes

    def states(self) -> list[SlotState]:
        return [s.state for s in self.slots]

    def certainties(self) -> list[Certainty]:
        return [C.CERTAIN if s.fault else s.certainty for s in self.slots]

    def snapshots(self) -> list[SlotSnapshot]:
        return [s.snapshot() for s in self.slots]


def _with_door(change: Change, door: DoorState) -> Change:
    return Change(change.kind, change.old, change.new, change.slot, change.device, change.power_w,
                  change.detail, door, change.session)
