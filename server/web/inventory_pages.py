"""The inventory in the dashboard: the iPads and where they are, an MDM import, one iPad's page,
and which iPad lives in a slot (issue 16: the server's inventory is the one home of asset tags).

Who may do what: the district admin everything; a municipality's technician places, takes out
and edits iPads at their schools and those in no slot (they may not pull an iPad out of another
municipality's cabinet); a school's viewer reads. Importing a file and deleting an iPad are the
admin's: both reach across the district.
"""

from __future__ import annotations

from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ..auth import Principal, Scope
from ..inventory import Inventory, InventoryError, IPad, Place, error_text, report_lines
from ..inventory.mdm_csv import MAX_BYTES, import_csv
from ..inventory.model import check_place, clean_tag
from .chart import battery_svg, sessions_svg
from .context import Dashboard
from .forms import FormTooLarge, read_form, read_upload
from .localtime import LocalTimes
from .render import language_of, page
from .signin import user_or_login
from .texts import translator

__all__ = ["inventory_router", "may_change"]

MAX_LISTED: Final = 2000  # a page lists at most this many iPads; the filters narrow it
MAX_SUGGESTED: Final = 300  # iPads in no slot offered when assigning one
MAX_SESSIONS: Final = 500  # an iPad's page draws at most this many charges (two school years)


def may_change(scope: Scope, ipad: IPad | None, target: Place | None) -> bool:
    """May this user put ``ipad`` (None: a new one) in ``target`` (None: in no slot)?"""
    if not scope.can_write:
        return False
    if ipad is not None and ipad.place is not None and not scope.sees(ipad.place.site):
        return False
    return target is None or scope.sees(target.site)


def _district_wide(scope: Scope) -> bool:
    return scope.can_write and scope.sites is None


