"""Dates, times, numbers and durations as people at a school read them, through Babel (CLDR).

One layer for every surface that people read: alert sentences, e-mails, chat and webhook texts,
the dashboard and CSV exports. Times are shown in the organisation's zone (``Europe/Berlin`` by
default), German by default, English on request. Machine fields (labels, the webhook's ISO
timestamps) never pass through here. A naive time is taken as UTC, as everywhere in the server.

The agent never imports this (Babel is a server dependency); its ``cabinet_agent.common.durations``
stays for its own ``check-config``.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.numbers import format_decimal
from babel.units import format_unit

__all__ = [
    "DEFAULT_ZONE",
    "NONE",
    "ago",
    "csv_time",
    "date_time",
    "day",
    "duration",
    "local",
    "long_time",
    "number",
    "short_time",
    "since",
    "span",
]

# The same values as ``server.i18n.Language``; spelled here so that i18n can import this module.
Language = Literal["de", "en"]
DEFAULT_LANGUAGE: Final[Language] = "de"
DEFAULT_ZONE: Final = ZoneInfo("Europe/Berlin")
NONE: Final = "–"  # what a missing time is shown as

# CLDR patterns: ``ccc`` is the stand-alone short weekday ("Di", "Tue": no dot after it).
_DATE_TIME: Final[dict[Language, str]] = {"de": "ccc dd.MM.yyyy, HH:mm", "en": "ccc d MMM yyyy, HH:mm"}
_LONG: Final[dict[Language, str]] = {"de": "EEEE, d. MMMM y, HH:mm 'Uhr'",
                                     "en": "EEEE, d MMMM y, HH:mm"}
# Spreadsheets read these as date-times (German Excel "01.12.2026 13:05"); as the missing list's.
_CSV: Final[dict[Language, str]] = {"de": "dd.MM.yyyy HH:mm", "en": "d MMM yyyy HH:mm"}
_JUST_NOW: Final[dict[Language, tuple[str, str]]] = {"de": ("seit gerade eben", "gerade eben"),
                                                     "en": ("just now", "just now")}
_SINCE: Final[dict[Language, str]] = {"de": "seit {}", "en": "for {}"}


@functools.cache
def _locale(lang: Language) -> Locale:
    return Locale.parse("de_DE" if lang == "de" else "en_GB")


def local(moment: datetime, zone: ZoneInfo = DEFAULT_ZONE) -> datetime:
    """``moment`` in ``zone``; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def _format(moment: datetime, pattern: str, zone: ZoneInfo, lang: Language) -> str:
    return format_datetime(local(moment, zone), pattern, locale=_locale(lang))


def date_time(moment: datetime | None, zone: ZoneInfo = DEFAULT_ZONE,
              lang: Language = DEFAULT_LANGUAGE) -> str:
    """A point in time that stays readable in a mail read later: ``Di 01.12.2026, 13:05``,
    English ``Tue 1 Dec 2026, 13:05``."""
    return NONE if moment is None else _format(moment, _DATE_TIME[lang], zone, lang)


def day(value: date, lang: Language = DEFAULT_LANGUAGE) -> str:
    """A calendar day: ``02.12.2026``, English ``2 Dec 2026``."""
    return format_date(value, "dd.MM.yyyy" if lang == "de" else "d MMM yyyy", locale=_locale(lang))


def short_time(moment: datetime | None, zone: ZoneInfo, now: datetime,
               lang: Language = DEFAULT_LANGUAGE) -> str:
    """``Di 13:05`` within the last six days (the weekday is then unambiguous), else
    ``Di 24.11. 13:05`` (this year) or ``Di 24.11.2025 13:05``; English ``Tue 13:05``,
    ``Tue 24 Nov 13:05``, ``Tue 24 Nov 2025 13:05``."""
    if moment is None:
        return NONE
    when, today = local(moment, zone), local(now, zone)
    if 0 <= (today.date() - when.date()).days <= 6:
        pattern = "ccc HH:mm"
    elif lang == "de":
        pattern = "ccc dd.MM. HH:mm" if when.year == today.year else "ccc dd.MM.yyyy HH:mm"
    else:
        pattern = "ccc d MMM HH:mm" if when.year == today.year else "ccc d MMM yyyy HH:mm"
    return _format(when, pattern, zone, lang)


