"""The inventory over HTTP for scripts: list the iPads, import an MDM export (``text/csv``).
The dashboard's pages are ``inventory_pages.py``; both go through ``server.inventory``."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..api import InScope, Who, invalid, refuse_unless
from ..api_models import ImportOut, InventoryOut, IPadOut, error_responses
from ..i18n import DEFAULT_LANGUAGE, Language
from ..inventory import ImportReport, InventoryError, IPad, error_text
from ..inventory.mdm_csv import MAX_BYTES, import_csv
from ..inventory.model import MAX_SLOT, MAX_TAG, check_place, clean_tag
from .context import Dashboard
from .inventory_pages import may_change

__all__ = ["inventory_api_router"]

MAX_LISTED: Final = 20_000


class PlaceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset_tag: str = Field(min_length=1, max_length=MAX_TAG)
    site: str | None = Field(default=None, max_length=64, description="null: in no slot")
    cabinet: str | None = Field(default=None, max_length=64)
    slot: int | None = Field(default=None, ge=1, le=MAX_SLOT)
    create: bool = Field(default=False, description="add the asset tag if the inventory lacks it")


def _ipad(ipad: IPad) -> dict[str, Any]:
    place = ipad.place
    return {"asset_tag": ipad.asset_tag, "serial": ipad.serial, "name": ipad.name,
            "site": place.site if place else None, "cabinet": place.cabinet if place else None,
            "slot": place.slot if place else None,
            "placed_at": ipad.placed_at.isoformat() if ipad.placed_at else None}


def _report(report: ImportReport, saved: bool, lang: Language) -> dict[str, Any]:
    return {"saved": saved, "added": report.added, "updated": report.updated,
            "unchanged": report.unchanged, "skipped": report.skipped,
            "errors": [{"line": line, "code": error.code, "message": error_text(error, lang)}
                       for line, error in report.errors]}


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BYTES:
            raise HTTPException(413, f"the file is larger than {MAX_BYTES // 1024} KiB")
    return bytes(body)


def inventory_api_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["inventory"])
    org = dash.sources.org

    @router.get("/inventory", response_model=InventoryOut, responses=error_responses(401, 403))
    def listing(scope: InScope, school: Annotated[str, Query(max_length=64)] = "") -> dict[str, Any]:
        """The iPads you may see: placed at your schools, and (if you may place them) those in
        no slot. ``school`` narrows it to one school's."""
        refuse_unless(not school or scope.sees(school))
        sites = [school] if school else (None if scope.sites is None else sorted(scope.sites))
        ipads = dash.sources.assets.inventory.ipads(
            sites, unplaced=scope.can_write and not school, limit=MAX_LISTED + 1)
        return {"ipads": [_ipad(i) for i in ipads[:MAX_LISTED]],
                "truncated": len(ipads) > MAX_LISTED}

    @router.post("/inventory/import", response_model=ImportOut,
                 responses={**error_responses(401, 403, 413),
                            409: {"model": ImportOut, "description": "refused: nothing saved"}},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "text/csv": {"schema": {"type": "string"}}},
                     "description": "an MDM's device list: serial, asset tag, name"}})
    async def import_file(request: Request, who: Who, dry_run: bool = False,
                          lang: Language = DEFAULT_LANGUAGE) -> Any:
        """Add or update iPads from an MDM export (Jamf, Relution, Mosyle, Intune: CSV with ',' or
        ';', UTF-8 or Windows-1252). All or nothing: with any error nothing is saved and the
        answer is 409 listing every bad line. The district admin's."""
        scope = who.scope(org)
        refuse_unless(scope.can_write and scope.sites is None)
        data = await _body(request)
        try:
            report = import_csv(dash.sources.assets.inventory, data, who.name, dry_run=dry_run)
        except InventoryError as exc:
            report = ImportReport(errors=[(0, exc)])
        body = _report(report, not report.errors and not dry_run, lang)
        return JSONResponse(body, status_code=409) if report.errors else body

    @router.post("/inventory/place", response_model=IPadOut,
                 responses=error_responses(401, 403, 404))
    def place(body: PlaceBody, who: Who) -> dict[str, Any]:
        """Put an iPad in a slot (the one there is taken out, and keeps its identity), or in no
        slot (site, cabinet and slot null). For a slot whose hardware cannot tell which iPad it
        holds: the technician says it."""
        scope = who.scope(org)
        inventory = dash.sources.assets.inventory
        where = (body.site, body.cabinet, body.slot)
        if any(v is None for v in where) and any(v is not None for v in where):
            raise invalid(("body", "slot"), "give site, cabinet and slot, or none of them")
        try:
            target = check_place(*where) if body.site is not None else None  # type: ignore[arg-type]
        except InventoryError as exc:
            raise invalid(("body", "site"), error_text(exc, "en"), body.site) from exc
        try:
            tag = clean_tag(body.asset_tag)
        except InventoryError as exc:
            raise invalid(("body", "asset_tag"), error_text(exc, "en"), body.asset_tag) from exc
        ipad = inventory.get(tag)
        if ipad is None and not body.create:
            raise HTTPException(404, f"no iPad with asset tag {body.asset_tag!r}")
        refuse_unless(may_change(scope, ipad, target))
        try:
            inventory.place(tag, target, who.name, create=body.create)
        except InventoryError as exc:
            raise invalid(("body", "asset_tag"), error_text(exc, "en"), body.asset_tag) from exc
        placed = inventory.get(tag)
        assert placed is not None
        return _ipad(placed)

    return router
