"""The monthly school report by e-mail: each school whose contacts have e-mail addresses gets last
month's figures (``server.history``: readiness at school start, iPads not returned, charge
sessions, energy and its cost, cabinet availability, the worn batteries) once a month.

When: on a school day of the site's calendar from ``[notify] digest_time`` on, the report on the
previous calendar month is due; so it goes out on the month's first school day, at the digest's
time (Tuesday 1 December 2026 at 07:15 for November; Monday 4 January 2027 after New Year and a
weekend for December). A collector that was not running then sends it on its next school day in
that month. Off with ``[notify] monthly_report = false`` (or without a ``digest_time``).

Once, durably, like the digest: the message goes through the outbox (``server.notify.sender``:
retries with back-off) under the log key ``monthly/{site}/{YYYY-MM}/email``; the delivery writes
the notification log, and a report logged or waiting in the outbox is not made again, not after a
restart either. One given up (the outbox tried ``attempts`` times, or the address was refused) is
made again on the next school day (or at the next start), not at every tick.

A month with nothing recorded for the school (no cabinet status, nothing judged, no session: a
new installation, a school without cabinets yet) sends nothing: "0 not returned" would be untrue.
The text names the school, cabinets and asset tags, shows local numbers, and holds no id but the
site in the link to the report page (``/reports?school=…&from=…&to=…``, with ``[http]
public_url``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_percent

from server import formatting
from server.alerts.routing import Receiver
from server.alerts.store import LogEntry, NotificationLog
from server.history.reports import BatteryRow, Figures, Report
from server.i18n import Language, text
from server.org import Organisation, SchoolConfig
from server.schoolcal import Calendars

from .base import Notification, Notifier
from .dispatch import Delivery
from .email import EmailNotifier
from .render import PAYLOAD_VERSION

__all__ = ["MAX_BATTERIES", "MonthlyReports", "previous_month", "render_monthly", "report_url"]

log = logging.getLogger(__name__)

MAX_BATTERIES: Final = 10  # worn batteries listed in the mail; the report page has them all
KIND: Final = "monthly"

ReportFor = Callable[[Sequence[str], date, date], Report]


def previous_month(day: date) -> tuple[date, date]:
    """The first and last day of the calendar month before ``day``'s."""
    last = day.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def report_url(base_url: str | None, site: str, first: date, last: date) -> str | None:
    """The school's report page for the period; None without ``[http] public_url``."""
    if base_url is None:
        return None
    query = urlencode({"school": site, "from": first.isoformat(), "to": last.isoformat()})
    return f"{base_url.rstrip('/')}/reports?{query}"


