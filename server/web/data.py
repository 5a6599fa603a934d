"""JSON and CSV routes of the dashboard (in /openapi.json): overview, cabinet, slot history,
search, the caller's identity, and CSV exports of inventory, sessions and alerts.

CSV cells are neutralised against formula injection (``csv_cell``): a spreadsheet runs a cell
that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and asset tags, school names, label
values and comments come from cabinets, the organisation file and users. The exports are written
for German Excel by default (``;``, decimal comma, a byte order mark, local times; ``csv_format``)
and for ``,`` and ``3.5`` with ``?lang=en``; they name schools and cabinets beside their ids. The
header row is in words of the same language ("Schule", "Schul-Kennung"; ``server/web/texts.py``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response, StreamingResponse

from cabinet_agent.common.protocol import MAX_SLOTS, EnergyMethod

from ..alerts.status import AlertStatus
from ..api import InScope, Who
from ..api_models import (
    CabinetOut,
    HistoryOut,
    MeOut,
    OverviewOut,
    SearchOut,
    csv_responses,
    error_responses,
)
from ..i18n import DEFAULT_LANGUAGE, Language, alert_summary, text
from ..views import cabinet_json
from .context import Dashboard, OutOfScope
from .csv_format import CsvFormat
from .overview import Counts, Overview
from .texts import Translate, translator

__all__ = ["ALERTS_COLUMNS", "INVENTORY_COLUMNS", "SESSIONS_COLUMNS", "csv_cell", "csv_header",
           "data_router", "overview_json"]

# Each export's columns as text keys (server/web/texts.py): the header row says them in the file's
# language. Ids have a column of their own ("csv.site", "csv.cabinet_id") beside the names.
INVENTORY_COLUMNS: Final = ("municipality", "csv.site", "school", "csv.cabinet_id", "cabinet",
                            "slot", "asset_tag", "state", "csv.power_w", "csv.since",
                            "csv.cabinet_status")
SESSIONS_COLUMNS: Final = ("csv.site", "school", "csv.cabinet_id", "cabinet", "slot", "asset_tag",
                           "csv.started_at", "csv.ended_at", "csv.duration_s", "csv.energy_wh",
                           "csv.peak_w", "csv.end_reason", "csv.taper_wh", "csv.energy_method")
ALERTS_COLUMNS: Final = ("csv.fingerprint", "csv.alertname", "state", "severity", "csv.site",
                         "school", "csv.cabinet_id", "cabinet", "slot", "asset_tag", "csv.summary",
                         "csv.active_at", "csv.starts_at", "csv.ends_at", "csv.acknowledged_by",
                         "csv.ack_comment", "csv.silenced")


def _word(t: Translate, prefix: str, value: str) -> str:
    """A state, status, rule or reason in the file's language (the value itself where the
    catalogue has no word for it)."""
    key = prefix + value
    said = t(key)
    return value if said == key else said


def csv_header(columns: Sequence[str], lang: Language) -> list[str]:
    """An export's header row in ``lang``."""
    t = translator(lang)
    return [t(key) for key in columns]


def _counts(c: Counts) -> dict[str, int]:
    return c.as_dict()


def overview_json(view: Overview) -> dict[str, Any]:
    return {
        "district": view.district, "counts": _counts(view.counts), "page": view.page,
        "pages": view.pages, "per_page": view.per_page, "total_cabinets": view.total_cabinets,
        "municipalities": [{
            "id": m.id, "name": m.name, "counts": _counts(m.counts),
            "schools": [{
                "site": s.site, "name": s.name, "counts": _counts(s.counts),
                "cabinets": [{"cabinet": c.cabinet, "name": c.name, "status": c.status,
                              "counts": _counts(c.counts)} for c in s.cabinets],
            } for s in m.schools.values()],
        } for m in view.municipalities],
    }


# OWASP "CSV Injection": a cell starting with one of these is a formula to Excel, LibreOffice or
# Google Sheets (tab and CR: Excel strips them and looks at what follows; NUL: ASVS 1.2.10).
# Where a cell begins is not only the start of our field: a spreadsheet that splits the lines
# at another separator (German Excel splits at ";" when a file is opened by double-click) or
# at a line break starts cells inside our fields, so a trigger after one of those is neutralised
# too. The prefix is a single quote: the text stays readable and is shown as text.
_TRIGGERS: Final = "=+-@\t\r\0"
_CELL_STARTS: Final = re.compile(f"(^|[,;\t\r\n])(?=[{re.escape(_TRIGGERS)}])")


