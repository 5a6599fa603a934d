"""The dashboard's login and forms against the attack report of issue 15, through the real web app
over HTTP (httpx on the ASGI app, the client address set per client): no lockout of a user from
another address, password checks off the event loop, fixed texts for error codes, redirects only
to this site, the live block of every page, and the actor of a form taken from the session."""

from __future__ import annotations

import asyncio
import html
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from cabinet_agent.common.protocol import AgentStatus, BirthMessage, SlotInfo, StatusMessage
from server.alerts import Alert
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import COOKIE, Auth, Role, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from server.web.render import LANG_COOKIE

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
SITE = "gs-nord"
A, B = "198.51.100.7", "203.0.113.9"  # two client addresses
GATE_TIMEOUT_S = 10.0  # bounds a failing run only: a passing one never waits for it
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nord"}],
    "schools": [{"site": SITE, "name": "GS Nord", "municipality": "nord"}],
    "cabinets": [{"school": SITE, "id": "k1", "name": "Raum 12"}],
})
# Redirect targets that browsers would follow off-site, and a few that only look odd.
OFF_SITE = ["//evil.com", "/\\evil.com", "\\/evil.com", "/\\/evil.com", "///evil.com",
            "https://evil.com", "http:/evil.com", "javascript:alert(1)", "evil.com",
            "/\t/evil.com", "/\n/evil.com", " //evil.com", "/%2F/evil.com", "/%5Cevil.com",
            "/.//evil.com", "/../evil.com", "/\x00/evil.com"]
# … and this site's own pages, which stay as they are.
ON_SITE = ["/cabinets/gs-nord/k1?lang=en#slots", "/alerts?all=true", "/search?q=GS%20Nord"]


class GatedStore(UserStore):
    """Users in memory whose password check, once ``gate`` is set up, waits inside the check
    until the test opens the gate: a slow scrypt the test can see and end."""

    def __init__(self) -> None:
        super().__init__(open_store(None))
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.opened_in_time: list[bool] = []

    def check_password(self, name: str, password: str) -> User | None:
        if self.gate is not None:
            self.entered.set()
            self.opened_in_time.append(self.gate.wait(GATE_TIMEOUT_S))
        return super().check_password(name, password)


@dataclass
class World:
    app: FastAPI
    store: GatedStore
    state: StoredState
    fleet: Fleet
    fingerprint: str


def _fleet() -> Fleet:
    fleet = Fleet()
    env = {"v": 1, "site": SITE, "cabinet": "k1", "boot_id": "b" * 32, "seq": 0, "ts": NOW,
           "clock_synced": True}
    fleet.apply(StatusMessage(**env, status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**env, agent_version="0.1", config_hash="00000000",  # type: ignore[arg-type]
                             cabinet_model="m", slot_count=1,
                             slots=[SlotInfo(slot=1, asset_tag="GS-NORD-0001")],
                             poll_interval_s=1.0, telemetry_interval_s=10.0), NOW)
    return fleet


def make_world(max_pending: int = 32) -> World:
    state = StoredState.in_memory()
    alert = Alert({"alertname": "door_open", "site": SITE, "cabinet": "k1"}, {},
                  NOW - timedelta(hours=1), NOW - timedelta(minutes=30))
    state.put_active(alert)
    store = GatedStore()
    store.add_user(User("admin", Role.ADMIN), PASSWORD, NOW)
    store.add_user(User("tech", Role.TECHNICIAN, "nord"), PASSWORD, NOW)
    fleet = _fleet()
    sources = ApiSources(
        fleet=fleet, alerts=state, clock=lambda: NOW, state=state, org=ORG,
        ingest_stats=lambda **_: IngestStats(1, 1, {}), mqtt_stats=lambda: MqttStats(True, 1, 0, None),
        tsdb_stats=lambda: SinkStats(SinkHealth.OK),
        auth=Auth(store, lambda: NOW, max_pending=max_pending))
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources))
    return World(app, store, state, fleet, alert.fingerprint)


@pytest.fixture
def world() -> World:
    return make_world()


