"""What a simulated fleet consists of: schools, cabinets, their models and their incidents.

Pure and deterministic: the same arguments give the same fleet, so a benchmark run can be
repeated. The default mix is the district of the brief: 138 cabinets holding 2,400 iPads
(36 × 8 + 72 × 16 + 30 × 32 slots).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from .scenario import EventKind, ScenarioEvent, SchoolDay

__all__ = ["DISTRICT_MIX", "CabinetPlan", "Incident", "IncidentScenario", "plan_fleet"]

# (slots, cabinets) of the district: 2,400 slots in 138 cabinets.
DISTRICT_MIX = ((8, 36), (16, 72), (32, 30))
CABINETS_PER_SCHOOL = 6  # GUESS: a primary school with a cabinet per two classrooms


class Incident(StrEnum):
    """What goes wrong in one cabinet during the simulated day."""

    NONE = "none"
    NOT_RETURNED = "not-returned"  # a class forgets its iPads: 40 % stay out overnight
    FAULTY_IPAD = "faulty-ipad"  # slot 1 holds an iPad that draws nothing (a broken charge port)
    DEVICE_FAULT = "device-fault"  # the temperature sensor dies at 10:00
    POWER_LOSS = "power-loss"  # the cabinet's supply is off from 16:00 to 18:00
    DOOR_LEFT_OPEN = "door-left-open"  # the door stays open after the last return window


# Share of cabinets with each incident (the rest run an ordinary school day). GUESSes.
INCIDENT_SHARES = ((Incident.NOT_RETURNED, 0.06), (Incident.FAULTY_IPAD, 0.04),
                   (Incident.DEVICE_FAULT, 0.02), (Incident.POWER_LOSS, 0.02),
                   (Incident.DOOR_LEFT_OPEN, 0.03))


@dataclass(frozen=True, slots=True)
class CabinetPlan:
    site: str
    cabinet: str
    slots: int
    seed: int
    incident: Incident = Incident.NONE

    @property
    def model(self) -> str:
        return f"ladewache-{self.slots}"

    @property
    def asset_prefix(self) -> str:
        return f"{self.site.upper()}-{self.cabinet[-2:]}-"


def _slot_mix(cabinets: int, slots: int | None) -> list[int]:
    if slots is not None:
        return [slots] * cabinets
    total = sum(n for _, n in DISTRICT_MIX)
    counts = [round(cabinets * n / total) for _, n in DISTRICT_MIX]
    counts[0] += cabinets - sum(counts)  # rounding goes to the smallest model
    return [size for (size, _), count in zip(DISTRICT_MIX, counts, strict=True) for _ in range(count)]


def plan_fleet(cabinets: int = 138, slots: int | None = None, *, seed: int = 1,
               incidents: bool = True, site_prefix: str = "gs") -> list[CabinetPlan]:
    """``cabinets`` cabinets in schools of six; ``slots`` each, or the district's mix."""
    if cabinets < 1:
        raise ValueError("cabinets must be >= 1")
    if slots is not None and slots not in (8, 16, 32):
        raise ValueError("slots must be 8, 16 or 32 (the shipped models)")
    rng = random.Random(f"fleet:{seed}")
    sizes = _slot_mix(cabinets, slots)
    rng.shuffle(sizes)
    kinds = [Incident.NONE] * cabinets
    if incidents:
        # At least one of each where the fleet is big enough, so a small demo shows them all.
        order = list(range(cabinets))
        rng.shuffle(order)
        at = 0
        for kind, share in INCIDENT_SHARES:
            for _ in range(max(1, round(cabinets * share))):
                if at < cabinets:
                    kinds[order[at]] = kind
                    at += 1
    width = max(3, len(str(cabinets // CABINETS_PER_SCHOOL + 1)))
    return [CabinetPlan(site=f"{site_prefix}-{i // CABINETS_PER_SCHOOL + 1:0{width}d}",
                        cabinet=f"schrank-{i % CABINETS_PER_SCHOOL + 1:02d}",
                        slots=sizes[i], seed=seed * 100_003 + i, incident=kinds[i])
            for i in range(cabinets)]


class IncidentScenario:
    """The school day, plus the door left open after the last return window."""

    name = "school-day"
    DOOR_LEFT_OPEN_AT = time(15, 20)

    def __init__(self, plan: CabinetPlan) -> None:
        not_returned = 0.4 if plan.incident is Incident.NOT_RETURNED else 0.05
        self._day = SchoolDay(plan.seed, plan.slots, not_returned_share=not_returned)
        self._door_left_open = plan.incident is Incident.DOOR_LEFT_OPEN

    def events_between(self, start: datetime, end: datetime) -> list[ScenarioEvent]:
        events = self._day.events_between(start, end)
        if self._door_left_open:
            day: date = start.date()
            while day <= end.date():
                at = datetime.combine(day, self.DOOR_LEFT_OPEN_AT, tzinfo=start.tzinfo)
                if day.weekday() < 5 and start <= at < end:
                    events.append(ScenarioEvent(at, EventKind.DOOR, door_open=True))
                day += timedelta(days=1)
            events.sort(key=lambda e: e.at)
        return events


@dataclass(frozen=True, slots=True)
class TimedAction:
    """A change the fleet applies to a cabinet at a simulated time of day (not a scenario event)."""

    at: time
    action: str  # "mains-off", "mains-on", "device-dead"


def timed_actions(incident: Incident) -> tuple[TimedAction, ...]:
    if incident is Incident.POWER_LOSS:
        return (TimedAction(time(16, 0), "mains-off"), TimedAction(time(18, 0), "mains-on"))
    if incident is Incident.DEVICE_FAULT:
        return (TimedAction(time(10, 0), "device-dead"),)
    return ()


def due(actions: tuple[TimedAction, ...], start: datetime, end: datetime,
        tz: tzinfo | None = None) -> list[TimedAction]:
    """The actions whose time of day lies in ``[start, end)`` on a weekday."""
    found: list[TimedAction] = []
    day = start.date()
    while day <= end.date():
        if day.weekday() < 5:
            found += [a for a in actions
                      if start <= datetime.combine(day, a.at, tzinfo=tz or start.tzinfo) < end]
        day += timedelta(days=1)
    return found
