"""The "Fehlende iPads" page (``/missing``, ``?print=1`` for A4 paper) and its CSV for German
Excel (``/api/export/missing.csv``); the list itself is built in ``missing.py``.

``?school=`` (a site id) and ``?municipality=`` (a municipality id) narrow the list inside the
caller's scope: a filter outside it is refused (403), an unknown municipality is 404.

The CSV is for German Excel opened by double-click: ``;`` between cells, a UTF-8 byte order mark
(else Excel reads the umlauts as Windows-1252), times in local time as ``02.12.2026 16:30`` (a
date to Excel, no ISO offset), and every text cell through ``csv_cell`` (formula injection).
The list has no fractional numbers (the slot is an integer), so no decimal comma is needed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from ..api import InScope
from ..api_models import ErrorOut, csv_responses
from ..auth import Scope
from ..formatting import csv_time
from ..i18n import DEFAULT_LANGUAGE, Language
from .context import Dashboard, OutOfScope
from .data import CsvResponse, csv_cell
from .localtime import LocalTimes
from .missing import MissingIPad, by_school, local_day, missing_ipads
from .render import language_of, page
from .signin import user_or_login
from .texts import translator

__all__ = ["Selection", "missing_router", "select"]

_BOM: Final = "\ufeff"
SchoolFilter = Annotated[str, Query(max_length=100, description="a school's site id")]
MunicipalityFilter = Annotated[str, Query(max_length=100, description="a municipality's id")]


class _Unknown(LookupError):
    """No such municipality (404)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What the list covers: ``sites`` (None: everything the admin sees), and its title."""

    sites: frozenset[str] | None
    title: str
    school: str = ""
    municipality: str = ""

    def sees(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    @property
    def query(self) -> str:
        pairs = [(k, v) for k, v in (("school", self.school), ("municipality", self.municipality))
                 if v]
        return urlencode(pairs)


def select(dash: Dashboard, scope: Scope, school: str = "", municipality: str = "") -> Selection:
    """The caller's scope, narrowed by the filters. Raises ``OutOfScope`` or ``_Unknown``."""
    index = dash.index
    sites = scope.sites
    title = index.district or ""
    if municipality:
        if municipality not in index.municipality_names:
            raise _Unknown(municipality)
        own = frozenset(s for s, m in index.school_municipality.items() if m == municipality)
        if sites is not None and not own & sites:
            raise OutOfScope(municipality)
        sites = own if sites is None else own & sites
        title = index.municipality_names[municipality]
    if school:
        if not scope.sees(school) or (sites is not None and school not in sites):
            raise OutOfScope(school)
        sites = frozenset({school})
    if sites is not None and len(sites) == 1:
        (only,) = sites
        title = index.school_names.get(only, only)
    elif sites is not None and not municipality:
        municipalities = {index.school_municipality.get(s) for s in sites}
        if len(municipalities) == 1 and (only_m := municipalities.pop()) is not None:
            title = index.municipality_names.get(only_m, title)
    return Selection(sites, title, school, municipality)


def csv_rows(items: Sequence[MissingIPad], zone: ZoneInfo, lang: Language) -> str:
    """The CSV text (without the byte order mark): a header and one row per missing iPad."""
    t = translator(lang)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_ALL)
    header = [t("municipality"), t("school"), t("cabinet"), t("slot"), t("asset_tag"),
              t("missing_since"), t("certainty"), t("missing_found"), t("missing_check"),
              t("missing_back")]
    writer.writerow([csv_cell(h) for h in header])
    for item in items:
        writer.writerow([csv_cell(value) for value in (
            item.municipality, item.school, item.cabinet_name, item.slot, item.asset_tag,
            csv_time(item.since, zone, lang), t(f"cert.{item.certainty.value}"),
            t(f"missing.how.{item.found.value}"), csv_time(item.check, zone, lang),
            csv_time(item.back_at, zone, lang))])
    return out.getvalue()


def _csv_errors() -> dict[int | str, dict[str, object]]:
    error = {"application/json": {"schema": ErrorOut.model_json_schema()}}
    return {**csv_responses("one row per missing iPad"),
            403: {"description": "a filter outside your scope", "content": error},
            404: {"description": "no such municipality", "content": error}}


def missing_router(dash: Dashboard) -> APIRouter:
    router = APIRouter()
    org = dash.sources.org

    def build(selection: Selection) -> list[MissingIPad]:
        cabinets = dash.views(Scope(selection.sites, False))
        return missing_ipads(cabinets, dash.sources.alerts.all(), dash.index,
                             selection.sees, dash.sources.clock(), org.zone)

    @router.get("/missing", include_in_schema=False)
    def missing_page(request: Request, school: SchoolFilter = "",
                     municipality: MunicipalityFilter = "", print_view: Annotated[
                         bool, Query(alias="print")] = False) -> Response:
        who = user_or_login(dash.sources.auth, request)
        if isinstance(who, Response):
            return who
        scope = who.scope(org)
        try:
            selection = select(dash, scope, school, municipality)
        except OutOfScope:
            return page(request, "error.html", who, 403, message_key="forbidden")
        except _Unknown:
            return page(request, "error.html", who, 404, message_key="not_found")
        lang = language_of(request)
        now = dash.sources.clock()
        sites = sorted((s for s in dash.index.school_names if scope.sees(s)),
                       key=lambda s: dash.index.school_names[s].casefold())
        municipalities = sorted(
            (m for m, name in dash.index.municipality_names.items()
             if any(dash.index.school_municipality.get(s) == m for s in sites)),
            key=lambda m: dash.index.municipality_names[m].casefold())
        return page(request, "missing.html", who, parts=by_school(build(selection)),
                    selection=selection, print_view=print_view, now=now,
                    times=LocalTimes(org.zone, lang, now), today=local_day(now, org.zone),
                    filter_sites=sites, filter_municipalities=municipalities,
                    school_names=dash.index.school_names,
                    municipality_names=dash.index.municipality_names)

    @router.get("/api/export/missing.csv", tags=["dashboard"], response_class=CsvResponse,
                responses=_csv_errors())
    def missing_csv(scope: InScope, school: SchoolFilter = "",
                    municipality: MunicipalityFilter = "",
                    lang: Language = DEFAULT_LANGUAGE) -> Response:
        """The missing iPads in your scope (not back at today's return check, or judged missing
        by evidence), for German Excel: ``;``, UTF-8 with BOM, local times."""
        try:
            selection = select(dash, scope, school, municipality)
        except OutOfScope as exc:
            raise HTTPException(403, "outside your role or scope") from exc
        except _Unknown as exc:
            raise HTTPException(404, f"no municipality {municipality}") from exc
        now = dash.sources.clock()
        body = _BOM + csv_rows(build(selection), org.zone, lang)
        stem = "fehlende-ipads" if lang == "de" else "missing-ipads"
        name = f"{stem}-{local_day(now, org.zone).isoformat()}.csv"
        return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8",
                         headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return router
