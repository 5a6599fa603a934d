"""Times and durations as people at a school read them: local time (the organisation's zone,
Europe/Berlin), German day and month names by default. No locale is switched (``strftime``'s
names depend on the process's locale), so the names are spelled out here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from cabinet_agent.durations import duration_text

from ..i18n import DEFAULT_LANGUAGE, Language

__all__ = ["LocalTimes", "duration_text", "long_time", "short_time"]

_DAYS: Final[dict[Language, tuple[str, ...]]] = {
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_DAYS_SHORT: Final[dict[Language, tuple[str, ...]]] = {
    "de": ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}
_MONTHS: Final[dict[Language, tuple[str, ...]]] = {
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
}
_NONE: Final = "–"


def short_time(moment: datetime | None, zone: ZoneInfo, now: datetime,
               lang: Language = DEFAULT_LANGUAGE) -> str:
    """``Di 13:05`` within the last six days (the weekday is then unambiguous), else
    ``Di 24.11. 13:05`` (this year) or ``Di 24.11.2025 13:05``; English ``Tue 13:05``,
    ``Tue 24 Nov 13:05``. A naive time is taken as UTC."""
    if moment is None:
        return _NONE
    local, today = _local(moment, zone), _local(now, zone)
    day = _DAYS_SHORT[lang][local.weekday()]
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if 0 <= (today.date() - local.date()).days <= 6:
        return f"{day} {clock}"
    if lang == "de":
        year = "" if local.year == today.year else str(local.year)
        return f"{day} {local.day:02d}.{local.month:02d}.{year} {clock}"
    year = "" if local.year == today.year else f" {local.year}"
    return f"{day} {local.day} {_MONTHS['en'][local.month - 1][:3]}{year} {clock}"


def long_time(moment: datetime | None, zone: ZoneInfo, lang: Language = DEFAULT_LANGUAGE) -> str:
    """``Dienstag, 1. Dezember 2026, 13:05 Uhr``; English ``Tuesday, 1 December 2026, 13:05``."""
    if moment is None:
        return _NONE
    local = _local(moment, zone)
    day, month = _DAYS[lang][local.weekday()], _MONTHS[lang][local.month - 1]
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if lang == "de":
        return f"{day}, {local.day}. {month} {local.year}, {clock} Uhr"
    return f"{day}, {local.day} {month} {local.year}, {clock}"


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(zone)


@dataclass(frozen=True, slots=True)
class LocalTimes:
    """What a page needs to show times: the zone, the language and the page's now."""

    zone: ZoneInfo
    lang: Language
    now: datetime

    def short(self, moment: datetime | None) -> str:
        return short_time(moment, self.zone, self.now, self.lang)

    def long(self, moment: datetime | None) -> str:
        return long_time(moment, self.zone, self.lang)

    def duration(self, seconds: float) -> str:
        return duration_text(seconds, self.lang)
