"""One cabinet of the alert-quality benchmark: simulator physics → ``CabinetReading`` →
``CabinetClassifier`` → the agent's protocol messages, and a ledger of the ground truth.

Physics is ``simulators.physics.SlotPhysics`` per slot, driven here instead of through
``CabinetSim`` (which steps every slot every 30 s for its temperature model: ~1 ms per 16-slot
cabinet and 10 simulated minutes, 20 minutes of CPU for the term). Each slot is advanced to the
moment something touches it, in one exact physics step. Events follow ``CabinetSim._apply``: a
take removes the iPad, a return brings it back ``drain`` lower and no longer holding.
"""

from __future__ import annotations

import bisect
import math
import random
import uuid
from datetime import time, timedelta

from alert_quality_incidents import BROKEN_ERROR, HOT_OFFSET_C, Incidents
from alert_quality_plan import ZONE, CabinetSpec, Incident
from alert_quality_truth import (
    REAL_CHARGE_BELOW,
    RETURN_CHECK,
    Expectation,
    GroundTruth,
    Ledger,
    local_ts,
    utc,
)

from cabinet_agent.cabinet_model import LoadedCabinet
from cabinet_agent.classify import CabinetClassifier
from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    DeviceHealth,
    DoorState,
    EventMessage,
    MainsState,
    SlotInfo,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
)
from cabinet_agent.poller import CabinetReading
from server.schoolcal import SchoolCalendar
from simulators.physics import ChargerParams, IPad, SlotPhysics
from simulators.scenario import EventKind, SchoolDay

__all__ = ["CHECKS", "STEP_CHARGING", "STEP_EVENT", "STEP_QUIET", "CabinetRun", "Expectation",
           "Ledger"]

STEP_EVENT = 60.0  # first poll after a door event, an injected incident or a calendar moment
STEP_CHARGING = 600.0  # while a slot charges (the taper below 5 W lasts ~20 min: seen twice)
STEP_QUIET = 3600.0  # otherwise; a poll is added where each full iPad's next top-up begins
# Local times every cabinet polls at: morning check, school start, mains window, school end, return check.
CHECKS = (time(7, 0), time(7, 30), time(15, 0), time(16, 0), time(16, 30))
AMBIENT_C, HEATING_C_PER_W, TAU_S = 21.0, 0.02, 1800.0  # as simulators.cabinet.ClimateParams


