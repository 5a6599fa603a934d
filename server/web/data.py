"""JSON and CSV routes of the dashboard (in /openapi.json): overview, cabinet, slot history,
search, the caller's identity, and CSV exports of inventory, sessions and alerts.

CSV cells are neutralised against formula injection (``csv_cell``): a spreadsheet runs a cell
that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and asset tags, school names, label
values and comments come from cabinets, the organisation file and users.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response, StreamingResponse

from cabinet_agent.protocol import MAX_SLOTS

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
from ..i18n import DEFAULT_LANGUAGE, Language
from ..views import alerts_json, cabinet_json
from .context import Dashboard, OutOfScope
from .overview import Counts, Overview

__all__ = ["csv_cell", "data_router", "overview_json"]


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


def _writer(out: io.StringIO) -> Any:
    # Every cell quoted (OWASP): a separator or quote inside a value cannot start a new cell.
    return csv.writer(out, quoting=csv.QUOTE_ALL)


def _safe(row: Sequence[object]) -> list[object]:
    return [csv_cell(value) for value in row]


def _csv(name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    out = io.StringIO()
    writer = _writer(out)
    writer.writerow(_safe(header))
    writer.writerows(_safe(row) for row in rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _csv_stream(name: str, header: Sequence[str], rows: Iterable[Sequence[object]],
                chunk_rows: int = 5000) -> Response:
    def chunks() -> Iterator[str]:
        out = io.StringIO()
        writer = _writer(out)
        writer.writerow(_safe(header))
        for n, row in enumerate(rows, 1):
            writer.writerow(_safe(row))
            if n % chunk_rows == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


class CsvResponse(Response):
    """Only for /openapi.json: the exports answer text/csv."""

    media_type = "text/csv"


def data_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["dashboard"])
    index = dash.index

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
                     slot: Annotated[int, Path(ge=1, le=MAX_SLOTS)]) -> dict[str, Any]:
        """State changes and power samples the server kept (source ``server``), and the slot's
        stored charge sessions."""
        cabinet_or_raise(scope, site, cabinet)
        sessions = dash.sessions.recent(site, cabinet, slot, 200) if dash.sessions else []
        return {
            "source": "server",
            "transitions": [{"at": t.at.isoformat(), "state": t.state.value}
                            for t in dash.history.transitions(site, cabinet, slot)],
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
    def inventory_csv(scope: InScope) -> Response:
        """One row per slot of every cabinet in your scope."""
        def rows() -> Iterator[tuple[object, ...]]:
            for view in dash.views(scope):
                mun = index.municipality_of(view.site)
                school = index.school_names.get(view.site, "")
                for s in view.slots:
                    yield (mun, view.site, school, view.cabinet, s.slot, s.asset_tag,
                           s.state.value, s.power_w, s.since.isoformat() if s.since else None,
                           view.status.value)
        # 2.56 million rows at 80,000 cabinets: written out in chunks, never all in memory.
        return _csv_stream("inventory.csv", ("municipality", "site", "school", "cabinet", "slot",
                                             "asset_tag", "state", "power_w", "since",
                                             "cabinet_status"), rows())

    @router.get("/export/sessions.csv", response_class=CsvResponse,
                responses=csv_responses("one row per charge session"))
    def sessions_csv(scope: InScope) -> Response:
        """Stored charge sessions in your scope, newest first."""
        sessions = dash.sessions.recent() if dash.sessions else []
        return _csv("sessions.csv", ("site", "cabinet", "slot", "asset_tag", "started_at",
                                     "ended_at", "duration_s", "energy_wh", "peak_w", "end",
                                     "taper_wh"),
                    ((site, cab, s.slot, s.asset_tag, s.started_at.isoformat(),
                      s.ended_at.isoformat(), s.duration_s, s.energy_wh, s.peak_w, s.end.value,
                      s.taper_wh)
                     for site, cab, s in sessions if scope.sees(site)))

    @router.get("/export/alerts.csv", response_class=CsvResponse,
                responses=csv_responses("one row per alert"))
    def alerts_csv(scope: InScope, lang: Language = DEFAULT_LANGUAGE) -> Response:
        """Every alert in your scope (resolved ones for the retention time), with its summary."""
        now = dash.sources.clock()
        items = alerts_json(dash.statuses(scope), now, "all", lang)["alerts"]
        return _csv("alerts.csv", ("fingerprint", "alertname", "state", "severity", "site",
                                   "cabinet", "slot", "summary", "active_at", "starts_at",
                                   "ends_at", "acknowledged_by", "ack_comment", "silenced"),
                    ((a["fingerprint"], a["alertname"], a["state"], a["severity"],
                      a["labels"].get("site", ""), a["labels"].get("cabinet", ""),
                      a["labels"].get("slot"), a["summary"], a["active_at"], a["starts_at"],
                      a["ends_at"], (a["ack"] or {}).get("by"), (a["ack"] or {}).get("comment"),
                      a["silenced"]) for a in items))

    return router
