"""Sum each local day up per slot and cabinet: what the school reports add (``daily_slots``,
``daily_cabinets``). A day is rolled up once it is over; the reports roll up the days they need
that are missing, and a nightly pass does yesterday.

Per slot and school day, the slot's state (from ``slot_changes``) at two moments of its school:
* **ready** at the start of school hours (``hours`` start, e.g. 07:30): charged (certain or
  probable) is ready; empty, charging, present-but-idle or a charge fault is not; unknown is not
  counted. Shared-pool schools only: a one-to-one school's iPads come from home in the morning.
* **returned** at the last return check of the day (16:30; a one-to-one school's 08:30): any iPad
  in the slot is returned, an empty slot is not; unknown is not counted.
Both only where the inventory had an iPad in the slot then (the tag recorded with the state).
Sessions and energy: the charge sessions that ended that day. A cabinet's availability: the
seconds it was online out of the seconds its status was known.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, case, delete, func, insert, select

from cabinet_agent.common.protocol import SlotState

from ..org import Organisation, Policy, SchoolConfig
from ..schoolcal import Calendars
from ..store.schema import (
    cabinet_changes,
    charge_sessions,
    daily_cabinets,
    daily_schools,
    daily_slots,
    rollup_days,
    slot_changes,
)

__all__ = ["Rollups", "is_ready", "is_returned"]

_NOT_READY = frozenset({SlotState.EMPTY, SlotState.CHARGING, SlotState.PRESENT_IDLE,
                        SlotState.FAULT})


def is_ready(state: SlotState) -> int | None:
    if state is SlotState.CHARGED:
        return 1
    return 0 if state in _NOT_READY else None


def is_returned(state: SlotState) -> int | None:
    if state is SlotState.UNKNOWN:
        return None
    return 0 if state is SlotState.EMPTY else 1


@dataclass(frozen=True, slots=True)
class _Probe:
    day: date
    school_day: bool
    ready_at: datetime | None  # UTC; None: not asked
    return_at: datetime | None


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone).astimezone(UTC)


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return _at(day, time(0), zone), _at(day + timedelta(days=1), time(0), zone)


class Rollups:
    def __init__(self, engine: Engine, org: Organisation, calendars: Calendars) -> None:
        self._engine = engine
        self._org = org
        self._calendars = calendars
        self._zone = org.zone
        self._schools = {s.site: s for s in org.schools}

    def _probes(self, site: str, days: list[date]) -> list[_Probe]:
        school = self._schools.get(site) or SchoolConfig(site=site, name=site, municipality="")
        calendar = self._calendars.for_site(site)
        probes = []
        for day in days:
            school_day = calendar.is_school_day(day)
            ready = (_at(day, school.hours.start, self._zone)
                     if school_day and school.policy is Policy.SHARED_POOL else None)
            back = _at(day, school.return_check[-1], self._zone) if school_day else None
            probes.append(_Probe(day, school_day, ready, back))
        return probes

    def missing(self, site: str, first: date, last: date) -> list[date]:
        """The days from ``first`` to ``last`` not rolled up yet for this school."""
        r = rollup_days.c
        with self._engine.connect() as db:
            done = set(db.scalars(select(r.day).where(r.site == site, r.day >= first,
                                                      r.day <= last)))
        days, day = [], first
        while day <= last:
            if day not in done:
                days.append(day)
            day += timedelta(days=1)
        return days

    def compute(self, site: str, days: Iterable[date], now: datetime) -> int:
        """Roll these (past) days of one school up, replacing what was there; returns the slot
        rows written."""
        days = sorted(set(days))
        if not days:
            return 0
        start, _ = _day_bounds(days[0], self._zone)
        _, end = _day_bounds(days[-1], self._zone)
        written = 0
        with self._engine.begin() as db:
            for cabinet in self._cabinets(db, site, end):
                written += self._cabinet(db, site, cabinet, days, start, end)
            self._summarise(db, site, days)
            r = rollup_days.c
            db.execute(delete(rollup_days).where(r.site == site, r.day.in_(days)))
            db.execute(insert(rollup_days), [{"day": d, "site": site, "computed_at": now}
                                             for d in days])
        return written

    def ensure(self, sites: Iterable[str], first: date, last: date, now: datetime) -> int:
        """Roll up the days of ``first``..``last`` that are over and not rolled up yet, for these
        schools (a report asks for its own: at 80,000 cabinets one school costs one school)."""
        last = min(last, now.astimezone(self._zone).date() - timedelta(days=1))
        if last < first:
            return 0
        sites = list(sites)
        r = rollup_days.c
        with self._engine.connect() as db:  # one query: which schools lack some day
            complete = {site for site, count in db.execute(
                select(r.site, func.count()).where(r.site.in_(sites), r.day >= first,
                                                   r.day <= last).group_by(r.site))
                if count == (last - first).days + 1}
        return sum(self.compute(site, self.missing(site, first, last), now)
                   for site in sites if site not in complete)

    def sites(self) -> list[str]:
        """Every school with a recorded change (the organisation's and any other)."""
        s, c = slot_changes.c, cabinet_changes.c
        with self._engine.connect() as db:
            found = set(db.scalars(select(s.site).distinct()))
            found |= set(db.scalars(select(c.site).distinct()))
        return sorted(found | set(self._schools))

    def _cabinets(self, db: Any, site: str, end: datetime) -> list[str]:
        s, c = slot_changes.c, cabinet_changes.c
        found = set(db.scalars(select(s.cabinet).where(s.site == site, s.at < end).distinct()))
        found |= set(db.scalars(select(c.cabinet).where(c.site == site, c.at < end).distinct()))
        return sorted(found)

    def _cabinet(self, db: Any, site: str, cabinet: str, days: list[date], start: datetime,
                 end: datetime) -> int:
        s = slot_changes.c
        by_slot: dict[int, tuple[list[datetime], list[tuple[SlotState, str | None]]]] = \
            defaultdict(lambda: ([], []))
        for row in db.execute(select(s.slot, s.at, s.state, s.asset_tag).where(
                s.site == site, s.cabinet == cabinet, s.at < end).order_by(s.slot, s.at, s.id)):
            times, values = by_slot[row.slot]
            times.append(row.at)
            values.append((SlotState(row.state), row.asset_tag))
        energy: dict[tuple[int, date], list[float]] = defaultdict(lambda: [0, 0.0])
        cs = charge_sessions.c
        for row in db.execute(select(cs.slot, cs.ended_at, cs.energy_wh).where(
                cs.site == site, cs.cabinet == cabinet, cs.ended_at >= start, cs.ended_at < end)):
            day = row.ended_at.astimezone(self._zone).date()
            total = energy[(row.slot, day)]
            total[0] += 1
            total[1] += row.energy_wh
        probes = self._probes(site, days)

        def state_at(slot: int, moment: datetime | None) -> tuple[SlotState, str | None] | None:
            times, values = by_slot[slot]
            if moment is None:
                return None
            index = bisect_right(times, moment)
            return values[index - 1] if index else None

        rows = []
        for slot in sorted(by_slot):
            for probe in probes:
                ready = returned = None
                tag = None
                at_ready = state_at(slot, probe.ready_at)
                if at_ready is not None and at_ready[1]:
                    ready, tag = is_ready(at_ready[0]), at_ready[1]
                at_return = state_at(slot, probe.return_at)
                if at_return is not None and at_return[1]:
                    returned, tag = is_returned(at_return[0]), at_return[1]
                sessions, wh = energy.get((slot, probe.day), (0, 0.0))
                if tag is None:
                    current = state_at(slot, _day_bounds(probe.day, self._zone)[1])
                    tag = current[1] if current else None
                rows.append({"day": probe.day, "site": site, "cabinet": cabinet, "slot": slot,
                             "asset_tag": tag, "school_day": int(probe.school_day),
                             "ready": ready, "returned": returned, "sessions": int(sessions),
                             "energy_wh": float(wh)})
        db.execute(delete(daily_slots).where(and_(daily_slots.c.site == site,
                                                  daily_slots.c.cabinet == cabinet,
                                                  daily_slots.c.day.in_(days))))
        if rows:
            db.execute(insert(daily_slots), rows)
        self._availability(db, site, cabinet, days, end)
        return len(rows)

    def _availability(self, db: Any, site: str, cabinet: str, days: list[date],
                      end: datetime) -> None:
        c = cabinet_changes.c
        changes = [(row.at, row.status) for row in db.execute(
            select(c.at, c.status).where(c.site == site, c.cabinet == cabinet, c.at < end)
            .order_by(c.at, c.id))]
        rows = []
        for day in days:
            day_start, day_end = _day_bounds(day, self._zone)
            online = known = 0.0
            for index, (at, status) in enumerate(changes):
                until = changes[index + 1][0] if index + 1 < len(changes) else day_end
                lo, hi = max(at, day_start), min(until, day_end)
                if hi <= lo:
                    continue
                seconds = (hi - lo).total_seconds()
                if status != "unknown":
                    known += seconds
                if status == "online":
                    online += seconds
            rows.append({"day": day, "site": site, "cabinet": cabinet, "online_s": online,
                         "known_s": known})
        db.execute(delete(daily_cabinets).where(and_(daily_cabinets.c.site == site,
                                                     daily_cabinets.c.cabinet == cabinet,
                                                     daily_cabinets.c.day.in_(days))))
        db.execute(insert(daily_cabinets), rows)

    def summarise(self, sites: Iterable[str], days: Iterable[date]) -> None:
        """The schools' ``daily_schools`` rows from their slots' and cabinets' roll-ups."""
        days = sorted(set(days))
        with self._engine.begin() as db:
            for site in sites:
                self._summarise(db, site, days)

    def _summarise(self, db: Any, site: str, days: list[date]) -> None:
        d, c = daily_slots.c, daily_cabinets.c
        sums = {row.day: row for row in db.execute(
            select(d.day, func.max(d.school_day).label("school_day"),
                   func.sum(case((d.ready == 1, 1), else_=0)).label("ready"),
                   func.count(d.ready).label("ready_known"),
                   func.sum(case((d.returned == 0, 1), else_=0)).label("not_returned"),
                   func.count(d.returned).label("return_known"),
                   func.sum(d.sessions).label("sessions"), func.sum(d.energy_wh).label("energy_wh"))
            .where(d.site == site, d.day.in_(days)).group_by(d.day))}
        online = {row.day: row for row in db.execute(
            select(c.day, func.sum(c.online_s).label("online_s"),
                   func.sum(c.known_s).label("known_s"))
            .where(c.site == site, c.day.in_(days)).group_by(c.day))}
        calendar = self._calendars.for_site(site)
        rows = []
        for day in days:
            s, o = sums.get(day), online.get(day)
            rows.append({
                "day": day, "site": site,
                "school_day": int(s.school_day) if s else int(calendar.is_school_day(day)),
                "ready": int(s.ready or 0) if s else 0, "ready_known": int(s.ready_known) if s else 0,
                "not_returned": int(s.not_returned or 0) if s else 0,
                "return_known": int(s.return_known) if s else 0,
                "sessions": int(s.sessions or 0) if s else 0,
                "energy_wh": float(s.energy_wh or 0.0) if s else 0.0,
                "online_s": float(o.online_s or 0.0) if o else 0.0,
                "known_s": float(o.known_s or 0.0) if o else 0.0})
        db.execute(delete(daily_schools).where(daily_schools.c.site == site,
                                               daily_schools.c.day.in_(days)))
        if rows:
            db.execute(insert(daily_schools), rows)

    def prune(self, keep_days: int, now: datetime) -> None:
        cutoff = now.astimezone(self._zone).date() - timedelta(days=keep_days)
        with self._engine.begin() as db:
            for table in (daily_slots, daily_cabinets, daily_schools, rollup_days):
                db.execute(delete(table).where(table.c.day < cutoff))