class CabinetRun(Incidents, GroundTruth):
    """A cabinet, its agent (classifier and message building as cabinet_agent/service.py does)
    and its share of the ground truth."""

    def __init__(self, spec: CabinetSpec, loaded: LoadedCabinet, calendar: SchoolCalendar,
                 incidents: list[Incident], start: float, end: float, ledger: Ledger,
                 return_checks: tuple[time, ...] = (RETURN_CHECK,)) -> None:
        self.spec, self.loaded, self.calendar, self.ledger = spec, loaded, calendar, ledger
        self.return_checks = return_checks
        self.thresholds = loaded.model.effective_thresholds()
        self.n = spec.slots
        self.tags = {i: f"{spec.asset_prefix}{i:03d}" for i in range(1, self.n + 1)}
        self.rng = random.Random(f"cabinet:{spec.seed}")
        self.slots = [SlotPhysics(ChargerParams()) for _ in range(self.n)]
        for i, slot in enumerate(self.slots):  # GUESS: the term starts with charged iPads
            slot.insert(IPad(self.tags[i + 1], soc=min(1.0, self.rng.uniform(0.9, 1.05))))
        self.slot_t = [start] * self.n
        self.away: dict[int, IPad] = {}
        self.power_only = spec.kind == "power"
        self.has_meter = spec.kind != "door"
        self.presence = spec.kind == "presence"
        self.scenario_door = False
        self.forced_door = 0  # incidents holding the door open
        self.door_truth = False
        self.mains_on = True
        self.hot = False
        self.temp = AMBIENT_C
        self.temp_t = start
        self.dead: set[str] = set()
        self.devices = list(loaded.model.devices)
        self.meter_slots: dict[str, range] = {}
        first = 0
        for ref, width in loaded.slot_refs:
            self.meter_slots[ref.device] = range(first, first + width)
            first += width
        signals = loaded.model.signals
        self.io_device = signals.door.split(".")[0] if signals.door else None
        self.climate_device = signals.temperature.split(".")[0] if signals.temperature else None
        # agent
        self.down = False
        self.down_until = start
        self.booted_at = start
        self.boot_id = ""
        self.seq = 0
        self.will: StatusMessage | None = None
        self.classifier: CabinetClassifier | None = None
        self.first_poll = True
        self.polls = 0
        self.polls_by_phase: dict[str, int] = {}
        self.phase = "event"  # why the next poll is due: an event mark, a charge, or neither
        self.last_poll = start
        self.sensing = loaded.sensing(self.thresholds)
        # truth per slot
        self.episode: list[tuple[float, float] | None] = [None] * self.n  # (start, soc) of a charge
        self.take_abrupt: dict[int, tuple[float, bool]] = {}  # slot -> (take time, drawing >= 5 W)
        self.forgotten: dict[int, Expectation] = {}  # open not-returned episodes by slot
        self.full_charges: dict[int, int] = {}  # id(IPad) -> charges the agent measured a taper of
        self.worn: dict[int, tuple[Expectation, int]] = {}  # id(IPad) -> (expectation, charges then)
        self.broken: dict[int, tuple[IPad, Expectation | None]] = {}  # slot -> (iPad, presence exp.)
        self.overpower: dict[int, Expectation] = {}
        self.too_long: dict[int, list[Expectation]] = {}
        self.events = self._plan(incidents, start, end)
        self.cursor = 0
        self.marks = sorted({t for t, _, kind, _ in self.events if kind not in ("take", "return")})

    # -- plan ------------------------------------------------------------------------------------
    def _plan(self, incidents: list[Incident], start: float, end: float
              ) -> list[tuple[float, int, str, object]]:
        events: list[tuple[float, int, str, object]] = []
        scenario = SchoolDay(self.spec.seed, self.n)
        day = utc(start).astimezone(ZONE).date()
        last = utc(end).astimezone(ZONE).date()
        while day <= last:
            for at in (*CHECKS, *self.return_checks):
                events.append((local_ts(day, at), 0, "mark", at))
            if self.calendar.is_school_day(day):  # SchoolDay knows weekends only
                one_to_one = self.spec.policy == "one_to_one"
                for e in scenario.plan(day, ZONE):
                    t = e.at.timestamp()
                    if e.kind is EventKind.DOOR:
                        events.append((t, 1, "door", bool(e.door_open)))
                    elif one_to_one:
                        # Pupils bring their own iPad in the morning and take it home after
                        # lessons: SchoolDay's take becomes the deposit (10 % forget it at home).
                        if e.kind is EventKind.TAKE:
                            drain = self.rng.uniform(*scenario.drain)
                            events.append((t, 2, "return", (e.slot, drain)))
                        else:
                            events.append((t, 2, "take", e.slot))
                    elif e.kind is EventKind.TAKE:
                        events.append((t, 2, "take", e.slot))
                    else:
                        events.append((t, 2, "return", (e.slot, e.drain)))
            day += timedelta(days=1)
        for incident in incidents:
            # a poll just before, so that rules that compare readings have a fresh one
            events.append((incident.start.timestamp() - STEP_EVENT, 0, "mark", None))
            events.append((incident.start.timestamp(), 3, "start", incident))
            events.append((incident.end.timestamp(), 3, "end", incident))
        events = [e for e in events if start <= e[0] < end]
        events.sort(key=lambda e: (e[0], e[1]))
        return events

    # -- physics ---------------------------------------------------------------------------------
    def _advance_slot(self, i: int, t: float) -> None:
        dt = t - self.slot_t[i]
        if dt > 0:
            self.slot_t[i] = t
            if self.slots[i].ipad is not None:  # an empty charger: nothing to integrate
                self.slots[i].step(dt, self.rng)  # exact over any interval (simulators/physics.py)

    def _advance_all(self, t: float) -> None:
        for i in range(self.n):
            self._advance_slot(i, t)

    def _set_door(self, t: float) -> None:
        now_open = self.scenario_door or self.forced_door > 0
        if now_open != self.door_truth:
            self.door_truth = now_open
            (self.ledger.open if now_open else self.ledger.close)("door", self.spec.site,
                                                                 self.spec.cabinet, "", t)

    def _apply(self, t: float, kind: str, arg: object) -> list[StatusMessage]:
        """One planned event at ``t``; returns a Last Will if the agent went away."""
        if kind == "door":
            self.scenario_door = bool(arg)
            self._set_door(t)
        elif kind == "take":
            slot = int(arg)  # type: ignore[call-overload]
            i = slot - 1
            self._advance_slot(i, t)
            physics = self.slots[i]
            if physics.ipad is not None:
                drawing = physics.charging and physics.draw_w() >= self.thresholds.removal_drop_w
                # Seen leaving only if the agent saw it charge (a pulse that began since the last
                # poll and ended with the take is invisible to it).
                seen = (self.classifier is not None and not self.down
                        and self.classifier.states()[i] is SlotState.CHARGING)
                self.take_abrupt[slot] = (t, drawing and seen)
                self.away[slot] = physics.remove()
                self._end_episode(i, t)
        elif kind == "return":
            slot, drain = arg  # type: ignore[misc]
            i = slot - 1
            self._advance_slot(i, t)
            physics = self.slots[i]
            if slot in self.away and physics.ipad is None:
                ipad = self.away.pop(slot)
                ipad.soc = max(min(ipad.soc, 0.05), ipad.soc - drain)  # CabinetSim._apply
                ipad.holding = False
                physics.insert(ipad)
                if physics.charging:
                    self.episode[i] = (t, ipad.soc)
        elif kind == "start":
            return self._start(t, arg)  # type: ignore[arg-type]
        elif kind == "end":
            self._end(t, arg)  # type: ignore[arg-type]
        return []

    # -- the agent -------------------------------------------------------------------------------
    def _env(self, t: float) -> dict[str, object]:
        self.seq += 1
        return {"v": 1, "site": self.spec.site, "cabinet": self.spec.cabinet,
                "boot_id": self.boot_id, "seq": self.seq, "ts": utc(t), "clock_synced": True}

    def boot(self, t: float) -> list[object]:
        """A (re)start of the agent: a new boot id and a classifier that knows nothing yet."""
        self.boot_id = uuid.UUID(int=random.Random(f"{self.spec.seed}:{t}").getrandbits(128)).hex
        self.booted_at = t  # a restarted agent has no evidence from before: its silence counts anew
        self.seq = -1
        self.classifier = CabinetClassifier(self.n, self.thresholds)
        self.first_poll = True
        self.down = False
        # As service.py: the Will is registered at connect (its seq from then), then status, birth.
        self.will = StatusMessage(**self._env(t), status=AgentStatus.OFFLINE,  # type: ignore[arg-type]
                                  reason="connection lost (Last Will)")
        status = StatusMessage(**self._env(t), status=AgentStatus.ONLINE)  # type: ignore[arg-type]
        birth = BirthMessage(
            **self._env(t), agent_version="bench", config_hash="0" * 8,  # type: ignore[arg-type]
            cabinet_model=self.loaded.model.name, slot_count=self.n,
            slots=[SlotInfo(slot=i) for i in range(1, self.n + 1)],
            poll_interval_s=STEP_EVENT, telemetry_interval_s=STEP_QUIET, sensing=self.sensing)
        return [status, birth]

    def next_time(self, t: float) -> float:
        """The next poll: the next event mark or predicted top-up, else the step's grid.

        While a slot charges (to the end of the charge: its taper is what battery ageing
        measures), the cabinet is polled every ``STEP_CHARGING``. Otherwise it is quiet and polled
        every ``STEP_QUIET`` — and at the moment physics says each full iPad's next top-up begins
        (plus a minute), so that no pulse (about half an hour) goes unseen."""
        step = STEP_QUIET
        pulse_at = math.inf
        for i, slot in enumerate(self.slots):
            ipad = slot.ipad
            if slot.charging:
                episode = self.episode[i]
                if episode is None or episode[1] < REAL_CHARGE_BELOW:
                    step = STEP_CHARGING  # a charge: to its end
                    break
                continue  # a top-up pulse: seen by the poll at its predicted start
            if ipad is not None and ipad.holding and slot.mains_on and not ipad.broken:
                per_day = (ipad.standby_drain_per_day if ipad.standby_drain_per_day is not None
                           else slot.params.self_discharge_per_h * 24)
                if per_day > 0:
                    lead = (ipad.soc - slot.params.resume_below_soc) / per_day * 86400.0
                    pulse_at = min(pulse_at, max(self.slot_t[i], t) + max(lead, 0.0) + STEP_EVENT)
        grid = (math.floor(t / step) + 1) * step
        self.phase = "charging" if step == STEP_CHARGING else "quiet"
        if t < pulse_at < grid:
            grid = math.ceil(pulse_at / STEP_EVENT) * STEP_EVENT
            self.phase = "pulse"
        k = bisect.bisect_right(self.marks, t)
        if k < len(self.marks):
            mark = math.ceil(self.marks[k] / STEP_EVENT) * STEP_EVENT
            if t < mark < grid:
                self.phase = "event"
                return mark
        return grid

    def advance(self, t: float) -> list[object]:
        """Apply every planned event up to ``t`` (inclusive)."""
        out: list[object] = []
        events = self.events
        while self.cursor < len(events) and events[self.cursor][0] <= t:
            et, _, kind, arg = events[self.cursor]
            self.cursor += 1
            if kind == "close":
                self.forced_door -= 1
                self._set_door(et)
            elif kind != "mark":
                out.extend(self._apply(et, kind, arg))
        if self.down and t >= self.down_until:
            out.extend(self.boot(t))
        return out

    def poll(self, t: float) -> list[object]:
        """Everything the agent publishes at ``t``, after the physics caught up."""
        out = self.advance(t)
        self._advance_all(t)
        if self.down or self.classifier is None:
            self._truth(t)
            return out
        for slot in self.slots:
            if not slot.charging:
                # A fresh reading: an incident at this very moment (a charger dies) changed the
                # slot after physics had advanced it here.
                slot.step(0.0, self.rng)
        total = sum(s.power_w for s in self.slots)
        dt = t - self.temp_t
        goal = AMBIENT_C + HEATING_C_PER_W * total
        self.temp = goal + (self.temp - goal) * math.exp(-dt / TAU_S)
        self.temp_t = t
        reading = self._reading(t)
        now = utc(t)
        c = self.classifier
        changes = c.update(reading, now)
        self.polls += 1
        self.polls_by_phase[self.phase] = self.polls_by_phase.get(self.phase, 0) + 1
        for change in changes:
            session = change.session
            if session is not None and session.taper_wh is not None and change.slot is not None:
                self._measured_charge(change.slot, t)
            out.append(EventMessage(**self._env(t), event=change.kind, slot=change.slot,  # type: ignore[arg-type]
                                    device=change.device, old=change.old, new=change.new,
                                    power_w=change.power_w, detail=change.detail, door=change.door,
                                    session=change.session))
        if changes or self.first_poll or c.evidence_changed:
            out.append(StateMessage(**self._env(t), slots=c.snapshots(), door=c.door,  # type: ignore[arg-type]
                                    temperature_c=c.temperature_c, mains=c.mains,
                                    devices=list(c.devices)))
        self.first_poll = False
        out.append(TelemetryMessage(
            **self._env(t), power_w=list(reading.slot_power), states=c.states(),  # type: ignore[arg-type]
            certainty=c.certainties(), temperature_c=reading.temperature_c, door=reading.door,
            mains=reading.mains, devices=list(reading.devices), poll_ms=0.0, outbox_queued=0,
            outbox_dropped=0))
        self._truth(t)
        self.last_poll = t
        return out

    def _reading(self, t: float) -> CabinetReading:
        dead = self.dead
        power: list[float | None]
        if self.has_meter:
            power = [s.power_w for s in self.slots]
            for device in dead:
                for i in self.meter_slots.get(device, ()):
                    power[i] = None
        else:
            power = [None] * self.n
        io_ok = self.io_device not in dead
        door = (DoorState.OPEN if self.door_truth else DoorState.CLOSED) if io_ok else DoorState.UNKNOWN
        mains = (MainsState.ON if self.mains_on else MainsState.OFF) if io_ok else MainsState.UNKNOWN
        temp: float | None = round(self.temp + (HOT_OFFSET_C if self.hot else 0.0), 1)
        if self.climate_device in dead:
            temp = None
        devices = tuple(DeviceHealth(name=d, ok=d not in dead, error=BROKEN_ERROR if d in dead else None)
                        for d in self.devices)
        presence = tuple(s.ipad is not None for s in self.slots) if self.presence else None
        return CabinetReading(tuple(power), door, mains, temp, devices, 0.0, presence=presence)

