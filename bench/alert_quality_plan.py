"""The alert-quality benchmark's world: a district, a school term and what goes wrong in it.

Pure and deterministic (``random.Random`` seeded by strings): the same arguments give the same
district, calendar and incidents. ``bench/alert_quality.py`` runs it; docs/benchmarks.md explains it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from server.org import Organisation
from server.schoolcal import Calendars

__all__ = ["DOOR_ONLY_MODEL", "INCIDENT_RULES", "CabinetSpec", "Incident", "World", "build_world"]

ROOT = Path(__file__).resolve().parents[1]
HOLIDAYS = ROOT / "deploy" / "calendars" / "saarland-schulferien-2025-2027.ics"
ZONE = ZoneInfo("Europe/Berlin")

# A cabinet with a door contact, a mains relay and a temperature sensor but no slot meters: it can
# say nothing about slots (cabinet_model.Signals.slot_power may be empty).
DOOR_ONLY_MODEL = """\
name = "ladewache-16-door"
description = "16-slot cabinet with a door contact only (no slot meters)"
slots = 16

[devices.io]
profile = "waveshare-io-8ch"
address = 2

[devices.climate]
profile = "xy-md02"
address = 3

[signals]
door = "io.input[0]"
door_open_when = true
mains = "io.input[1]"
mains_on_when = true
temperature = "climate.temperature"
"""

# Days off of their own for some schools (a school's `calendars`): a movable day off before the
# Tag der Deutschen Einheit (a Saturday in 2026, so no public holiday falls on a weekday in this
# term) and a Studientag.
SCHOOL_DAYS_OFF = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Ladewache bench//alert quality//DE
BEGIN:VEVENT
UID:brueckentag-2026@bench
DTSTAMP:20260901T000000Z
DTSTART;VALUE=DATE:20261002
DTEND;VALUE=DATE:20261003
SUMMARY:Beweglicher Ferientag
END:VEVENT
BEGIN:VEVENT
UID:studientag-2026@bench
DTSTAMP:20260901T000000Z
DTSTART;VALUE=DATE:20261113
DTEND;VALUE=DATE:20261114
SUMMARY:Studientag
END:VEVENT
END:VCALENDAR
"""

# Incident kind -> the rules that must catch it (slot rules by hardware kind: see expected_rules).
INCIDENT_RULES: dict[str, tuple[str, ...]] = {
    "door_left_open": ("door_open",),
    "door_after_hours": ("door_open_after_hours", "door_open"),
    "agent_offline": ("cabinet_offline",),
    "device_dead": ("device_fault",),
    "mains_off": ("mains_lost",),
    "over_temperature": ("over_temperature", "temperature_rise"),
    "charger_dies": ("ipad_not_charging",),
    "overpower": ("slot_overpower",),
    "late_return": ("ipad_not_charged",),
    "battery_fault": ("charging_too_long", "ipad_not_charging"),
    "battery_wear": ("battery_worn",),
}
# Weights of the kinds (GUESSes: doors and offline agents are common, hardware faults rare).
_KIND_WEIGHTS = (("door_left_open", 5), ("door_after_hours", 4), ("agent_offline", 3),
                 ("device_dead", 2), ("mains_off", 2), ("over_temperature", 1),
                 ("charger_dies", 4), ("overpower", 1), ("late_return", 3), ("battery_fault", 1),
                 ("battery_wear", 1))
_SLOT_KINDS = frozenset({"charger_dies", "overpower", "late_return", "battery_fault", "battery_wear"})


@dataclass(frozen=True, slots=True)
class CabinetSpec:
    site: str
    cabinet: str
    model: str  # a shipped model name, or DOOR_ONLY's name (loaded from a temp file)
    kind: str  # "power" (slot meters, door contact), "presence" (+ presence inputs), "door"
    slots: int
    seed: int
    policy: str  # the school's: "shared_pool" or "one_to_one"

    @property
    def asset_prefix(self) -> str:
        return f"{self.site.upper()}-{self.cabinet[-1]}-"


@dataclass(frozen=True, slots=True)
class Incident:
    """Something injected into one cabinet: ``start`` to ``end`` (UTC). ``slot`` is chosen when it
    starts for charger_dies and overpower (a slot that charges then), else fixed here."""

    id: int
    kind: str
    site: str
    cabinet: str
    start: datetime
    end: datetime
    slot: int | None = None
    device: str | None = None


