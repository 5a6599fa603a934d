"""School reports (issue 17): ``/reports`` for a school, a municipality or the district and a
period of local days, ``?print=1`` for A4 paper. Its JSON, CSV and XLSX are ``report_export.py``.
The figures come from ``server.history`` (``ReportSource.report``: the daily roll-ups, made first
for the days that miss them); this module reads the query, says the figures in the page's
language ("87,5 %", "12,34 €") and draws the charts (inline SVG, no JavaScript).

The period is ``from`` and ``to`` (ISO dates in the query, shown as "1. November 2026"), both
included, at most ``MAX_DAYS`` days; without them the last full calendar month in the
organisation's zone; with only one of them, that day's month. ``school`` and ``municipality``
narrow the report inside the caller's scope as on the missing list: outside it 403, a school or
municipality the organisation does not know 404.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import parse_qsl, urlencode

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_percent
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ..auth import Scope
from ..formatting import number
from ..history.reports import DayFigures, Figures, Report
from ..i18n import Language
from .context import Dashboard, OutOfScope
from .localtime import LocalTimes
from .missing_pages import MunicipalityFilter, SchoolFilter, Selection, select
from .render import language_of, page
from .signin import user_or_login
from .texts import Translate, translator

__all__ = ["MAX_DAYS", "BadPeriod", "Fmt", "choose", "period", "report_router", "sites_of"]

MAX_DAYS: Final = 400
TOP_BATTERIES: Final = 50
EARLIEST: Final = date(2000, 1, 1)  # the store's dates are real school days, not year 1
LATEST: Final = date(2099, 12, 31)
_FIELD: Final = {"de": "%d.%m.%Y", "en": "%d/%m/%Y"}  # a day in the form's text field
# The school table's columns after the name: (key of Row.cells, text key of its head).
COLUMNS: Final = (("school_days", "rep.school_days"), ("readiness", "rep.readiness"),
                  ("not_returned", "rep.not_returned"), ("per_day", "rep.per_school_day"),
                  ("sessions", "rep.sessions"), ("energy", "rep.energy"), ("cost", "rep.cost"),
                  ("availability", "rep.availability"))


class BadPeriod(ValueError):
    """The period cannot be reported (HTTP 422): ``key`` is its text, ``values`` fill it in."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values

    def text(self, lang: Language) -> str:
        fmt = Fmt(lang)
        return translator(lang)(self.key, **{k: fmt.long_day(v) if isinstance(v, date) else v
                                             for k, v in self.values.items()})


