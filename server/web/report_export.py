"""The school report (``report_pages.py``) for programs and spreadsheets: ``/api/reports`` (JSON),
``/api/export/report.csv`` (one row per school and day) and ``/api/export/report.xlsx`` (sheets
"Übersicht", "Tage", "Akkus"). The same query as the page: ``from``/``to``, ``school``,
``municipality``, ``lang``; the same scope (403 outside it, 404 for an unknown school or
municipality, 422 for a period that cannot be reported, 503 without the server's store).

The CSV is for German Excel by default (``;``, byte order mark, decimal comma, ``02.11.2026``;
``csv_format``), plain with ``?lang=en``; every text cell goes through ``csv_cell`` (formula
injection). The workbook holds real numbers and dates with number formats; its texts are written
as strings (``write_string``, and ``strings_to_formulas`` off), so a school named ``=HYPERLINK(…)``
stays a name.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from typing import Annotated, Any, Final

import xlsxwriter
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from ..api import InScope, invalid
from ..api_models import ErrorOut, ReportOut, csv_responses, error_responses
from ..formatting import day as day_text
from ..history.reports import DayFigures, Figures, Report
from ..i18n import DEFAULT_LANGUAGE, Language
from .context import Dashboard, OutOfScope
from .csv_format import CsvFormat
from .data import CsvLang, CsvResponse, csv_cell
from .missing_pages import MunicipalityFilter, SchoolFilter, Selection
from .report_pages import BadPeriod, choose, per_school_day, period, sites_of
from .texts import translator

__all__ = ["DAY_COLUMNS", "report_api_router", "xlsx_bytes"]

XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FromDay = Annotated[date | None, Query(
    alias="from", description="the first day, yyyy-mm-dd (default: the last full calendar month; "
                              "alone: to the end of its month)")]
ToDay = Annotated[date | None, Query(
    alias="to", description="the last day, included; at most 400 days after the first")]
XlsxLang = Annotated[Language, Query(description="the sheets' names, headers and formats")]
# Columns as text keys (the header row in the file's language), with the workbook's cell kinds.
DAY_COLUMNS: Final = (("school", "text"), ("municipality", "text"), ("rep.csv.day", "date"),
                      ("rep.csv.school_day", "text"), ("rep.csv.ready", "int"),
                      ("rep.csv.ready_known", "int"), ("rep.csv.readiness", "pct"),
                      ("rep.csv.not_returned", "int"), ("rep.csv.return_known", "int"),
                      ("rep.sessions", "int"), ("rep.csv.energy_kwh", "kwh"), ("rep.csv.cost_eur", "eur"))
SUMMARY_COLUMNS: Final = (("rep.csv.level", "text"), ("municipality", "text"), ("school", "text"),
                          ("rep.school_days", "int"), ("rep.csv.ready", "int"),
                          ("rep.csv.ready_known", "int"), ("rep.csv.readiness", "pct"),
                          ("rep.csv.not_returned", "int"), ("rep.csv.per_school_day", "dec"),
                          ("rep.sessions", "int"), ("rep.csv.energy_kwh", "kwh"),
                          ("rep.csv.cost_eur", "eur"), ("rep.csv.availability", "pct"))
BATTERY_COLUMNS: Final = (("rep.csv.rank", "int"), ("asset_tag", "text"), ("school", "text"),
                          ("cabinet", "text"), ("slot", "int"), ("rep.csv.remaining", "pct"),
                          ("rep.full_charges", "int"), ("rep.worn", "text"))
_NUMBER_FORMATS: Final = {"int": "#,##0", "dec": "#,##0.0", "pct": "0.0%", "kwh": "#,##0.000"}


class XlsxResponse(Response):
    """Only for /openapi.json: the workbook's media type."""

    media_type = XLSX


def _day_json(d: DayFigures, price: float) -> dict[str, Any]:
    return {"day": d.day, "school_day": d.school_day, "ready": d.ready,
            "ready_known": d.ready_known, "readiness": d.readiness,
            "not_returned": d.not_returned, "return_known": d.return_known,
            "sessions": d.sessions, "energy_kwh": d.energy_wh / 1000,
            "cost_eur": d.energy_wh / 1000 * price}


def _figures_json(f: Figures, report: Report, municipality: str | None,
                  days: bool = False) -> dict[str, Any]:
    return {"id": f.key, "name": f.name, "municipality": municipality,
            "school_days": f.school_days, "ready": f.ready, "ready_known": f.ready_known,
            "readiness": f.readiness, "not_returned": f.not_returned,
            "not_returned_per_school_day": per_school_day(f), "sessions": f.sessions,
            "energy_kwh": f.energy_kwh, "cost_eur": report.cost_eur(f),
            "availability": f.availability,
            "days": [_day_json(d, report.price_eur_kwh) for d in f.series()] if days else []}