@asynccontextmanager
async def browser_at(app: FastAPI, address: str = A) -> AsyncIterator[httpx.AsyncClient]:
    """One browser (its own cookies) at one client address; a server error is a 500 answer."""
    transport = httpx.ASGITransport(app=app, client=(address, 50_000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


async def log_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD,
                 next_: str | None = None) -> httpx.Response:
    form = {"name": name, "password": password,
            "csrf": _csrf((await client.get("/login")).text)}
    if next_ is not None:
        form["next"] = next_
    return await client.post("/login", data=form)


# login limits: per (user, address) and per address, never per user alone


def test_failures_from_one_address_do_not_stop_the_user_from_another(world: World) -> None:
    async def scenario() -> None:
        async with browser_at(world.app, A) as attacker, browser_at(world.app, B) as teacher:
            codes = [(await log_in(attacker, "tech", "wrong password")).status_code
                     for _ in range(6)]
            assert codes == [401] * 5 + [429]
            paused = await log_in(attacker, "tech")  # even the right password, from A
            assert paused.status_code == 429 and int(paused.headers["retry-after"]) > 0
            arrived = await log_in(teacher, "tech")  # the teacher herself, from B
            assert arrived.status_code == 303 and arrived.headers["location"] == "/"
            assert (await teacher.get("/")).status_code == 200

    asyncio.run(scenario())


# password checks: off the event loop, and bounded


def test_another_request_is_served_while_a_login_checks_its_password(world: World) -> None:
    world.store.gate = threading.Event()

    async def scenario() -> httpx.Response:
        async with browser_at(world.app) as client:
            form = {"name": "admin", "password": PASSWORD,
                    "csrf": _csrf((await client.get("/login")).text)}
            login = asyncio.create_task(client.post("/login", data=form))
            assert await asyncio.to_thread(world.store.entered.wait, GATE_TIMEOUT_S)
            # The check is running and waits for the gate: had it blocked the event loop, this
            # request would not be answered before the gate timed out.
            other = await client.get("/login?lang=en")
            assert other.status_code == 200 and not login.done()
            assert world.store.gate is not None
            world.store.gate.set()
            return await login

    assert asyncio.run(scenario()).status_code == 303
    assert world.store.opened_in_time == [True]  # the gate was opened, not timed out


def test_logins_beyond_the_waiting_limit_are_refused_at_once() -> None:
    world = make_world(max_pending=1)
    world.store.gate = threading.Event()

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with browser_at(world.app, A) as first, browser_at(world.app, B) as second:
            form = {"name": "admin", "password": PASSWORD,
                    "csrf": _csrf((await first.get("/login")).text)}
            waiting = asyncio.create_task(first.post("/login", data=form))
            assert await asyncio.to_thread(world.store.entered.wait, GATE_TIMEOUT_S)
            busy = await log_in(second, "tech")
            assert world.store.gate is not None
            world.store.gate.set()
            return await waiting, busy, await log_in(second, "tech")

    done, busy, again = asyncio.run(scenario())
    assert done.status_code == 303
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert "Gerade melden sich sehr viele an" in busy.text
    assert again.status_code == 303  # the refused attempt did not count as a failure


# messages: fixed texts for known codes, anything else ignored

INJECTIONS = ["{0.__class__}", "{seconds.__class__.__mro__}", "{seconds.__init__.__globals__}",
              "{}", "{", "%s%s%s", "<script>alert(1)</script>", "forbidden", "login_wait"]


@pytest.mark.parametrize("error", INJECTIONS)
def test_the_login_page_ignores_unknown_error_codes(world: World, error: str) -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with browser_at(world.app) as client:
            return (await client.get("/login", params={"error": error, "wait": "99999"}),
                    await client.get("/login"))

    response, plain = asyncio.run(scenario())
    assert response.status_code == 200
    # a random token may contain anything; the language switch keeps the query (below)
    shown = _without_lang_switch(_without_csrf(response.text))
    for leak in ("__", "<class", "<script>", "99999", 'role="alert"'):
        assert leak not in shown, leak
    assert shown == _without_lang_switch(_without_csrf(plain.text))  # as if none was given
    # The switch to English keeps the query as it came, percent-encoded inside its attribute:
    # a link to this very page, never text on it.
    href = _lang_switch(response.text)
    assert not set(href) & set("{}<>\"' "), href
    parts = urlsplit(html.unescape(href))
    assert (parts.scheme, parts.netloc, parts.path) == ("", "", "")
    assert parse_qsl(parts.query) == [("error", error), ("wait", "99999"), ("lang", "en")]


def _without_csrf(page: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', "", page)


_LANG_SWITCH = re.compile(r'<a href="([^"]*)" class="lang">')


def _lang_switch(page: str) -> str:
    (href,) = _LANG_SWITCH.findall(page)
    return href


def _without_lang_switch(page: str) -> str:
    return _LANG_SWITCH.sub('<a class="lang">', page)


@pytest.mark.parametrize(("lang", "text"), [
    ("de", "Ihre Sitzung ist abgelaufen – bitte erneut anmelden."),
    ("en", "Your session has expired – please log in again."),
])
def test_an_expired_session_leads_to_the_login_with_a_fixed_notice(world: World, lang: str,
                                                                    text: str) -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with browser_at(world.app) as client:
            client.cookies.set(COOKIE, "a-session-that-ended")
            client.cookies.set(LANG_COOKIE, lang)
            to_login = await client.get(f"/alerts?lang={lang}")
            return to_login, await client.get(to_login.headers["location"])

    to_login, login = asyncio.run(scenario())
    assert to_login.status_code == 303
    assert to_login.headers["location"] == "/login?next=/alerts%3Flang%3D" + lang \
        + "&error=session_expired"
    assert text in login.text
    assert 'name="next" value="/alerts?lang=' + lang + '"' in login.text


# redirects: a path on this site, or the default


def test_login_never_redirects_off_site(world: World) -> None:
    async def scenario() -> dict[str, tuple[str, str]]:
        seen = {}
        for target in OFF_SITE + ON_SITE:
            async with browser_at(world.app) as client:
                form_page = await client.get("/login", params={"next": target})
                shown = re.search(r'name="next" value="([^"]*)"', form_page.text)
                login = await log_in(client, "admin", next_=target)
                assert login.status_code == 303
                seen[target] = (shown.group(1) if shown else "?", login.headers["location"])
        return seen

    assert asyncio.run(scenario()) == {**{target: ("/", "/") for target in OFF_SITE},
                                       **{target: (target, target) for target in ON_SITE}}


def test_forms_never_redirect_off_site(world: World) -> None:
    async def scenario() -> dict[str, str]:
        async with browser_at(world.app) as client:
            await log_in(client, "admin")
            csrf = _csrf((await client.get("/alerts")).text)
            seen = {}
            for target in OFF_SITE + ON_SITE:
                response = await client.post(f"/alerts/{world.fingerprint}/silence",
                                             data={"csrf": csrf, "hours": "1", "back": target})
                assert response.status_code == 303
                seen[target] = response.headers["location"]
            return seen

    assert asyncio.run(scenario()) == {**{target: "/alerts" for target in OFF_SITE},
                                       **{target: target for target in ON_SITE}}


# the live refresh: every page's live block renders on its own


@pytest.mark.parametrize("path", ["/", "/?page=1&lang=en", "/schools/gs-nord",
                                  "/cabinets/gs-nord/k1", "/cabinets/gs-nord/k1/slots/1"])
def test_every_live_page_renders_its_live_block_alone(world: World, path: str) -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with browser_at(world.app) as client:
            await log_in(client, "tech")
            whole = await client.get(path)
            return whole, await client.get(path + ("&" if "?" in path else "?") + "partial=1")

    whole, partial = asyncio.run(scenario())
    assert whole.status_code == 200 and partial.status_code == 200
    assert 'data-live="5000"' in whole.text
    assert "<html" not in partial.text and "<h1>" in partial.text
    assert partial.text.strip() in whole.text  # the very block the page shows


# the actor of a form: the session's user, never a form field


def test_form_actions_are_recorded_under_the_logged_in_user(world: World) -> None:
    forged = {"by": "mallory", "created_by": "mallory", "author": "mallory", "user": "mallory"}

    async def scenario() -> list[int]:
        async with browser_at(world.app) as client:
            await log_in(client, "tech")
            csrf = _csrf((await client.get("/alerts")).text)
            codes = []
            for path, fields in ((f"/alerts/{world.fingerprint}/ack", {"comment": "on it"}),
                                 (f"/alerts/{world.fingerprint}/silence", {"hours": "2"}),
                                 ("/cabinets/gs-nord/k1/technician", {"hours": "1"})):
                response = await client.post(path, data={"csrf": csrf, **forged, **fields})
                codes.append(response.status_code)
            silence = world.state.silences()[0]
            response = await client.post(f"/silences/{silence.id}/expire",
                                         data={"csrf": csrf, **forged})
            codes.append(response.status_code)
            return codes

    assert asyncio.run(scenario()) == [303] * 4
    assert [a.by for a in world.state.acks()] == ["tech"]
    assert sorted(s.created_by for s in world.state.silences()) == ["tech", "tech"]


def test_a_form_larger_than_any_real_one_is_refused(world: World) -> None:
    async def scenario() -> httpx.Response:
        async with browser_at(world.app) as client:
            await log_in(client, "admin")
            csrf = _csrf((await client.get("/alerts")).text)
            return await client.post(f"/alerts/{world.fingerprint}/ack",
                                     data={"csrf": csrf, "comment": "x" * 100_000})

    response = asyncio.run(scenario())
    assert response.status_code == 413 and "Die Eingabe ist zu lang." in response.text
    assert world.state.acks() == []