def csv_cell(value: object) -> object:
    """A value as a CSV cell a spreadsheet will not run. Numbers (int, float, bool) our code made
    stay numbers, unprefixed, so a column of watts or seconds can still be summed (a negative
    number is no formula); every text is neutralised, whoever wrote it."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    return _CELL_STARTS.sub(r"\1'", str(value))


def _writer(out: io.StringIO, fmt: CsvFormat) -> Any:
    # Every cell quoted (OWASP): a separator or quote inside a value cannot start a new cell.
    return csv.writer(out, delimiter=fmt.delimiter, quoting=csv.QUOTE_ALL)


def _safe(row: Sequence[object], fmt: CsvFormat) -> list[object]:
    # A number our code made is written in the reader's format and never prefixed (a negative
    # number is no formula); a bool is no number here.
    return [fmt.number(value) if isinstance(value, int | float) and not isinstance(value, bool)
            else csv_cell(value) for value in row]


def _csv(name: str, header: Sequence[str], rows: Iterable[Sequence[object]],
         fmt: CsvFormat) -> Response:
    out = io.StringIO(fmt.bom)
    out.seek(0, io.SEEK_END)
    writer = _writer(out, fmt)
    writer.writerow(_safe(header, fmt))
    writer.writerows(_safe(row, fmt) for row in rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _csv_stream(name: str, header: Sequence[str], rows: Iterable[Sequence[object]],
                chunk_rows: int = 5000, fmt: CsvFormat | None = None) -> Response:
    fmt = fmt or CsvFormat()

    def chunks() -> Iterator[str]:
        out = io.StringIO()
        out.write(fmt.bom)
        writer = _writer(out, fmt)
        writer.writerow(_safe(header, fmt))
        for n, row in enumerate(rows, 1):
            writer.writerow(_safe(row, fmt))
            if n % chunk_rows == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


CsvLang = Annotated[Language, Query(
    description="de (default): ';', decimal comma, byte order mark for German Excel; en: ',' and "
                "decimal point. Times are local either way")]


class CsvResponse(Response):
    """Only for /openapi.json: the exports answer text/csv."""

    media_type = "text/csv"


def data_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["dashboard"])
    index = dash.index
    org = dash.sources.org
    zone = org.zone

    def cabinet_or_raise(scope: InScope, site: str, cabinet: str) -> Any:
        try:
            view = dash.cabinet(scope, site, cabinet)
        except OutOfScope as exc:
            raise HTTPException(403, "outside your role or scope") from exc
        if view is None:
            raise HTTPException(404, f"no cabinet {site}/{cabinet}")
        return view

    reading = error_responses(401)
    one_cabinet = error_responses(401, 403, 404)

    @router.get("/me", response_model=MeOut, responses=reading)
    def me(who: Who) -> dict[str, Any]:
        """Who you are, your role and scope."""
        scope = who.scope(dash.sources.org)
        return {"name": who.name, "role": who.user.role.value, "via": who.via,
                "municipality": who.user.municipality, "school": who.user.school,
                "sites": None if scope.sites is None else sorted(scope.sites),
                "can_write": scope.can_write}

    @router.get("/overview", response_model=OverviewOut, responses=reading)
    def overview(scope: InScope, page: Annotated[int, Query(ge=1)] = 1,
                 per_page: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        """District → municipality → school → cabinet with counts; cabinets paginated."""
        return overview_json(dash.overview(scope, page, per_page))

    @router.get("/cabinets/{site}/{cabinet}", response_model=CabinetOut, responses=one_cabinet)
    def cabinet(scope: InScope, site: str, cabinet: str) -> dict[str, Any]:
        return cabinet_json(cabinet_or_raise(scope, site, cabinet))

    @router.get("/cabinets/{site}/{cabinet}/slots/{slot}/history", response_model=HistoryOut,
                responses=one_cabinet)
    def slot_history(scope: InScope, site: str, cabinet: str,
                     slot: Annotated[int, Path(ge=1, le=MAX_SLOTS)],
                     hours: Annotated[int, Query(ge=1, le=24 * 366)] = 24) -> dict[str, Any]:
        """State changes of the last ``hours`` (from the server's store: they survive restarts;
        the first one is the state the range began in), power samples the server kept in memory
        (source ``server``), and the slot's stored charge sessions."""
        cabinet_or_raise(scope, site, cabinet)
        sessions = dash.sessions.recent(site, cabinet, slot, 200) if dash.sessions else []
        now = dash.sources.clock()
        return {
            "source": "server",
            "transitions": [{"at": t.at.isoformat(), "state": t.state.value} for t in
                            dash.transitions(site, cabinet, slot, now - timedelta(hours=hours), now)],
            "samples": [{"at": s.at.isoformat(), "power_w": s.power_w}
                        for s in dash.history.samples(site, cabinet, slot)],
            "sessions": [s.model_dump(mode="json") for _, _, s in sessions],
        }

    @router.get("/search", response_model=SearchOut, responses=reading)
    def search(scope: InScope, q: Annotated[str, Query(min_length=1, max_length=100)]) -> dict[str, Any]:
        """Schools by name or site id, slots by asset tag (substring, case-insensitive)."""
        return {"query": q, "hits": [
            {"kind": h.kind, "site": h.site, "cabinet": h.cabinet, "slot": h.slot, "label": h.label}
            for h in dash.search(scope, q)]}

    @router.get("/export/inventory.csv", response_class=CsvResponse,
                responses=csv_responses("one row per slot"))
    def inventory_csv(scope: InScope, lang: CsvLang = DEFAULT_LANGUAGE) -> Response:
        """One row per slot of every cabinet in your scope."""
        fmt, t = CsvFormat(lang, zone), translator(lang)

        def rows() -> Iterator[tuple[object, ...]]:
            for view in dash.views(scope):
                mun = index.municipality_of(view.site)
                mun_name = index.municipality_names.get(mun, mun)
                school = index.school_names.get(view.site, view.site)
                room = index.cabinet_names.get(view.key, view.cabinet)
                status = _word(t, "cs.", view.status.value)
                for s in view.slots:
                    yield (mun_name, view.site, school, view.cabinet, room, s.slot, s.asset_tag,
                           _word(t, "st.", s.state.value), s.power_w, fmt.time(s.since), status)
        # 2.56 million rows at 80,000 cabinets: written out in chunks, never all in memory.
        return _csv_stream("inventory.csv", csv_header(INVENTORY_COLUMNS, lang), rows(), fmt=fmt)

    @router.get("/export/sessions.csv", response_class=CsvResponse,
                responses=csv_responses("one row per charge session"))
    def sessions_csv(scope: InScope, lang: CsvLang = DEFAULT_LANGUAGE) -> Response:
        """Stored charge sessions in your scope, newest first."""
        fmt, t = CsvFormat(lang, zone), translator(lang)
        sessions = dash.sessions.recent() if dash.sessions else []
        return _csv("sessions.csv", csv_header(SESSIONS_COLUMNS, lang),
                    ((site, index.school_names.get(site, site), cab,
                      index.cabinet_names.get((site, cab), cab), s.slot, s.asset_tag,
                      fmt.time(s.started_at), fmt.time(s.ended_at), s.duration_s, s.energy_wh,
                      s.peak_w, _word(t, "end.", s.end.value), s.taper_wh,
                      # older agents (no method given) integrated power over time
                      _word(t, "em.", (s.energy_method or EnergyMethod.INTEGRATED).value))
                     for site, cab, s in sessions if scope.sees(site)), fmt)

    @router.get("/export/alerts.csv", response_class=CsvResponse,
                responses=csv_responses("one row per alert"))
    def alerts_csv(scope: InScope, lang: CsvLang = DEFAULT_LANGUAGE) -> Response:
        """Every alert in your scope (resolved ones for the retention time), with its summary."""
        fmt, t = CsvFormat(lang, zone), translator(lang)
        yes, no = t("csv.yes"), t("csv.no")

        def row(status: AlertStatus) -> tuple[object, ...]:
            alert, ack = status.alert, status.ack
            labels = alert.labels
            site, cab = alert.cabinet_key
            return (alert.fingerprint, _word(t, "rule.", alert.name),
                    text(f"state.{status.state.value}", lang),
                    text(f"severity.{alert.severity}", lang), site,
                    index.school_names.get(site, site), cab,
                    index.cabinet_names.get((site, cab), cab), labels.get("slot"),
                    labels.get("asset_tag"), alert_summary(labels, alert.annotations, lang, org),
                    fmt.time(alert.active_at), fmt.time(alert.starts_at),
                    fmt.time(alert.ends_at), ack.by if ack else None,
                    ack.comment if ack else None, yes if status.silenced_by else no)
        return _csv("alerts.csv", csv_header(ALERTS_COLUMNS, lang),
                    (row(status) for status in dash.statuses(scope)), fmt)

    return router
