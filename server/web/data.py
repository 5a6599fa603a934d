"""JSON and CSV routes of the dashboard (in /openapi.json): overview, cabinet, slot history,
search, the caller's identity, and CSV exports of inventory, sessions and alerts."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response, StreamingResponse

from ..api import InScope, Who
from ..i18n import DEFAULT_LANGUAGE, Language
from ..views import alerts_json, cabinet_json
from .context import Dashboard, OutOfScope
from .overview import Counts, Overview

__all__ = ["data_router", "overview_json"]


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


def _csv(name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _csv_stream(name: str, header: Sequence[str], rows: Iterable[Sequence[object]],
                chunk_rows: int = 5000) -> Response:
    def chunks() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for n, row in enumerate(rows, 1):
            writer.writerow(row)
            if n % chunk_rows == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return StreamingResponse(chunks(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


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

    @router.get("/me")
    def me(who: Who) -> dict[str, Any]:
        """Who you are, your role and scope."""
        scope = who.scope(dash.sources.org)
        return {"name": who.name, "role": who.user.role.value, "via": who.via,
                "municipality": who.user.municipality, "school": who.user.school,
                "sites": None if scope.sites is None else sorted(scope.sites),
                "can_write": scope.can_write}

    @router.get("/overview")
    def overview(scope: InScope, page: Annotated[int, Query(ge=1)] = 1,
                 per_page: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
        """District → municipality → school → cabinet with counts; cabinets paginated."""
        return overview_json(dash.overview(scope, page, per_page))

    @router.get("/cabinets/{site}/{cabinet}")
    def cabinet(scope: InScope, site: str, cabinet: str) -> dict[str, Any]:
        return cabinet_json(cabinet_or_raise(scope, site, cabinet))

    @router.get("/cabinets/{site}/{cabinet}/slots/{slot}/history")
    def slot_history(scope: InScope, site: str, cabinet: str, slot: int) -> dict[str, Any]:
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

    @router.get("/search")
    def search(scope: InScope, q: Annotated[str, Query(min_length=1, max_length=100)]) -> dict[str, Any]:
        """Schools by name or site id, slots by asset tag (substring, case-insensitive)."""
        return {"query": q, "hits": [
            {"kind": h.kind, "site": h.site, "cabinet": h.cabinet, "slot": h.slot, "label": h.label}
            for h in dash.search(scope, q)]}

    @router.get("/export/inventory.csv", response_class=Response)
    def inventory_csv(scope: InScope) -> Response:
        """One row per slot of every cabinet in your scope."""
        def rows() -> Iterator[tuple[object, ...]]:
            for view in dash.views(scope):
                mun = index.municipality_of(view.site)
                school = index.school_names.get(view.site, "")
                for s in view.slots:
                    yield (mun, view.site, school, view.cabinet, s.slot, s.asset_tag or "",
                           s.state.value, "" if s.power_w is None else s.power_w,
                           s.since.isoformat() if s.since else "", view.status.value)
        # 2.56 million rows at 80,000 cabinets: written out in chunks, never all in memory.
        return _csv_stream("inventory.csv", ("municipality", "site", "school", "cabinet", "slot",
                                             "asset_tag", "state", "power_w", "since",
                                             "cabinet_status"), rows())

    @router.get("/export/sessions.csv", response_class=Response)
    def sessions_csv(scope: InScope) -> Response:
        """Stored charge sessions in your scope, newest first."""
        sessions = dash.sessions.recent() if dash.sessions else []
        return _csv("sessions.csv", ("site", "cabinet", "slot", "asset_tag", "started_at",
                                     "ended_at", "duration_s", "energy_wh", "peak_w", "end",
                                     "taper_wh"),
                    ((site, cab, s.slot, s.asset_tag or "", s.started_at.isoformat(),
                      s.ended_at.isoformat(), s.duration_s, s.energy_wh, s.peak_w, s.end.value,
                      "" if s.taper_wh is None else s.taper_wh)
                     for site, cab, s in sessions if scope.sees(site)))

    @router.get("/export/alerts.csv", response_class=Response)
    def alerts_csv(scope: InScope, lang: Language = DEFAULT_LANGUAGE) -> Response:
        """Every alert in your scope (resolved ones for the retention time), with its summary."""
        now = dash.sources.clock()
        items = alerts_json(dash.statuses(scope), now, "all", lang)["alerts"]
        return _csv("alerts.csv", ("fingerprint", "alertname", "state", "severity", "site",
                                   "cabinet", "slot", "summary", "active_at", "starts_at",
                                   "ends_at", "acknowledged_by", "ack_comment", "silenced"),
                    ((a["fingerprint"], a["alertname"], a["state"], a["severity"],
                      a["labels"].get("site", ""), a["labels"].get("cabinet", ""),
                      a["labels"].get("slot", ""), a["summary"], a["active_at"], a["starts_at"],
                      a["ends_at"] or "", (a["ack"] or {}).get("by", ""),
                      (a["ack"] or {}).get("comment", ""), a["silenced"]) for a in items))

    return router
