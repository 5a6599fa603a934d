"""The HTML pages: login, overview, cabinet, slot, alerts, search; and the forms they post.

Every form carries the session's CSRF token; every page and form checks the caller's scope. What
a form may not choose: who acts (always the logged-in user, never a form field), where to go
afterwards (a path on this site only, ``local_path``), and which message a page shows (a fixed
text per known code; anything else is ignored).
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from ..alerts.model import Alert
from ..alerts.silence import Silence, SilenceKind
from ..alerts.store import Ack
from ..auth import COOKIE, LoginRefused, Principal
from ..auth.redirects import local_path
from ..fleet import CabinetView
from ..presence import blind_to_full_removal, judges_slots
from ..views import alerts_json, silence_json
from .certainty import mark_of
from .chart import sessions_svg, timeline_svg
from .context import Dashboard, OutOfScope
from .forms import FormTooLarge, read_form
from .localtime import LocalTimes
from .overview import overview_filter
from .render import language_of, page
from .signin import user_or_login
from .silences import describe_silence
from .texts import translator

__all__ = ["page_router"]

log = logging.getLogger(__name__)

LOGIN_COOKIE = "ladewache_login"
MAX_HOURS = 168  # a silence or a technician's visit lasts at most a week
MAX_HISTORY_HOURS: Final = 24 * 31  # a slot page draws at most a month of changes
# The only messages ``/login?error=`` shows, each a fixed text (server/web/texts.py); any other
# value is ignored. "login_failed"/"login_wait"/"login_busy" come from the POST itself.
LOGIN_NOTICES: Final = frozenset({"session_expired"})

Problem = Literal["forbidden", "not_found", "bad_request", "too_large"]  # error.html's texts


def grafana_link(base: str | None, site: str, cabinet: str, slot: int) -> str | None:
    """The configured Grafana dashboard for this slot (its variables as Grafana names them)."""
    if not base:
        return None
    joiner = "&" if "?" in base else "?"
    return base + joiner + urlencode({"var-site": site, "var-cabinet": cabinet, "var-slot": slot})


def _hours(value: str) -> timedelta:
    try:
        hours = float(value)
    except ValueError:
        hours = 0
    if not 0 < hours <= MAX_HOURS:
        raise OutOfScope("hours out of range")
    return timedelta(hours=hours)


def page_router(dash: Dashboard) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    auth = dash.sources.auth
    org = dash.sources.org

    def who_or_login(request: Request) -> Principal | Response:
        return user_or_login(auth, request)

    def problem(request: Request, who: Principal | None, status: int, key: Problem) -> Response:
        return page(request, "error.html", who, status, message_key=key)

    def refused(request: Request, who: Principal | None) -> Response:
        return problem(request, who, 403, "forbidden")

    def times(request: Request) -> LocalTimes:
        return LocalTimes(org.zone, language_of(request), dash.sources.clock())

    def evidence(cabinets: list[CabinetView]) -> dict[str, Any]:
        """What the certainty marks, the notices and the "not confirmed" list need."""
        deaf = dash.sources.deaf()  # out of earshot: its broker connection is down
        return {"mark": mark_of, "blind": blind_to_full_removal, "judges": judges_slots,
                "deaf": lambda view: deaf is not None and deaf(view.key),
                "unconfirmed": dash.unconfirmed(cabinets),
                "cabinet_name": lambda site, cab: dash.index.cabinet_names.get((site, cab), cab)}

    @router.get("/login")
    def login_form(request: Request, error: str = "") -> Response:
        token = secrets.token_urlsafe(16)
        response = page(request, "login.html", None, login_csrf=token,
                        error=error if error in LOGIN_NOTICES else "", wait=0,
                        next=local_path(request.query_params.get("next")))
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", max_age=3600)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormTooLarge:
            return problem(request, None, 413, "too_large")
        sent, expected = form.get("csrf", ""), request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not secrets.compare_digest(sent, expected):
            return refused(request, None)
        target = local_path(form.get("next"))
        # The TCP peer, or the client named by a proxy in [http] trusted_proxies (uvicorn
        # rewrites request.client only for those; X-Forwarded-For from anyone else is ignored).
        client = request.client.host if request.client else None
        try:
            session_id, _ = await auth.login(form.get("name", ""), form.get("password", ""),
                                             client)
        except LoginRefused as exc:
            status = 503 if exc.busy else 429 if exc.retry_after_s else 401
            error = "login_busy" if exc.busy else "login_wait" if exc.retry_after_s \
                else "login_failed"
            refused_page = page(request, "login.html", None, status, login_csrf=expected,
                                error=error, wait=int(exc.retry_after_s) + 1, next=target)
            if exc.retry_after_s:
                refused_page.headers["Retry-After"] = str(int(exc.retry_after_s) + 1)
            return refused_page
        response = RedirectResponse(target, 303)
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https",
                            max_age=int(auth.session_lifetime.total_seconds()))
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        who = auth.principal(request)
        if who is not None:
            try:
                form = await read_form(request)
            except FormTooLarge:
                return problem(request, who, 413, "too_large")
            auth.check_csrf(who, form.get("csrf"))
            auth.logout(request)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(COOKIE)
        return response

    @router.get("/")
    def overview(request: Request, page_no: Annotated[int, Query(alias="page", ge=1)] = 1,
                 municipality: str = "", school: str = "") -> Response:
        who = who_or_login(request)
        if isinstance(who, Response):
            return who
        scope = who.scope(org)
        chosen = overview_filter(dash.index, scope.sites, municipality, school)
        # dash.overview(scope, …) narrowed to the filter's sites (always within the scope)
        view = dash.counts.build(dash.sources.fleet, dash.firing_counts(scope), chosen.sites,
                                 page_no)
        return page(request, "overview.html", who, overview=view, filters=chosen, live=True)

    @router.get("/cabinets/{site}/{cabinet}")
    def cabinet(request: Request, site: str, cabinet: str) -> Response:
        who = who_or_login(request)
        if isinstance(who, Response):
            return who
        scope = who.scope(org)
        try:
            view = dash.cabinet(scope, site, cabinet)
        except OutOfScope:
            return refused(request, who)
        if view is None:
            return problem(request, who, 404, "not_found")
        now = dash.sources.clock()
        alerts = [a for a in alerts_json(dash.statuses(scope), now, "active",
                                         language_of(request), org)["alerts"]
                  if a["group"] == f"{site}/{cabinet}"]
        for item in alerts:
            item["can_act"] = scope.acts_on(site)
        return page(request, "cabinet.html", who, cab=view, alerts=alerts, live=True,
                    can_act=scope.acts_on(site), school=dash.index.school_names.get(site, site),
                    name=dash.index.cabinet_names.get((site, cabinet), cabinet),
                    times=times(request), **evidence([view]))

    @router.get("/schools/{site}")
    def school(request: Request, site: str) -> Response:
        who = who_or_login(request)
        if isinstance(who, Response):
            return who
        try:
            cabinets = dash.school(who.scope(org), site)
        except OutOfScope:
            return refused(request, who)
        if site not in dash.index.school_names and not cabinets:
            return problem(request, who, 404, "not_found")
        return page(request, "school.html", who, site=site, cabinets=cabinets, live=True,
                    all_cabinets=dash.cabinets_of(site),
                    school=dash.index.school_names.get(site, site), times=times(request),
                    **evidence(cabinets))

    @router.get("/cabinets/{site}/{cabinet}/slots/{slot}")
    def slot(request: Request, site: str, cabinet: str, slot: int,
             hours: Annotated[int, Query(ge=1, le=MAX_HISTORY_HOURS)] = 24) -> Response:
        who = who_or_login(request)
        if isinstance(who, Response):
            return who
        try:
            view = dash.cabinet(who.scope(org), site, cabinet)
        except OutOfScope:
            return refused(request, who)
        current = next((s for s in view.slots if s.slot == slot), None) if view else None
        if view is None or current is None:
            return problem(request, who, 404, "not_found")
        now = dash.sources.clock()
        start = now - timedelta(hours=hours)
        changes = dash.transitions(site, cabinet, slot, start, now)
        samples = dash.history.samples(site, cabinet, slot)
        sessions = ([s for _, _, s in dash.sessions.recent(site, cabinet, slot, 50)]
                    if dash.sessions else [])
        local, t = times(request), translator(language_of(request))
        return page(request, "slot.html", who, cab=view, slot=current, live=True,
                    times=local, mark=mark_of(current), can_assign=who.scope(org).acts_on(site),
                    room=dash.index.cabinet_names.get((site, cabinet), cabinet),
                    timeline=timeline_svg(changes, samples, start, now, "timeline", local, t),
                    sessions=sessions, sessions_chart=sessions_svg(sessions, "sessions", local, t),
                    hours=hours, durable=dash.store is not None,
                    grafana=grafana_link(dash.grafana_url, site, cabinet, slot))

    @router.get("/alerts")
    def alerts(request: Request, show_all: Annotated[bool, Query(alias="all")] = False) -> Response:
        who = who_or_login(request)
        if isinstance(who, Response):
            return who
        scope = who.scope(org)
        now = dash.sources.clock()
        items = alerts_json(dash.statuses(scope), now, "all" if show_all else "active",
                            language_of(request), org)["alerts"]
        for item in items:
            item["can_act"] = scope.acts_on(item["labels"].get("site", "")) and (
                scope.sites is None or "site" in item["labels"])
        t, local = translator(language_of(request)), times(request)
        silences = []
        for running in dash.sources.state.silences():
            if scope.sees_labels(running.matchers) and not running.expired(now):
                item = silence_json(running, now)
                item["can_act"] = scope.can_write
                item["what"] = describe_silence(running.matchers, dash.index, t)
                item["until"] = local.long(running.ends_at)
                silences.append(item)
        return page(request, "alerts.html", who, alerts=items, silences=silences,
                    show_all=show_all)

    @router.get("/search")
    def search(request: Request, q: str = "") -> Response:
        who = who_or_login(request)
        if isinstance(who, Response):
            return who
        return page(request, "search.html", who, q=q, hits=dash.search(who.scope(org), q),
                    cabinets_of=dash.cabinets_of,
                    room=lambda site, cab: dash.index.cabinet_names.get((site, cab), cab),
                    school_name=lambda site: dash.index.school_names.get(site, site))

    async def acting(request: Request) -> tuple[Principal, dict[str, str]] | Response:
        """A form post: logged in, with the right CSRF token. The actor is ``who`` (the session's
        user): a form's "by" or "created_by" field is never read."""
        who = auth.principal(request)
        if who is None:
            return RedirectResponse("/login", 303)
        try:
            form = await read_form(request)
        except FormTooLarge:
            return problem(request, who, 413, "too_large")
        auth.check_csrf(who, form.get("csrf"))
        return who, form

    def back(form: dict[str, str], default: str) -> Response:
        return RedirectResponse(local_path(form.get("back"), default), 303)

    def writable_alert(who: Principal, fingerprint: str) -> Alert | None:
        """The active alert, if this user may see and act on it; None refuses the request."""
        alert = dash.sources.alerts.get_active(fingerprint)
        scope = who.scope(org)
        if alert is None or not scope.sees_labels(alert.labels) or not scope.can_write:
            return None
        return alert

    @router.post("/alerts/{fingerprint}/ack")
    async def ack(request: Request, fingerprint: str) -> Response:
        got = await acting(request)
        if isinstance(got, Response):
            return got
        who, form = got
        alert = writable_alert(who, fingerprint)
        if alert is None:
            return refused(request, who)
        dash.sources.state.acknowledge(Ack(fingerprint, alert.active_at, who.name,
                                           form.get("comment", "")[:1000], dash.sources.clock()))
        return back(form, "/alerts")

    @router.post("/alerts/{fingerprint}/silence")
    async def silence(request: Request, fingerprint: str) -> Response:
        got = await acting(request)
        if isinstance(got, Response):
            return got
        who, form = got
        alert = writable_alert(who, fingerprint)
        if alert is None:
            return refused(request, who)
        now = dash.sources.clock()
        try:
            until = now + _hours(form.get("hours", ""))
        except OutOfScope:
            return problem(request, who, 422, "bad_request")
        dash.sources.state.add_silence(Silence(dict(alert.labels), now, until, who.name,
                                               form.get("comment", "")[:1000],
                                               SilenceKind.SILENCE, None, now))
        return back(form, "/alerts")

    @router.post("/cabinets/{site}/{cabinet}/technician")
    async def technician(request: Request, site: str, cabinet: str) -> Response:
        got = await acting(request)
        if isinstance(got, Response):
            return got
        who, form = got
        if not who.scope(org).acts_on(site):
            return refused(request, who)
        now = dash.sources.clock()
        try:
            until = now + _hours(form.get("hours", ""))
        except OutOfScope:
            return problem(request, who, 422, "bad_request")
        dash.sources.state.add_silence(Silence({"site": site, "cabinet": cabinet}, now, until,
                                               who.name, form.get("comment", "")[:1000],
                                               SilenceKind.TECHNICIAN, None, now))
        return back(form, f"/cabinets/{site}/{cabinet}")

    @router.post("/silences/{silence_id}/expire")
    async def expire(request: Request, silence_id: str) -> Response:
        got = await acting(request)
        if isinstance(got, Response):
            return got
        who, form = got
        scope = who.scope(org)
        target = next((s for s in dash.sources.state.silences() if s.id == silence_id), None)
        if target is None or not scope.can_write or not scope.sees_labels(target.matchers):
            return refused(request, who)
        dash.sources.state.expire_silence(silence_id, dash.sources.clock())
        log.info("silence %s ended by %s", silence_id, who.name)
        return back(form, "/alerts")

    return router