def report_json(report: Report, dash: Dashboard, title: str) -> dict[str, Any]:
    index = dash.index
    return {
        "title": title, "first": report.first, "last": report.last,
        "price_eur_kwh": report.price_eur_kwh,
        "schools": [_figures_json(s, report, index.municipality_of(s.key), True)
                    for s in report.schools],
        "municipalities": [_figures_json(m, report, None) for m in report.municipalities],
        "total": _figures_json(report.total, report, None),
        "batteries": [{
            "asset_tag": b.verdict.asset_tag, "site": b.site,
            "school": index.school_names.get(b.site, b.site) if b.site else None,
            "cabinet": b.cabinet, "cabinet_name": index.cabinet_names.get(
                (b.site, b.cabinet), b.cabinet) if b.site and b.cabinet else None,
            "slot": b.slot, "remaining": b.verdict.remaining,
            "baseline_wh": b.verdict.baseline_wh, "recent_wh": b.verdict.recent_wh,
            "full_charges": b.verdict.full_charges, "worn": b.verdict.worn,
        } for b in report.batteries],
    }


def day_rows(report: Report, dash: Dashboard, lang: Language) -> Iterable[list[object]]:
    """One row per school and day the roll-ups have, as values (a date, numbers, None)."""
    t = translator(lang)
    price = report.price_eur_kwh
    for school in report.schools:
        mun = dash.index.municipality_of(school.key)
        mun_name = dash.index.municipality_names.get(mun, mun)
        for d in school.series():
            yield [school.name, mun_name, d.day, t("csv.yes") if d.school_day else t("csv.no"),
                   d.ready, d.ready_known, d.readiness, d.not_returned, d.return_known,
                   d.sessions, d.energy_wh / 1000, round(d.energy_wh / 1000 * price, 2)]


def csv_text(report: Report, dash: Dashboard, lang: Language) -> str:
    """The CSV (with its byte order mark for German Excel)."""
    fmt, t = CsvFormat(lang, dash.sources.org.zone), translator(lang)
    out = io.StringIO()
    out.write(fmt.bom)
    writer = csv.writer(out, delimiter=fmt.delimiter, quoting=csv.QUOTE_ALL)
    writer.writerow([csv_cell(t(key)) for key, _ in DAY_COLUMNS])

    def cell(value: object, kind: str) -> object:
        if isinstance(value, date):
            return day_text(value, lang)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return fmt.number(value * 100 if kind == "pct" else value)  # "87,5" in "… (%)"
        return csv_cell(value)

    kinds = [kind for _, kind in DAY_COLUMNS]
    for row in day_rows(report, dash, lang):
        writer.writerow([cell(value, kind) for value, kind in zip(row, kinds, strict=True)])
    return out.getvalue()


def _summary_rows(report: Report, dash: Dashboard, lang: Language) -> Iterable[list[object]]:
    t, index = translator(lang), dash.index

    def figures(level: str, mun: str, school: str, f: Figures) -> list[object]:
        return [t(level), mun, school, f.school_days, f.ready, f.ready_known, f.readiness,
                f.not_returned, per_school_day(f), f.sessions, f.energy_kwh,
                round(report.cost_eur(f), 2), f.availability]

    for s in report.schools:
        mun = index.municipality_of(s.key)
        yield figures("school", index.municipality_names.get(mun, mun), s.name, s)
    for m in report.municipalities:
        yield figures("municipality", m.name, "", m)
    yield figures("rep.total", "", "", report.total)


def _battery_rows(report: Report, dash: Dashboard, lang: Language) -> Iterable[list[object]]:
    t, index = translator(lang), dash.index
    for rank, b in enumerate(report.batteries, 1):
        school = index.school_names.get(b.site, b.site) if b.site else None
        room = index.cabinet_names.get((b.site, b.cabinet), b.cabinet) \
            if b.site and b.cabinet else None
        yield [rank, b.verdict.asset_tag, school, room, b.slot, b.verdict.remaining,
               b.verdict.full_charges, t("csv.yes") if b.verdict.worn else t("csv.no")]


def xlsx_bytes(report: Report, dash: Dashboard, lang: Language, title: str) -> bytes:
    """The workbook: the header row bold and frozen, with a filter; widths set; real numbers."""
    t = translator(lang)
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    book.set_properties({"title": f"{t('rep.title')} – {title}", "author": "Ladewache"})
    head = book.add_format({"bold": True, "text_wrap": True, "valign": "top",
                            "bg_color": "#E8EDF3", "bottom": 1})
    formats = {kind: book.add_format({"num_format": code}) for kind, code in {
        **_NUMBER_FORMATS, "eur": '#,##0.00 "€"' if lang == "de" else '"€"#,##0.00',
        "date": "dd.mm.yyyy" if lang == "de" else "d mmm yyyy"}.items()}
    sheets = (("rep.sheet.summary", SUMMARY_COLUMNS, _summary_rows(report, dash, lang)),
              ("rep.sheet.days", DAY_COLUMNS, day_rows(report, dash, lang)),
              ("rep.sheet.batteries", BATTERY_COLUMNS, _battery_rows(report, dash, lang)))
    for name, columns, rows in sheets:
        sheet = book.add_worksheet(t(name))
        for col, (key, kind) in enumerate(columns):
            sheet.write_string(0, col, t(key), head)
            sheet.set_column(col, col, 28 if kind == "text" else 13)
        sheet.set_row(0, 32)
        sheet.freeze_panes(1, 0)
        last = _write(sheet, rows, [kind for _, kind in columns], formats)
        sheet.autofilter(0, 0, max(last, 1), len(columns) - 1)
    book.close()
    return out.getvalue()