@dataclass
class World:
    org: Organisation
    calendars: Calendars
    cabinets: list[CabinetSpec]
    incidents: list[Incident]
    start: datetime  # UTC, scoring starts here (after warm_up)
    end: datetime
    warm_up: timedelta
    tmp: Path
    door_only_path: Path
    days_off_sites: list[str] = field(default_factory=list)

    @property
    def sim_start(self) -> datetime:
        return self.start - self.warm_up


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(UTC)


def build_world(tmp: Path, *, weeks: int = 10, cabinets: int = 138, schools: int = 23,
                municipalities: int = 10, seed: int = 1, incidents_per_cabinet: float = 4.0,
                first_day: date = date(2026, 9, 14)) -> World:
    """``cabinets`` in ``schools`` (the first three one-to-one pilots), ``weeks`` from Monday
    ``first_day`` (default: 2026-09-14 .. 11-22, with the Saarland autumn break 10-05 .. 10-16)."""
    rng = random.Random(f"alert-quality:{seed}")
    door_only = tmp / "ladewache-16-door.toml"
    door_only.write_text(DOOR_ONLY_MODEL, encoding="utf-8")
    days_off = tmp / "school-days-off.ics"
    days_off.write_text(SCHOOL_DAYS_OFF, encoding="utf-8")
    schools = max(1, min(schools, cabinets))
    municipalities = max(1, min(municipalities, schools))

    # Hardware: 60 % power-only (8/16/32 slots), 30 % presence inputs, 10 % door only.
    n_door = max(1, round(cabinets * 0.1))
    n_presence = max(1, round(cabinets * 0.3))
    n_power = cabinets - n_door - n_presence
    power_models = ["ladewache-8", "ladewache-16", "ladewache-16", "ladewache-32"]
    kinds = (["door"] * n_door + ["presence"] * n_presence
             + [f"power:{power_models[i % 4]}" for i in range(n_power)])
    rng.shuffle(kinds)
    policies = ["one_to_one" if s < 3 else "shared_pool" for s in range(schools)]
    days_off_sites = [f"s{s:02d}" for s in range(schools) if s % 5 == 4]
    specs: list[CabinetSpec] = []
    for n in range(cabinets):
        school = n % schools
        site = f"s{school:02d}"
        kind = kinds[n]
        if kind == "door":
            model, short, slots = "ladewache-16-door", "door", 16
        elif kind == "presence":
            model, short, slots = "ladewache-16-presence", "presence", 16
        else:
            model, short = kind.split(":")[1], "power"
            slots = int(model.split("-")[1])
        specs.append(CabinetSpec(site, f"k{n // schools + 1}", model, short, slots,
                                 seed * 1_000_003 + n, policies[school]))

    org = Organisation.model_validate({
        "district": "Landkreis Bench", "timezone": "Europe/Berlin", "state": "SL",
        "school_holidays": [str(HOLIDAYS)], "district_team": "kreis-it",
        "teams": [{"id": "kreis-it", "name": "Kreis-IT", "contacts": {"email": ["it@kreis.example"]}},
                  *({"id": f"team{m}", "name": f"IT Gemeinde {m}",
                     "contacts": {"email": [f"it{m}@gemeinde.example"]}}
                    for m in range(0, municipalities, 2))],
        "municipalities": [{"id": f"m{m}", "name": f"Gemeinde {m}",
                            **({"team": f"team{m}"} if m % 2 == 0 else {})}
                           for m in range(municipalities)],
        "schools": [{"site": f"s{s:02d}", "name": f"Schule {s}", "municipality": f"m{s % municipalities}",
                     "policy": policies[s],
                     "contacts": {"email": [f"sekretariat{s}@schule.example"]},
                     **({"calendars": [str(days_off)]} if f"s{s:02d}" in days_off_sites else {})}
                    for s in range(schools)],
        "cabinets": [{"school": c.site, "id": c.cabinet,
                      "slots": {i: f"{c.asset_prefix}{i:03d}" for i in range(1, c.slots + 1)}}
                     for c in specs],
    })
    calendars = Calendars(ZONE, "SL", [HOLIDAYS], {s: [days_off] for s in days_off_sites})
    start = _local(first_day, time(0, 0))
    end = _local(first_day + timedelta(days=7 * weeks), time(0, 0))
    plan = _plan_incidents(rng, specs, calendars, first_day, 7 * weeks, incidents_per_cabinet)
    return World(org, calendars, specs, plan, start, end, timedelta(days=1), tmp, door_only,
                 days_off_sites)