def long_time(moment: datetime | None, zone: ZoneInfo = DEFAULT_ZONE,
              lang: Language = DEFAULT_LANGUAGE) -> str:
    """``Dienstag, 1. Dezember 2026, 13:05 Uhr``; English ``Tuesday, 1 December 2026, 13:05``."""
    return NONE if moment is None else _format(moment, _LONG[lang], zone, lang)


def csv_time(moment: datetime | None, zone: ZoneInfo = DEFAULT_ZONE,
             lang: Language = DEFAULT_LANGUAGE) -> str:
    """A local time a spreadsheet of that language reads as a date-time; empty when unknown."""
    return "" if moment is None else _format(moment, _CSV[lang], zone, lang)


def _elapsed(moment: datetime, now: datetime) -> timedelta:
    # Never negative: a time after ``now`` (a pending alert's start, a clock ahead) is "now",
    # so no text ever says "seit" something that has not happened.
    return max(local(now) - local(moment), timedelta(0))


def since(moment: datetime, now: datetime, lang: Language = DEFAULT_LANGUAGE) -> str:
    """``seit 2 Std.``, English ``for 2 hr``; ``seit gerade eben`` under a minute or in the future."""
    elapsed = _elapsed(moment, now)
    if elapsed < timedelta(minutes=1):
        return _JUST_NOW[lang][0]
    return _SINCE[lang].format(format_timedelta(elapsed, format="short", locale=_locale(lang)))


def span(start: datetime, end: datetime, lang: Language = DEFAULT_LANGUAGE) -> str:
    """How long from ``start`` to ``end``, in words: ``17 Minuten``, ``2 Stunden``, ``25 Stunden``
    (English ``17 minutes``); at least ``1 Minute``."""
    elapsed = max(_elapsed(start, end), timedelta(minutes=1))
    return format_timedelta(elapsed, threshold=1.1, locale=_locale(lang))


def ago(moment: datetime, now: datetime, lang: Language = DEFAULT_LANGUAGE) -> str:
    """``vor 5 Min.``, English ``5 min ago``; ``gerade eben`` under a minute or in the future."""
    elapsed = _elapsed(moment, now)
    if elapsed < timedelta(minutes=1):
        return _JUST_NOW[lang][1]
    return format_timedelta(-elapsed, format="short", add_direction=True, locale=_locale(lang))


def number(value: float, lang: Language = DEFAULT_LANGUAGE, digits: int = 1,
           grouping: bool = True) -> str:
    """``1.234,5`` (German: decimal comma, thousands dot), English ``1,234.5``; at most ``digits``
    decimals, none shown when they are zero. ``grouping=False`` for cells a spreadsheet parses."""
    pattern = ("#,##0" if grouping else "0") + ("." + "#" * digits if digits > 0 else "")
    return format_decimal(value, format=pattern, locale=_locale(lang))


def duration(seconds: float, lang: Language = DEFAULT_LANGUAGE) -> str:
    """``5 Tage``, ``2,5 Tage``, ``12 Stunden`` (English ``5 days``): days from one day on, hours
    below, one decimal at most (the same reading as ``cabinet_agent.common.durations``)."""
    days = seconds / 86400
    value, unit = (days, "duration-day") if days >= 1 else (max(seconds / 3600, 0.0), "duration-hour")
    rounded = round(value, 1)
    # An integral value as int: CLDR's plural rules read "1.0" as plural ("1,0 Tage").
    amount: float = int(rounded) if rounded == int(rounded) else rounded
    return format_unit(amount, unit, length="long", locale=_locale(lang))
