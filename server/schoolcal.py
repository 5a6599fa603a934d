"""The school calendar as data: weekends, public holidays (python-holidays) and days off from ICS files.

ICS files are parsed with ``icalendar`` and recurrences expanded with ``recurring-ical-events``; every
date an event touches is a day without school (an all-day event's DTEND is exclusive, as RFC 5545
says). Rules ask one question, ``is_school_day``, and one derived one, ``last_check``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import holidays
import icalendar
import recurring_ical_events

from .errors import ConfigError

__all__ = ["Calendars", "SchoolCalendar", "load_ics_days"]

# Recurring events are expanded over this range; far enough for any school calendar.
_EXPAND_FROM: Final = date(2000, 1, 1)
_EXPAND_TO: Final = date(2100, 1, 1)
# How far back ``last_check`` looks for a school day (covers the longest summer holiday).
_LOOKBACK_DAYS: Final = 60


def load_ics_days(path: Path) -> dict[date, str]:
    """Every date an event in the file touches, with the event's summary; ConfigError if unreadable."""
    try:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read calendar: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid ICS file: {exc}") from exc
    days: dict[date, str] = {}
    for event in recurring_ical_events.of(calendar).between(_EXPAND_FROM, _EXPAND_TO):
        start = event.get("DTSTART")
        if start is None:
            continue
        first = _as_date(start.dt)
        end = event.get("DTEND")
        if end is not None:
            last_exclusive = end.dt
            if isinstance(last_exclusive, datetime):
                # A timed event ends on the day of its end (unless exactly at midnight).
                last = (last_exclusive - timedelta(microseconds=1)).date()
            else:
                last = last_exclusive - timedelta(days=1)
        else:
            last = first
        summary = str(event.get("SUMMARY", "")) or path.stem
        day = first
        while day <= max(first, last):
            days.setdefault(day, summary)
            day += timedelta(days=1)
    return days


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


MONDAY_TO_FRIDAY: Final = frozenset(range(5))  # date.weekday(): Monday is 0


class SchoolCalendar:
    """Whether a date is a school day, and local-time helpers for one school."""

    def __init__(self, zone: ZoneInfo, public: Mapping[date, str] | holidays.HolidayBase,
                 days_off: Mapping[date, str], weekdays: frozenset[int] = MONDAY_TO_FRIDAY) -> None:
        self.zone = zone
        self._public = public
        self._days_off = days_off
        self._weekdays = weekdays

    def no_school_reason(self, day: date) -> str | None:
        """None on a school day, otherwise why not ("weekend", the holiday's name)."""
        if day.weekday() not in self._weekdays:
            return "weekend"
        name = self._public.get(day)
        if name:
            return str(name)
        return self._days_off.get(day)

    def is_school_day(self, day: date) -> bool:
        return self.no_school_reason(day) is None

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def last_check(self, now: datetime, at: time | Sequence[time]) -> datetime | None:
        """The latest moment ≤ now that is ``at`` (local time; one time or several a day) on a
        school day, within the last 60 days; None if there is none (a long holiday)."""
        times = sorted((at,) if isinstance(at, time) else at, reverse=True)
        local_now = self.local(now)
        day = local_now.date()
        for _ in range(_LOOKBACK_DAYS):
            if self.is_school_day(day):
                for moment_of_day in times:
                    moment = datetime.combine(day, moment_of_day, tzinfo=self.zone)
                    if moment <= local_now:
                        return moment
            day -= timedelta(days=1)
        return None


class Calendars:
    """One calendar per school: the district's holidays plus the school's own ICS files."""

    def __init__(self, zone: ZoneInfo, state: str, district_files: Iterable[Path],
                 school_files: Mapping[str, Iterable[Path]] | None = None, *,
                 weekdays: frozenset[int] = MONDAY_TO_FRIDAY, public_holidays: bool = True) -> None:
        """``weekdays``: the days of the week with school (``date.weekday()``, Monday 0);
        ``public_holidays``: whether the state's public holidays are days off (always, except in
        a demonstration that must work every day)."""
        try:
            public: Mapping[date, str] | holidays.HolidayBase = holidays.country_holidays(
                "DE", subdiv=state)
        except NotImplementedError as exc:
            raise ConfigError(f"organisation.state: unknown German state {state!r}") from exc
        if not public_holidays:
            public = {}
        district: dict[date, str] = {}
        for path in district_files:
            district.update(load_ics_days(path))
        self._default = SchoolCalendar(zone, public, district, weekdays)
        self._schools: dict[str, SchoolCalendar] = {}
        for site, files in (school_files or {}).items():
            own = dict(district)
            for path in files:
                own.update(load_ics_days(path))
            self._schools[site] = SchoolCalendar(zone, public, own, weekdays)

    def for_site(self, site: str) -> SchoolCalendar:
        return self._schools.get(site, self._default)