class MonthlyReports:
    def __init__(self, *, org: Organisation, calendars: Calendars, reports: ReportFor,
                 notifiers: Callable[[Receiver], Sequence[Notifier]], log_store: NotificationLog,
                 send_time: time | None, queued: Callable[[str], bool] | None = None,
                 base_url: str | None = None) -> None:
        """``send_time``: ``[notify] digest_time``; None switches the monthly report off.
        ``reports(sites, first, last)``: ``ReportSource.report``. ``queued(log_key)``: whether a
        message for that key waits in the outbox."""
        self._org = org
        self._calendars = calendars
        self._reports = reports
        self._notifiers = notifiers
        self._log = log_store
        self._send_time = send_time
        self._queued = queued
        self._base_url = base_url
        self._done: set[str] = set()  # log keys sent, or months with nothing recorded
        self._made: dict[str, date] = {}  # log key -> the local day this process queued it

    def due(self, now: datetime) -> list[Delivery]:
        """The reports to queue now. Blocking (the report reads the store): the collector calls
        it in a thread."""
        if self._send_time is None:
            return []
        deliveries: list[Delivery] = []
        for school in self._org.schools:
            if not school.contacts.email:
                continue
            calendar = self._calendars.for_site(school.site)
            local = calendar.local(now)
            today = local.date()
            if local.time() < self._send_time or not calendar.is_school_day(today):
                continue
            first, last = previous_month(today)
            key = f"{KIND}/{school.site}/{first:%Y-%m}"
            log_key = f"{key}/{EmailNotifier.name}"
            if log_key in self._done or self._made.get(log_key) == today:
                continue
            if self._sent_or_queued(log_key):
                continue
            receiver = Receiver(f"school:{school.site}", school.name, school.contacts)
            email = [n for n in self._notifiers(receiver) if n.name == EmailNotifier.name]
            if not email:
                self._done.add(log_key)  # no SMTP server configured: nothing to do this month
                continue
            self._made[log_key] = today
            try:
                notification = self._render(school, key, first, last, now)
            except Exception:  # one school's report must not stop the others' nor every tick
                log.exception("monthly report %s: cannot be made; tried again on the next "
                              "school day", key)
                continue
            if notification is None:
                log.info("monthly report %s: nothing recorded that month, not sent", key)
                self._done.add(log_key)
                continue
            entry = LogEntry(frozenset(), frozenset(), now)
            deliveries += [Delivery(log_key, n, notification, entry, receiver.id) for n in email]
        return deliveries

    def _sent_or_queued(self, log_key: str) -> bool:
        if self._log.log_entry(log_key) is not None:
            self._done.add(log_key)
            return True
        return self._queued is not None and self._queued(log_key)

    def _render(self, school: SchoolConfig, key: str, first: date, last: date,
                now: datetime) -> Notification | None:
        report = self._reports([school.site], first, last)
        figures = next((f for f in report.schools if f.key == school.site), None)
        if figures is None or not recorded(figures):
            return None
        return render_monthly(org=self._org, lang=school.contacts.lang, key=key, site=school.site,
                              report=report, figures=figures, now=now, base_url=self._base_url)


def recorded(figures: Figures) -> bool:
    """Whether anything was recorded for the school in the period."""
    return bool(figures.known_s or figures.sessions
                or any(d.ready_known or d.return_known for d in figures.days.values()))


# -- the text ----------------------------------------------------------------------------------

@functools.cache
def _locale(lang: Language) -> Locale:
    return Locale.parse("de_DE" if lang == "de" else "en_GB")


def _pct(value: float, lang: Language) -> str:
    """``87,5 %`` (German), ``87.5%`` (English): the report page's format."""
    locale = _locale(lang)
    pattern = locale.percent_formats[None].pattern.replace("#,##0", "#,##0.0", 1)
    return format_percent(value, pattern, locale=locale)


def _count(value: float, lang: Language, digits: int = 0) -> str:
    return formatting.number(value, lang, digits)


def month_name(first: date, lang: Language) -> str:
    """``November 2026`` (``März 2027``)."""
    return format_date(first, "LLLL y", locale=_locale(lang))


def _place(org: Organisation, row: BatteryRow, lang: Language) -> str:
    """``Raum 12 · Fach 3``: the cabinet by its name and the slot."""
    parts = []
    if row.site is not None and row.cabinet is not None:
        cabinet = org.cabinet(row.site, row.cabinet)
        parts.append(cabinet.name if cabinet is not None and cabinet.name else row.cabinet)
    if row.slot is not None:
        parts.append(text("body.monthly.slot", lang, slot=str(row.slot)))
    return " · ".join(parts)


def _battery_line(org: Organisation, row: BatteryRow, lang: Language) -> str:
    place = _place(org, row, lang)
    remaining = _pct(row.verdict.remaining, lang)
    if not place:
        return text("body.monthly.battery_unplaced", lang, asset_tag=row.verdict.asset_tag,
                    remaining=remaining)
    return text("body.monthly.battery", lang, asset_tag=row.verdict.asset_tag, place=place,
                remaining=remaining)