def _write(sheet: Any, rows: Iterable[Sequence[object]], kinds: Sequence[str],
           formats: dict[str, Any]) -> int:
    last = 0
    for last, row in enumerate(rows, 1):
        for col, (value, kind) in enumerate(zip(row, kinds, strict=True)):
            if value is None:
                continue
            if kind == "text":
                sheet.write_string(last, col, str(value))  # never a formula, whatever it says
            elif kind == "date":
                assert isinstance(value, date)
                sheet.write_datetime(last, col, datetime.combine(value, time()), formats["date"])
            else:
                sheet.write_number(last, col, float(value), formats[kind])  # type: ignore[arg-type]
    return last


def _errors(what: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    error = {"application/json": {"schema": ErrorOut.model_json_schema()}}
    return {**what, **{code: {"description": text, "content": error} for code, text in (
        (403, "a school or municipality outside your scope"),
        (404, "no such school or municipality"),
        (503, "no store: the reports need the server's store"))}}


def report_api_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["dashboard"])
    zone = dash.sources.org.zone

    def build(scope: InScope, school: str, municipality: str, first: date | None,
              last: date | None) -> tuple[Report, Selection]:
        try:
            selection = choose(dash, scope, school, municipality)
        except OutOfScope as exc:
            raise HTTPException(403, "outside your role or scope") from exc
        except LookupError as exc:
            raise HTTPException(404, "no such school or municipality") from exc
        try:
            first, last = period(first, last, dash.sources.clock().astimezone(zone).date())
        except BadPeriod as exc:
            raise invalid(("query", "from"), exc.text("en"), str(first)) from exc
        if dash.reports is None:
            raise HTTPException(503, "the reports need the server's store")
        return dash.reports.report(sites_of(dash, selection), first, last), selection

    def title(selection: Selection) -> str:
        return selection.title or dash.index.district

    def attachment(report: Report, lang: Language, suffix: str) -> dict[str, str]:
        name = f"{translator(lang)('rep.file')}-{report.first}-{report.last}.{suffix}"
        return {"Content-Disposition": f'attachment; filename="{name}"'}

    json_errors = {**error_responses(401, 403, 404),
                   503: {"model": ErrorOut, "description": "no store: reports need the store"}}

    @router.get("/reports", response_model=ReportOut, responses=json_errors)
    def report_api(scope: InScope, school: SchoolFilter = "",
                   municipality: MunicipalityFilter = "",
                   first: FromDay = None, last: ToDay = None) -> dict[str, Any]:
        """The school report for a period (both days included, at most 400): per school (with
        its days), municipality and in total; the batteries by wear, most worn first."""
        report, selection = build(scope, school, municipality, first, last)
        return report_json(report, dash, title(selection))

    @router.get("/export/report.csv", response_class=CsvResponse,
                responses=_errors(csv_responses("one row per school and day")))
    def report_csv(scope: InScope, school: SchoolFilter = "",
                   municipality: MunicipalityFilter = "",
                   first: FromDay = None, last: ToDay = None,
                   lang: CsvLang = DEFAULT_LANGUAGE) -> Response:
        """The school report per school and day, for German Excel by default."""
        report, _ = build(scope, school, municipality, first, last)
        return Response(csv_text(report, dash, lang).encode("utf-8"),
                        media_type="text/csv; charset=utf-8",
                        headers=attachment(report, lang, "csv"))

    xlsx_ok: dict[int | str, dict[str, Any]] = {
        200: {"description": "sheets: summary, days, batteries",
              "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}},
        401: csv_responses("")[401]}

    @router.get("/export/report.xlsx", response_class=XlsxResponse, responses=_errors(xlsx_ok))
    def report_xlsx(scope: InScope, school: SchoolFilter = "",
                    municipality: MunicipalityFilter = "",
                    first: FromDay = None, last: ToDay = None,
                    lang: XlsxLang = DEFAULT_LANGUAGE) -> Response:
        """The school report as an Excel workbook: summary, days, batteries."""
        report, selection = build(scope, school, municipality, first, last)
        return Response(xlsx_bytes(report, dash, lang, title(selection)), media_type=XLSX,
                        headers=attachment(report, lang, "xlsx"))

    return router
