"""When an alert may be told: each rule's cadence as data, and the school day it can be bound to.

Not every alert is news at every hour. An iPad not returned or not charged is the school's
business on a school day: told on a Saturday it is stale by Monday, and people learn to ignore a
system that writes to them on holidays. A door open at night, heat or a cabinet without power is
a safety matter and must be told at once, any day. Everything else keeps the plain grouping and
repeat timing. The notifier (``server.notify.dispatch``) asks ``cadence_of`` and, for school-day
alerts, ``SchoolDayGate.is_open``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from server.org import Organisation, SchoolConfig
from server.schoolcal import Calendars

__all__ = ["CADENCES", "Cadence", "SchoolDayGate", "cadence_of"]


class Cadence(StrEnum):
    SCHOOL_DAY = "school_day"  # told and repeated only inside a school day (SchoolDayGate)
    SAFETY = "safety"  # 24/7, and its group is flushed at once, without group_wait/interval
    NORMAL = "normal"  # 24/7 with the ordinary group_wait, group_interval and repeat_interval


CADENCES: Final[Mapping[str, Cadence]] = MappingProxyType({
    "ipad_not_returned": Cadence.SCHOOL_DAY,
    "ipad_not_charged": Cadence.SCHOOL_DAY,
    "ipad_not_charging": Cadence.SCHOOL_DAY,
    "door_open_after_hours": Cadence.SAFETY,
    "over_temperature": Cadence.SAFETY,
    "temperature_rise": Cadence.SAFETY,
    "mains_lost": Cadence.SAFETY,
    "cabinet_offline": Cadence.SAFETY,
})
"""Alert names (the ``alertname`` label) whose cadence is not ``NORMAL``."""


def cadence_of(alertname: str) -> Cadence:
    """The cadence of a rule; ``NORMAL`` for every name not in ``CADENCES`` (a new rule is
    neither held back nor rushed until someone decides it should be)."""
    return CADENCES.get(alertname, Cadence.NORMAL)


# A site without a school in the config has no hours: its school day begins at 07:00 and ends at
# 18:00 local time.
_UNCONFIGURED_START: Final = time(7, 0)
_UNCONFIGURED_END: Final = time(18, 0)
# After a school's last fixed time of the day (end of lessons, its last return check) its
# school-day alerts are still told for this long: an iPad missing at the 16:30 check is told at
# 16:35, while someone can still look for it. Later in the evening nobody acts before the next
# school day; what arises then waits for it and is told only if it still holds. (GUESS)
_EVENING: Final = timedelta(hours=2)


def school_day_window(school: SchoolConfig | None) -> tuple[time, time]:
    """The local times between which a school day's alerts are told: from the start of lessons
    to ``_EVENING`` after the end of lessons or the last return check, whichever is later."""
    if school is None:
        return _UNCONFIGURED_START, _UNCONFIGURED_END
    latest = max((school.hours.end, *school.return_check))
    end = datetime.combine(datetime.min.date(), latest) + _EVENING
    if end.date() > datetime.min.date():  # would pass midnight: the whole evening
        return school.hours.start, time.max
    return school.hours.start, end.time()


class SchoolDayGate:
    """Whether a site's school-day alerts may be told now: on a school day of its calendar
    (no weekend, public holiday or ICS day off), inside ``school_day_window``, local time."""

    def __init__(self, org: Organisation, calendars: Calendars) -> None:
        self._org = org
        self._calendars = calendars

    def is_open(self, site: str, now: datetime) -> bool:
        calendar = self._calendars.for_site(site)
        local = calendar.local(now)
        if not calendar.is_school_day(local.date()):
            return False
        start, end = school_day_window(self._org.school(site))
        return start <= local.time() < end