def _figure_lines(report: Report, figures: Figures, lang: Language) -> list[str]:
    days = figures.school_days
    lines = [text("body.monthly.school_days", lang, count=_count(days, lang))]
    if figures.readiness is None:
        lines.append(text("body.monthly.readiness_none", lang))
    else:
        lines.append(text("body.monthly.readiness", lang, pct=_pct(figures.readiness, lang),
                          ready=_count(figures.ready, lang),
                          known=_count(figures.ready_known, lang)))
    gone = _count(figures.not_returned, lang)
    if days:
        lines.append(text("body.monthly.not_returned", lang, count=gone,
                          per_day=_count(figures.not_returned / days, lang, 1)))
    else:
        lines.append(text("body.monthly.not_returned_total", lang, count=gone))
    lines.append(text("body.monthly.sessions", lang, count=_count(figures.sessions, lang)))
    lines.append(text("body.monthly.energy", lang,
                      kwh=f"{_count(figures.energy_kwh, lang, 1)}\u00a0kWh",
                      eur=format_currency(report.cost_eur(figures), "EUR", locale=_locale(lang))))
    if figures.availability is None:
        lines.append(text("body.monthly.availability_none", lang))
    else:
        lines.append(text("body.monthly.availability", lang,
                          pct=_pct(figures.availability, lang)))
    return lines


def render_monthly(*, org: Organisation, lang: Language, key: str, site: str, report: Report,
                   figures: Figures, now: datetime, base_url: str | None = None) -> Notification:
    """One school's month: its figures, its worn batteries (at most ``MAX_BATTERIES``), and the
    link to its report page."""
    school = org.school(site)
    name = school.name if school else figures.name
    whole_month = (report.first.day == 1 and (report.last + timedelta(days=1)).day == 1
                   and (report.first.year, report.first.month) == (report.last.year,
                                                                   report.last.month))
    month = (month_name(report.first, lang) if whole_month
             else f"{formatting.day(report.first, lang)} – {formatting.day(report.last, lang)}")
    subject = text("subject.monthly", lang, school=name, month=month)
    lines = [text("body.monthly.intro", lang, school=name, month=month), ""]
    lines += _figure_lines(report, figures, lang)
    worn = [row for row in report.batteries if row.verdict.worn]
    lines.append("")
    if worn:
        lines.append(text("body.monthly.batteries", lang))
        lines += [_battery_line(org, row, lang) for row in worn[:MAX_BATTERIES]]
        if len(worn) > MAX_BATTERIES:
            lines.append(text("body.monthly.batteries_more", lang,
                              count=_count(len(worn) - MAX_BATTERIES, lang)))
    else:
        lines.append(text("body.monthly.no_worn", lang))
    url = report_url(base_url, site, report.first, report.last)
    lines += ["", text("body.monthly.footer", lang) if url is None
              else text("body.monthly.open", lang, url=url)]
    return Notification(KIND, key, subject, "\n".join(lines),
                        _payload(key, site, name, report, figures, worn, url, now))


def _payload(key: str, site: str, name: str, report: Report, figures: Figures,
             worn: list[BatteryRow], url: str | None, now: datetime) -> dict[str, Any]:
    """The machine document (kept in the outbox; for a webhook, should one ever get it)."""
    return {
        "version": PAYLOAD_VERSION,
        "kind": KIND,
        "key": key,
        "site": site,
        "school": name,
        "first": report.first.isoformat(),
        "last": report.last.isoformat(),
        "school_days": figures.school_days,
        "readiness": figures.readiness,
        "not_returned": figures.not_returned,
        "sessions": figures.sessions,
        "energy_kwh": figures.energy_kwh,
        "cost_eur": report.cost_eur(figures),
        "availability": figures.availability,
        "worn_batteries": [{"asset_tag": r.verdict.asset_tag, "cabinet": r.cabinet,
                            "slot": r.slot, "remaining": r.verdict.remaining} for r in worn],
        "url": url,
        "sent_at": now.isoformat(),
    }