def parse_day(value: str) -> date | None:
    """A day from the query: ISO (links), or as the form's field shows it: ``01.11.2026``
    (German), ``01/11/2026`` (English, day first)."""
    value = value.strip()
    if not value:
        return None
    for pattern in ("%Y-%m-%d", *_FIELD.values()):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            pass
    raise BadPeriod("rep.bad_date", value=value)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def last_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def period(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The days to report, both included. Raises ``BadPeriod``."""
    if first is None and last is None:
        return last_month(today)
    if first is None:
        assert last is not None
        first = last.replace(day=1)
    elif last is None:
        last = _month_end(first)
    if first < EARLIEST or last > LATEST:
        raise BadPeriod("rep.out_of_range", first=EARLIEST, last=LATEST)
    if first > last:
        raise BadPeriod("rep.bad_order", first=first, last=last)
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise BadPeriod("rep.too_long", max=MAX_DAYS, days=days)
    return first, last


def choose(dash: Dashboard, scope: Scope, school: str, municipality: str) -> Selection:
    """The caller's scope narrowed by the filters. Raises ``OutOfScope`` (403) or
    ``LookupError`` (404: a school or municipality the organisation does not know)."""
    selection = select(dash, scope, school, municipality)
    if school and school not in dash.index.school_names:
        raise LookupError(school)
    return selection


def sites_of(dash: Dashboard, selection: Selection) -> list[str]:
    return sorted(dash.index.school_names if selection.sites is None else selection.sites)


class Fmt:
    """Figures as people of ``lang`` read them (Babel): ``87,5 %``, ``12,34 €``, ``Di 03.11.``."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        self.locale = Locale.parse("de_DE" if lang == "de" else "en_GB")
        own = self.locale.percent_formats[None].pattern  # "#,##0 %" (German), "#,##0%"
        self._percent = own.replace("#,##0", "#,##0.0", 1)

    def pct(self, value: float | None) -> str:
        return "–" if value is None else format_percent(value, self._percent, locale=self.locale)

    def eur(self, value: float) -> str:
        return format_currency(value, "EUR", locale=self.locale)

    def kwh(self, value: float) -> str:
        return f"{number(value, self.lang, 1)}\u00a0kWh"

    def count(self, value: float | None, digits: int = 0) -> str:
        return "–" if value is None else number(value, self.lang, digits)

    def amount(self, t: Translate, key: str, n: int) -> str:
        """``1 Tag``, ``21 Schultage``: the text ``key.one`` or ``key.other``."""
        return t(f"{key}.{'one' if n == 1 else 'other'}", n=self.count(n))

    def field(self, value: date) -> str:
        return value.strftime(_FIELD[self.lang])

    def day(self, value: date) -> str:
        return format_date(value, "ccc dd.MM." if self.lang == "de" else "ccc d MMM",
                           locale=self.locale)

    def long_day(self, value: date) -> str:
        return format_date(value, "d. MMMM y" if self.lang == "de" else "d MMMM y",
                           locale=self.locale)

    def period(self, first: date, last: date) -> str:
        if first.day == 1 and last == _month_end(first):
            return format_date(first, "LLLL y", locale=self.locale)
        return f"{self.long_day(first)} – {self.long_day(last)}"


def per_school_day(figures: Figures) -> float | None:
    days = figures.school_days
    return figures.not_returned / days if days else None


@dataclass(frozen=True, slots=True)
class Row:
    kind: str  # "school", "municipality" or "total"
    key: str
    name: str
    readiness: float | None
    cells: dict[str, str]


def _row(kind: str, figures: Figures, report: Report, fmt: Fmt, name: str) -> Row:
    return Row(kind, figures.key, name, figures.readiness, {
        "school_days": fmt.count(figures.school_days), "readiness": fmt.pct(figures.readiness),
        "not_returned": fmt.count(figures.not_returned),
        "per_day": fmt.count(per_school_day(figures), 1), "sessions": fmt.count(figures.sessions),
        "energy": fmt.kwh(figures.energy_kwh), "cost": fmt.eur(report.cost_eur(figures)),
        "availability": fmt.pct(figures.availability)})


def rows(report: Report, dash: Dashboard, fmt: Fmt, t: Translate) -> list[Row]:
    """Each municipality's schools by name, its subtotal when there are several municipalities,
    and the total when there are several schools."""
    found: list[Row] = []
    several = len(report.municipalities) > 1
    for mun in report.municipalities:
        schools = [s for s in report.schools if dash.index.municipality_of(s.key) == mun.key]
        found += [_row("school", s, report, fmt, s.name) for s in sorted(
            schools, key=lambda s: s.name.casefold())]
        if several:
            found.append(_row("municipality", mun, report, fmt,
                              t("rep.subtotal", name=mun.name or t("rep.no_municipality"))))
    if len(report.schools) > 1:
        found.append(_row("total", report.total, report, fmt, t("rep.total")))
    return found


@dataclass(frozen=True, slots=True)
class Chart:
    """Bars per school day (the template draws them as SVG): tooltip, height 0–100, class."""

    kind: str
    caption: str
    summary: str
    top: str
    first: str
    last: str
    bars: list[tuple[str, float, str]]


def _grade(readiness: float | None) -> str:
    if readiness is None:
        return "none"
    return "good" if readiness >= 0.9 else "fair" if readiness >= 0.75 else "poor"


def charts(days: Sequence[DayFigures], fmt: Fmt, t: Translate) -> list[Chart]:
    """Readiness at school start and iPads not returned, per school day of the selection."""
    days = [d for d in days if d.school_day]
    if not days:
        return []
    ends = fmt.day(days[0].day), fmt.day(days[-1].day)
    found = []
    if judged := [d for d in days if d.readiness is not None]:
        low = min(judged, key=lambda d: (d.readiness, d.day))
        average = sum(d.ready for d in judged) / sum(d.ready_known for d in judged)
        found.append(Chart("readiness", t("rep.chart_readiness"), t(
            "rep.chart_readiness_summary", avg=fmt.pct(average), low=fmt.pct(low.readiness),
            day=fmt.day(low.day)), fmt.pct(1.0), *ends, [
            (f"{fmt.day(d.day)}: –", 2.0, "none") if d.readiness is None else
            (f"{fmt.day(d.day)}: {fmt.pct(d.readiness)} "
             f"({t('rep.of', part=d.ready, whole=d.ready_known)})",
             max(d.readiness * 100, 1.5), _grade(d.readiness))  # 0 %: a bar too
            for d in days]))
    if not any(d.return_known for d in days):
        return found  # no iPad judged at a return check: no chart that says "all back"
    most = max(days, key=lambda d: (d.not_returned, -d.day.toordinal()))
    top = max(most.not_returned, 1)
    summary = t("rep.chart_not_returned_summary", total=fmt.count(sum(
        d.not_returned for d in days)), most=fmt.count(most.not_returned),
        day=fmt.day(most.day)) if most.not_returned else t("rep.chart_all_returned")
    found.append(Chart("not-returned", t("rep.chart_not_returned"), summary, fmt.count(top), *ends, [
        (f"{fmt.day(d.day)}: {fmt.count(d.not_returned)}", d.not_returned / top * 100, "gone")
        if d.return_known else (f"{fmt.day(d.day)}: –", 2.0, "none") for d in days]))
    return found


def batteries(report: Report, dash: Dashboard, fmt: Fmt, t: Translate,
              limit: int | None = TOP_BATTERIES) -> list[dict[str, Any]]:
    """The most worn first: asset tag, where it is (names), remaining capacity, full charges."""
    index = dash.index
    found = []
    for row in report.batteries[:limit]:
        place = [index.school_names.get(row.site, row.site)] if row.site else []
        if row.site and row.cabinet:
            place.append(index.cabinet_names.get((row.site, row.cabinet), row.cabinet))
        if row.slot is not None:
            place.append(f"{t('slot')} {row.slot}")
        verdict = row.verdict
        found.append({"tag": verdict.asset_tag, "place": " · ".join(place),
                      "remaining": fmt.pct(verdict.remaining), "charges": fmt.count(
                          verdict.full_charges), "worn": verdict.worn,
                      "worn_text": t("csv.yes") if verdict.worn else t("csv.no")})
    return found


def report_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    org = dash.sources.org
    index = dash.index

    @router.get("/reports")
    def report_page(request: Request, school: SchoolFilter = "",
                    municipality: MunicipalityFilter = "",
                    first_text: Annotated[str, Query(alias="from", max_length=20)] = "",
                    last_text: Annotated[str, Query(alias="to", max_length=20)] = "",
                    print_view: Annotated[bool, Query(alias="print")] = False) -> Response:
        who = user_or_login(dash.sources.auth, request)
        if isinstance(who, Response):
            return who
        scope = who.scope(org)
        try:
            selection = choose(dash, scope, school, municipality)
        except OutOfScope:
            return page(request, "error.html", who, 403, message_key="forbidden")
        except LookupError:
            return page(request, "error.html", who, 404, message_key="not_found")
        lang = language_of(request)
        fmt, t = Fmt(lang), translator(lang)
        now = dash.sources.clock()
        today = now.astimezone(org.zone).date()
        sites = sorted((s for s in index.school_names if scope.sees(s)),
                       key=lambda s: index.school_names[s].casefold())
        choices = {m for s in sites if (m := index.school_municipality.get(s))}

        def quick(first: date, last: date) -> str:
            return urlencode([*parse_qsl(selection.query), ("from", first.isoformat()),
                              ("to", last.isoformat())])

        school_year = date(today.year if today.month >= 8 else today.year - 1, 8, 1)
        yesterday = max(today - timedelta(days=1), today.replace(day=1))
        values: dict[str, Any] = {
            "selection": selection, "title": selection.title or t("district"), "fmt": fmt,
            "print_view": print_view, "filter_sites": sites, "index": index, "columns": COLUMNS,
            "filter_municipalities": sorted(choices, key=lambda m: index.municipality_names.get(
                m, m).casefold()), "available": dash.reports is not None,
            "as_of": LocalTimes(org.zone, lang, now).long(now),
            "quick": [("rep.last_month", quick(*last_month(today))),
                      ("rep.this_month", quick(today.replace(day=1), yesterday)),
                      ("rep.school_year", quick(school_year, max(school_year, yesterday)))]}
        try:
            first, last = period(parse_day(first_text), parse_day(last_text), today)
        except BadPeriod as exc:
            return page(request, "report.html", who, 422, error=exc.text(lang),
                        first=first_text, last=last_text, **values)
        if any(text.strip() not in ("", day.isoformat())
               for text, day in ((first_text, first), (last_text, last))):
            # the form sends the days as its fields show them: to the link with ISO days
            kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("from", "to")]
            return RedirectResponse("/reports?" + urlencode(
                [*kept, ("from", first.isoformat()), ("to", last.isoformat())]), 303)
        values.update(first=fmt.field(first), last=fmt.field(last),
                      period_words=fmt.period(first, last), query=quick(first, last),
                      days=(last - first).days + 1)
        if dash.reports is None:
            return page(request, "report.html", who, **values)
        report = dash.reports.report(sites_of(dash, selection), first, last)
        known = report.total.known_s or any(d.ready_known or d.return_known or d.sessions
                                            for d in report.total.days.values())
        return page(request, "report.html", who, report=report, total=report.total, known=known,
                    per_day=per_school_day(report.total), rows=rows(report, dash, fmt, t),
                    charts=charts(report.total.series(), fmt, t),
                    batteries=batteries(report, dash, fmt, t), top_batteries=TOP_BATTERIES,
                    price=fmt.eur(report.price_eur_kwh), **values)

    return router
