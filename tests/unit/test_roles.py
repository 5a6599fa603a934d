"""Roles and scope: a municipality technician neither sees nor acts on another municipality's
school, through the API (token) or the pages (session + CSRF); a school viewer only reads."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cabinet_agent.common.protocol import AgentStatus, BirthMessage, SlotInfo, StatusMessage
from server.alerts import Alert
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nord"}, {"id": "sued", "name": "Süd"}],
    "schools": [{"site": "gs-nord", "name": "GS Nord", "municipality": "nord"},
                {"site": "gs-sued", "name": "GS Süd", "municipality": "sued"}],
    "cabinets": [{"school": "gs-nord", "id": "k1"}, {"school": "gs-sued", "id": "k1"}],
})


def _fleet() -> Fleet:
    fleet = Fleet()
    for site in ("gs-nord", "gs-sued"):
        env = {"v": 1, "site": site, "cabinet": "k1", "boot_id": "b" * 32, "seq": 0,
               "ts": NOW, "clock_synced": True}
        fleet.apply(StatusMessage(**env, status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
        fleet.apply(BirthMessage(**env, agent_version="0.1", config_hash="00000000",  # type: ignore[arg-type]
                                 cabinet_model="m", slot_count=1,
                                 slots=[SlotInfo(slot=1, asset_tag=f"{site.upper()}-0001")],
                                 poll_interval_s=1.0, telemetry_interval_s=10.0), NOW)
    return fleet


class Client:
    def __init__(self, app: FastAPI, token: str | None = None) -> None:
        self.app = app
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.cookies = httpx.Cookies()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://test", headers=self.headers,
                                         cookies=self.cookies) as client:
                response = await client.request(method, path, **kwargs)
                self.cookies.update(client.cookies)
                return response
        return asyncio.run(call())

    def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        form = self.request("GET", "/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        return self.request("POST", "/login", data={"name": name, "password": password,
                                                     "csrf": csrf})

    def csrf(self) -> str:
        page = self.request("GET", "/alerts").text
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


@pytest.fixture
def world() -> tuple[FastAPI, dict[str, str], dict[str, str]]:
    state = StoredState.in_memory()
    fingerprints = {}
    for site in ("gs-nord", "gs-sued"):
        alert = Alert({"alertname": "door_open", "site": site, "cabinet": "k1"}, {},
                      NOW - timedelta(hours=1), NOW - timedelta(minutes=30))
        state.put_active(alert)
        fingerprints[site] = alert.fingerprint
    store = UserStore(open_store(None))
    for user in (User("admin", Role.ADMIN), User("tech-nord", Role.TECHNICIAN, "nord"),
                 User("viewer-nord", Role.VIEWER, school="gs-nord")):
        store.add_user(user, PASSWORD, NOW)
    tokens = {u.name: store.create_token(u.name, "t", NOW) for u in store.users()}
    sources = ApiSources(
        fleet=_fleet(), alerts=state, clock=lambda: NOW, state=state, org=ORG,
        ingest_stats=lambda **_: IngestStats(1, 1, {}), mqtt_stats=lambda: MqttStats(True, 1, 0, None),
        tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources))
    return app, tokens, fingerprints


def test_without_credentials_everything_but_health_and_metrics_is_refused(world: Any) -> None:
    app, _, _ = world
    anonymous = Client(app)
    for path in ("/api/fleet", "/api/alerts", "/api/overview", "/api/export/inventory.csv",
                 "/api/cabinets/gs-nord/k1"):
        assert anonymous.request("GET", path).status_code == 401, path
    assert anonymous.request("GET", "/").status_code == 303  # to the login page
    assert anonymous.request("GET", "/healthz").status_code == 200
    assert anonymous.request("GET", "/metrics").status_code == 200
    assert Client(app, "lw_0000_wrong").request("GET", "/api/fleet").status_code == 401


def test_technician_api_sees_only_own_municipality(world: Any) -> None:
    app, tokens, _ = world
    tech = Client(app, tokens["tech-nord"])
    assert {c["site"] for c in tech.request("GET", "/api/fleet").json()["cabinets"]} == {"gs-nord"}
    assert {a["labels"]["site"] for a in tech.request("GET", "/api/alerts").json()["alerts"]} \
        == {"gs-nord"}
    overview = tech.request("GET", "/api/overview").json()
    assert [m["id"] for m in overview["municipalities"]] == ["nord"]
    assert overview["counts"]["alerts"] == 1
    assert tech.request("GET", "/api/cabinets/gs-sued/k1").status_code == 403
    assert tech.request("GET", "/api/cabinets/gs-nord/k1").status_code == 200
    assert "gs-sued" not in tech.request("GET", "/api/export/inventory.csv").text
    assert "gs-sued" not in tech.request("GET", "/api/export/alerts.csv").text
    assert tech.request("GET", "/api/search", params={"q": "GS-SUED"}).json()["hits"] == []


def test_technician_api_cannot_act_on_another_municipality(world: Any) -> None:
    app, tokens, fps = world
    tech = Client(app, tokens["tech-nord"])
    until = (NOW + timedelta(hours=1)).isoformat()
    assert tech.request("POST", f"/api/alerts/{fps['gs-sued']}/ack",
                        json={"by": "x"}).status_code == 403
    assert tech.request("POST", "/api/cabinets/gs-sued/k1/technician",
                        json={"by": "x", "until": until}).status_code == 403
    assert tech.request("POST", "/api/silences", json={
        "matchers": {"site": "gs-sued"}, "ends_at": until, "created_by": "x"}).status_code == 403
    assert tech.request("POST", "/api/silences", json={  # district-wide: admins only
        "matchers": {"alertname": "door_open"}, "ends_at": until, "created_by": "x"}).status_code == 403
    # … but can on their own
    assert tech.request("POST", f"/api/alerts/{fps['gs-nord']}/ack",
                        json={"by": "x"}).status_code == 200
    assert tech.request("POST", "/api/cabinets/gs-nord/k1/technician",
                        json={"by": "x", "until": until}).status_code == 201
    admin = Client(app, tokens["admin"])
    made = admin.request("POST", "/api/silences", json={
        "matchers": {"site": "gs-sued"}, "ends_at": until, "created_by": "a"}).json()
    assert tech.request("POST", f"/api/silences/{made['id']}/expire").status_code == 403
    assert all(s["matchers"].get("site") == "gs-nord"
               for s in tech.request("GET", "/api/silences").json()["silences"])


def test_school_viewer_reads_own_school_only_and_changes_nothing(world: Any) -> None:
    app, tokens, fps = world
    viewer = Client(app, tokens["viewer-nord"])
    assert {c["site"] for c in viewer.request("GET", "/api/fleet").json()["cabinets"]} == {"gs-nord"}
    assert viewer.request("POST", f"/api/alerts/{fps['gs-nord']}/ack",
                          json={"by": "x"}).status_code == 403
    assert viewer.request("POST", "/api/cabinets/gs-nord/k1/technician", json={
        "by": "x", "until": (NOW + timedelta(hours=1)).isoformat()}).status_code == 403


def test_technician_pages_hide_and_refuse_another_municipality(world: Any) -> None:
    app, _, fps = world
    tech = Client(app)
    assert tech.login("tech-nord").status_code == 303
    overview = tech.request("GET", "/").text
    assert "GS Nord" in overview and "GS Süd" not in overview
    alerts = tech.request("GET", "/alerts").text
    assert fps["gs-nord"] in alerts and fps["gs-sued"] not in alerts
    assert tech.request("GET", "/cabinets/gs-sued/k1").status_code == 403
    assert tech.request("GET", "/cabinets/gs-sued/k1/slots/1").status_code == 403
    csrf = tech.csrf()
    assert tech.request("POST", f"/alerts/{fps['gs-sued']}/ack",
                        data={"csrf": csrf, "comment": "x"}).status_code == 403
    assert tech.request("POST", "/cabinets/gs-sued/k1/technician",
                        data={"csrf": csrf, "hours": "1"}).status_code == 403
    assert tech.request("POST", f"/alerts/{fps['gs-nord']}/ack",
                        data={"csrf": csrf, "comment": "on it"}).status_code == 303


def test_session_posts_need_the_csrf_token(world: Any) -> None:
    app, _, fps = world
    admin = Client(app)
    admin.login("admin")
    assert admin.request("POST", f"/alerts/{fps['gs-nord']}/ack",
                         data={"comment": "x"}).status_code == 403
    assert admin.request("POST", f"/api/alerts/{fps['gs-nord']}/ack",
                         json={"by": "x"}).status_code == 403
    assert admin.request("POST", f"/api/alerts/{fps['gs-nord']}/ack", json={"by": "x"},
                         headers={"X-CSRF-Token": admin.csrf()}).status_code == 200


def test_login_is_rate_limited(world: Any) -> None:
    app, _, _ = world
    client = Client(app)
    codes = [client.login("admin", "wrong password").status_code for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429
    assert client.login("admin").status_code == 429  # even the right password, for a while


def test_every_page_renders_for_an_admin(world: Any) -> None:
    app, _, _ = world
    admin = Client(app)
    admin.login("admin")
    for path in ("/", "/?lang=en", "/cabinets/gs-nord/k1", "/cabinets/gs-nord/k1/slots/1",
                 "/search?q=gs", "/search?q=GS-NORD-0001", "/alerts?all=true",
                 "/cabinets/gs-nord/k1?partial=1", "/api/cabinets/gs-nord/k1/slots/1/history",
                 "/api/export/sessions.csv", "/metrics"):
        assert admin.request("GET", path).status_code == 200, path