def inventory_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    auth = dash.sources.auth
    org = dash.sources.org
    index = dash.index

    def inventory() -> Inventory:
        return dash.sources.assets.inventory

    def login(request: Request) -> Principal | Response:
        return user_or_login(auth, request)

    def problem(request: Request, who: Principal, status: int, key: str) -> Response:
        return page(request, "error.html", who, status, message_key=key)

    def place_text(place: Place | None) -> str:
        if place is None:
            return ""
        school = index.school_names.get(place.site, place.site)
        room = index.cabinet_names.get((place.site, place.cabinet), place.cabinet)
        return f"{school} · {room}"

    def times(request: Request) -> LocalTimes:
        return LocalTimes(org.zone, language_of(request), dash.sources.clock())

    def listing(request: Request, who: Principal, school: str, q: str, status: int = 200,
                report: list[str] | None = None, refused: bool = False) -> Response:
        scope = who.scope(org)
        if school and not scope.sees(school):
            return problem(request, who, 403, "forbidden")
        sites = [school] if school else (None if scope.sites is None else sorted(scope.sites))
        # iPads in no slot: for those who may place them (the viewer of a school needs only its own)
        ipads = inventory().ipads(sites, unplaced=scope.can_write and not school,
                                  limit=MAX_LISTED + 1)
        needle = q.strip().lower()
        if needle:
            ipads = [i for i in ipads if needle in i.asset_tag.lower()
                     or needle in (i.name or "").lower() or needle in (i.serial or "").lower()]
        schools = sorted(((site, name) for site, name in index.school_names.items()
                          if scope.sees(site)), key=lambda pair: pair[1])
        return page(request, "inventory.html", who, status,
                    page_at="/inventory?" + urlencode({"school": school, "q": q}),
                    ipads=ipads[:MAX_LISTED],
                    more=len(ipads) > MAX_LISTED, max_listed=MAX_LISTED, school=school, q=q,
                    schools=schools, place_text=place_text, times=times(request),
                    can_write=scope.can_write, district_wide=_district_wide(scope),
                    report=report or [], refused=refused, max_kib=MAX_BYTES // 1024)

    @router.get("/inventory")
    def inventory_page(request: Request, school: Annotated[str, Query(max_length=64)] = "",
                       q: Annotated[str, Query(max_length=64)] = "") -> Response:
        who = login(request)
        if isinstance(who, Response):
            return who
        return listing(request, who, school, q)

    async def acting(request: Request) -> tuple[Principal, dict[str, str]] | Response:
        who = auth.principal(request)
        if who is None:
            return RedirectResponse("/login", 303)
        try:
            form = await read_form(request)
        except FormTooLarge:
            return problem(request, who, 413, "too_large")
        auth.check_csrf(who, form.get("csrf"))
        return who, form

    @router.post("/inventory/import")
    async def import_file(request: Request) -> Response:
        who = auth.principal(request)
        if who is None:
            return RedirectResponse("/login", 303)
        try:
            fields, data = await read_upload(request, "file", MAX_BYTES)
        except FormTooLarge:
            return problem(request, who, 413, "too_large")
        auth.check_csrf(who, fields.get("csrf"))
        if not _district_wide(who.scope(org)):
            return problem(request, who, 403, "forbidden")
        lang = language_of(request)
        dry_run = fields.get("dry_run") == "1"
        try:
            report = import_csv(inventory(), data, who.name, dry_run=dry_run)
        except InventoryError as exc:
            return listing(request, who, "", "", 422, [error_text(exc, lang)], refused=True)
        return listing(request, who, "", "", 422 if report.errors else 200,
                       report_lines(report, lang, dry_run=dry_run), refused=bool(report.errors))

    @router.post("/inventory/new")
    async def new(request: Request) -> Response:
        got = await acting(request)
        if isinstance(got, Response):
            return got
        who, form = got
        if not may_change(who.scope(org), None, None):
            return problem(request, who, 403, "forbidden")
        try:
            tag = clean_tag(form.get("tag", ""))
            if inventory().get(tag) is not None:  # adding is not editing another's iPad
                raise InventoryError("tag_taken", tag)
            ipad = inventory().save(tag, form.get("serial"), form.get("name"), who.name)
        except InventoryError as exc:
            return listing(request, who, "", "", 422, [error_text(exc, language_of(request))], True)
        return RedirectResponse("/inventory/ipad?" + urlencode({"tag": ipad.asset_tag}), 303)

    def ipad_page(request: Request, who: Principal, ipad: IPad, status: int = 200,
                  error: str = "") -> Response:
        scope = who.scope(org)
        local, t = times(request), translator(language_of(request))
        recorder = dash.sessions
        sessions = recorder.of_ipad(ipad.asset_tag, MAX_SESSIONS) if recorder else []
        verdict = recorder.ageing.verdict(ipad.asset_tag) if recorder else None
        worn_below = 1 - recorder.ageing.policy.worn_drop if recorder else 0.8
        return page(request, "ipad.html", who, status,
                    page_at="/inventory/ipad?" + urlencode({"tag": ipad.asset_tag}),
                    ipad=ipad, place_text=place_text, place_of=Place,
                    moves=inventory().moves(ipad.asset_tag), times=local,
                    can_change=may_change(scope, ipad, ipad.place),
                    can_delete=_district_wide(scope), error=error,
                    sessions=sessions, verdict=verdict,
                    battery_chart=battery_svg([s for _, _, s in sessions],
                                              verdict.baseline_wh if verdict else None,
                                              worn_below, t("bat.title"), local, t),
                    sessions_chart=sessions_svg([s for _, _, s in sessions[:60]], t("sessions"),
                                                local, t))

    def visible(scope: Scope, ipad: IPad | None) -> bool:
        if ipad is None:
            return False
        return scope.sees(ipad.place.site) if ipad.place is not None else scope.can_write

    @router.get("/inventory/ipad")
    def ipad_get(request: Request, tag: Annotated[str, Query(max_length=100)] = "") -> Response:
        who = login(request)
        if isinstance(who, Response):
            return who
        ipad = inventory().get(tag)
        if not visible(who.scope(org), ipad):
            return problem(request, who, 404, "not_found")
        assert ipad is not None
        return ipad_page(request, who, ipad)

    @router.post("/inventory/ipad")
    async def ipad_post(request: Request) -> Response:
        got = await acting(request)
        if isinstance(got, Response):
            return got
        who, form = got
        scope = who.scope(org)
        ipad = inventory().get(form.get("tag", ""))
        if ipad is None or not visible(scope, ipad):
            return problem(request, who, 404, "not_found")
        action = form.get("action", "save")
        if action == "delete":
            if not _district_wide(scope):
                return problem(request, who, 403, "forbidden")
            inventory().delete(ipad.asset_tag)
            return RedirectResponse("/inventory", 303)
        if not may_change(scope, ipad, ipad.place):
            return problem(request, who, 403, "forbidden")
        try:
            if action == "unplace":
                inventory().place(ipad.asset_tag, None, who.name)
                tag = ipad.asset_tag
            else:
                new_tag = form.get("new_tag", "").strip() or None
                tag = inventory().save(ipad.asset_tag, form.get("serial"), form.get("name"),
                                       who.name, new_tag=new_tag).asset_tag
        except InventoryError as exc:
            return ipad_page(request, who, ipad, 422, error_text(exc, language_of(request)))
        return RedirectResponse("/inventory/ipad?" + urlencode({"tag": tag}), 303)

    def slot_page(request: Request, who: Principal, place: Place, status: int = 200,
                  error: str = "", typed: str = "") -> Response:
        current = inventory().snapshot().tag_at(place)
        suggestions = [i.asset_tag for i in inventory().ipads([], unplaced=True,
                                                               limit=MAX_SUGGESTED)]
        at = urlencode({"site": place.site, "cabinet": place.cabinet, "slot": place.slot})
        return page(request, "inventory_slot.html", who, status, page_at=f"/inventory/slot?{at}",
                    place=place,
                    room=place_text(place), current=inventory().get(current) if current else None,
                    suggestions=suggestions, error=error, typed=typed)

    def slot_place(site: str, cabinet: str, slot: int) -> Place | None:
        try:
            return check_place(site, cabinet, slot)
        except InventoryError:
            return None

    @router.get("/inventory/slot")
    def slot_get(request: Request, site: str = "", cabinet: str = "", slot: int = 0) -> Response:
        who = login(request)
        if isinstance(who, Response):
            return who
        place = slot_place(site, cabinet, slot)
        if place is None or (dash.sources.fleet.get(site, cabinet) is None and \
                (site, cabinet) not in index.cabinet_names):
            return problem(request, who, 404, "not_found")
        if not who.scope(org).acts_on(site):
            return problem(request, who, 403, "forbidden")
        return slot_page(request, who, place)

    @router.post("/inventory/slot")
    async def slot_post(request: Request) -> Response:
        got = await acting(request)
        if isinstance(got, Response):
            return got
        who, form = got
        slot = form.get("slot", "")
        place = slot_place(form.get("site", ""), form.get("cabinet", ""),
                           int(slot) if slot.isdigit() else 0)
        scope = who.scope(org)
        if place is None or not scope.acts_on(place.site):
            return problem(request, who, 403, "forbidden")
        back = f"/cabinets/{place.site}/{place.cabinet}/slots/{place.slot}"
        lang = language_of(request)
        if form.get("action") == "clear":
            current = inventory().snapshot().tag_at(place)
            if current is not None:
                inventory().place(current, None, who.name)
            return RedirectResponse(back, 303)
        typed = form.get("tag", "")
        try:
            tag = clean_tag(typed)  # the tag as stored: "GS  0001" is "GS 0001", and may be theirs
            if not may_change(scope, inventory().get(tag), place):
                raise InventoryError("not_yours", tag)
            inventory().place(tag, place, who.name, create=True)
        except InventoryError as exc:
            return slot_page(request, who, place, 422, error_text(exc, lang), typed[:100])
        return RedirectResponse(back, 303)

    return router