def _plan_incidents(rng: random.Random, specs: list[CabinetSpec], calendars: Calendars,
                    first_day: date, days: int, per_cabinet: float) -> list[Incident]:
    kinds, weights = zip(*_KIND_WEIGHTS, strict=True)
    incidents: list[Incident] = []
    for spec in specs:
        calendar = calendars.for_site(spec.site)
        school_days = [first_day + timedelta(days=d) for d in range(days)
                       if calendar.is_school_day(first_day + timedelta(days=d))]
        count = int(per_cabinet) + (1 if rng.random() < per_cabinet % 1 else 0)
        taken: set[date] = set()
        for _ in range(count):
            kind = rng.choices(kinds, weights)[0]
            # Late in the term a battery cannot show its wear any more (5 baseline charges first).
            pool = school_days[8:-12] if kind == "battery_wear" else school_days[:-1]
            free = [d for d in pool if d not in taken]
            if not free:
                continue
            day = rng.choice(free)
            taken.add(day)
            incidents.append(_incident(rng, len(incidents), kind, spec, day, calendar))
    incidents.sort(key=lambda i: i.start)
    return [Incident(n, i.kind, i.site, i.cabinet, i.start, i.end, i.slot, i.device)
            for n, i in enumerate(incidents)]


def _incident(rng: random.Random, n: int, kind: str, spec: CabinetSpec, day: date,
              calendar: object) -> Incident:
    minutes = rng.randrange(0, 50)
    # Slot incidents need a charging iPad: after the last return window in shared-pool schools,
    # after the morning deposit in one-to-one schools (their iPads go home after lessons).
    charging_at = time(8, 20) if spec.policy == "one_to_one" else time(15, 20)
    slot = rng.randrange(1, spec.slots + 1) if kind in _SLOT_KINDS else None
    device = None
    if kind == "door_left_open":  # during lessons, away from the return windows
        start, length = _local(day, time(9, 0)) + timedelta(minutes=minutes), rng.randrange(25, 90)
    elif kind == "door_after_hours":
        weekend = day + timedelta(days=(5 - day.weekday()) % 7 or 7)
        when = _local(weekend, time(10, 0)) if rng.random() < 0.3 else _local(day, time(18, 30))
        start, length = when + timedelta(minutes=minutes), rng.randrange(20, 120)
    elif kind == "agent_offline":
        start, length = _local(day, time(rng.randrange(0, 24), 0)) + timedelta(minutes=minutes), \
            rng.randrange(10, 240)
    elif kind == "device_dead":
        device = "climate" if spec.kind == "door" else ("meter_a" if spec.slots == 32 else "meter")
        start, length = _local(day, time(rng.randrange(8, 20), 0)) + timedelta(minutes=minutes), \
            rng.randrange(20, 180)
    elif kind == "mains_off":  # inside the charging window (15:00-07:00)
        start, length = _local(day, time(19, 0)) + timedelta(minutes=minutes), rng.randrange(30, 180)
    elif kind == "over_temperature":
        start, length = _local(day, time(17, 0)) + timedelta(minutes=minutes), rng.randrange(30, 90)
    elif kind == "charger_dies":  # right after the last return window, when slots charge
        start, length = _local(day, charging_at), 19 * 60 + rng.randrange(0, 60)
    elif kind == "overpower":
        start, length = _local(day, charging_at), rng.randrange(30, 120)
    elif kind == "late_return":  # a flat iPad brought back at 06:00: charging at the 07:00 check
        start, length = _local(day, time(6, 0)), 120
    elif kind == "battery_fault":  # a battery that never gets full
        start, length = _local(day, charging_at), 22 * 60
    else:  # battery_wear: from now on the battery holds 70 %
        start, length = _local(day, time(12, 0)), 60 * 24 * 365
    return Incident(n, kind, spec.site, spec.cabinet, start, start + timedelta(minutes=length),
                    slot, device)
