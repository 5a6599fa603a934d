"""HTTP API shapes, with in-process state, called through httpx's ASGI transport.

(starlette's ApiClient is not used: this starlette deprecates it with httpx, and warnings are errors.)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    DoorState,
    MainsState,
    Sensing,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts import Alert
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.integrity import CabinetIntegrity
from server.org import Organisation
from server.pipeline import IngestStats
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from tests.support.inventory import tagged_fleet

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOT = "d" * 32


def _env() -> dict[str, object]:
    return {"v": 1, "site": "gs-mitte", "cabinet": "k1", "boot_id": BOOT, "seq": 0,
            "ts": NOW - timedelta(seconds=5), "clock_synced": True}


class ApiClient:
    """Synchronous GETs against an ASGI app, one event loop per call."""

    def __init__(self, app: FastAPI, headers: dict[str, str] | None = None) -> None:
        self._app = app
        self._headers = headers or {}

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, body: object) -> httpx.Response:
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: object = None) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api",
                                         headers=self._headers) as client:
                return await client.request(method, path, json=body)

        return asyncio.run(call())


@pytest.fixture
def store() -> StoredState:
    return StoredState.in_memory()


@pytest.fixture
def client(store: StoredState) -> ApiClient:
    fleet = tagged_fleet({("gs-mitte", "k1"): {1: "A-1"}})
    fleet.apply(StatusMessage(**_env(), status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**_env(), agent_version="0.1.0", config_hash="0123abcd",  # type: ignore[arg-type]
                             cabinet_model="m", slot_count=2,
                             slots=[SlotInfo(slot=1), SlotInfo(slot=2)],
                             poll_interval_s=1.0, telemetry_interval_s=10.0), NOW)
    fleet.apply(TelemetryMessage(**_env(), power_w=[10.0, None],  # type: ignore[arg-type]
                                 states=[SlotState.CHARGING, SlotState.EMPTY], temperature_c=20.0,
                                 door=DoorState.CLOSED, mains=MainsState.ON, devices=[]), NOW)
    labels = {"alertname": "cabinet_offline", "site": "gs-mitte", "cabinet": "k9"}
    store.put_active(Alert(labels, {"reason": "lwt"}, NOW - timedelta(seconds=500),
                           NOW - timedelta(seconds=380)))
    store.put_active(Alert({**labels, "cabinet": "k8"}, {"reason": "stopped"},
                           NOW - timedelta(seconds=10), NOW + timedelta(seconds=110)))
    store.put_active(Alert({**labels, "cabinet": "k7"}, {"reason": "lwt"},
                           NOW - timedelta(seconds=900), NOW - timedelta(seconds=780)))
    store.resolve(next(a.fingerprint for a in store.active() if a.labels["cabinet"] == "k7"),
                  NOW - timedelta(seconds=60))
    sources = ApiSources(
        fleet=fleet, alerts=store, clock=lambda: NOW,
        ingest_stats=lambda **_: IngestStats(5, 3, {"bad_json": 2}),
        mqtt_stats=lambda: MqttStats(True, 1, 0, None),
        tsdb_stats=lambda: SinkStats(SinkHealth.FAILING, written=10, dropped=1, errors=2,
                                     buffered=7, last_error="down"),
        state=store, auth=Auth(UserStore(open_store(None)), lambda: NOW),
    )
    sources.auth.store.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
    token = sources.auth.store.create_token("admin", "test", NOW)
    return ApiClient(create_app(sources), {"Authorization": f"Bearer {token}"})


def test_fleet_lists_cabinets_with_slots(client: ApiClient) -> None:
    body = client.get("/api/fleet").json()
    assert body["generated_at"] == NOW.isoformat()
    (cabinet,) = body["cabinets"]
    assert cabinet["site"] == "gs-mitte" and cabinet["cabinet"] == "k1"
    assert cabinet["status"] == "online"
    assert cabinet["last_seen_at"] == NOW.isoformat()
    assert cabinet["last_message_ts"] == (NOW - timedelta(seconds=5)).isoformat()
    assert cabinet["telemetry_interval_s"] == 10.0
    assert cabinet["door"] == "closed" and cabinet["mains"] == "on"
    assert cabinet["slots"] == [
        {"slot": 1, "asset_tag": "A-1", "state": "charging", "power_w": 10.0,
         "since": (NOW - timedelta(seconds=5)).isoformat(), "certainty": None,
         "last_draw_at": None, "unseen_since": None},
        {"slot": 2, "asset_tag": None, "state": "empty", "power_w": None,
         "since": (NOW - timedelta(seconds=5)).isoformat(), "certainty": None,
         "last_draw_at": None, "unseen_since": None},
    ]
    assert cabinet["sensing"] is None  # an agent before protocol revision 2 says nothing
    assert set(cabinet) >= {"boot_id", "agent_version", "model", "config_hash", "slot_count",
                            "temperature_c", "devices", "boot_changes", "status_since"}


def _client_for(fleet: Fleet) -> ApiClient:
    store = StoredState.in_memory()
    sources = ApiSources(fleet=fleet, alerts=store, clock=lambda: NOW,
                         ingest_stats=lambda **_: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK), state=store,
                         auth=Auth(UserStore(open_store(None)), lambda: NOW))
    sources.auth.store.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
    token = sources.auth.store.create_token("admin", "test", NOW)
    return ApiClient(create_app(sources), {"Authorization": f"Bearer {token}"})


def test_fleet_carries_certainty_evidence_and_sensing() -> None:
    drew, unseen = NOW - timedelta(hours=20), NOW - timedelta(hours=2)
    fleet = tagged_fleet({("gs-mitte", "k1"): {1: "A-1"}})
    fleet.apply(StatusMessage(**_env(), status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**{**_env(), "seq": 1}, agent_version="0.2.0",  # type: ignore[arg-type]
                             config_hash="0123abcd", cabinet_model="ladewache-16", slot_count=3,
                             slots=[SlotInfo(slot=1), SlotInfo(slot=2),
                                    SlotInfo(slot=3)],
                             poll_interval_s=1.0, telemetry_interval_s=10.0,
                             sensing=Sensing(slot_power=True, presence=False, door=True,
                                             evidence_window_s=432000.0)), NOW)
    since = NOW - timedelta(hours=21)
    fleet.apply(StateMessage(**{**_env(), "seq": 2}, slots=[  # type: ignore[arg-type]
        SlotSnapshot(slot=1, state=SlotState.CHARGED, power_w=0.0, since=since,
                     certainty=Certainty.PROBABLE, last_draw_at=drew, unseen_since=unseen),
        SlotSnapshot(slot=2, state=SlotState.CHARGING, power_w=15.0, since=since,
                     certainty=Certainty.CERTAIN, last_draw_at=NOW - timedelta(seconds=5)),
        SlotSnapshot(slot=3, state=SlotState.UNKNOWN, power_w=None, since=since,
                     certainty=Certainty.CANNOT_TELL),
    ], door=DoorState.CLOSED, temperature_c=20.0, mains=MainsState.ON, devices=[]), NOW)
    client = _client_for(fleet)
    (cabinet,) = client.get("/api/fleet").json()["cabinets"]
    assert cabinet["sensing"] == {"slot_power": True, "presence": False, "door": True,
                                  "evidence_window_s": 432000.0}
    assert [(s["slot"], s["state"], s["certainty"], s["last_draw_at"], s["unseen_since"])
            for s in cabinet["slots"]] == [
        (1, "charged", "probable", drew.isoformat(), unseen.isoformat()),
        (2, "charging", "certain", (NOW - timedelta(seconds=5)).isoformat(), None),
        (3, "unknown", "cannot_tell", None, None),
    ]
    assert cabinet["slots"][0]["asset_tag"] == "A-1" and cabinet["slots"][0]["power_w"] == 0.0
    # a telemetry that keeps state and certainty keeps the evidence; one cabinet: the same shape
    fleet.apply(TelemetryMessage(**{**_env(), "seq": 3}, power_w=[0.0, 14.0, None],  # type: ignore[arg-type]
                                 states=[SlotState.CHARGED, SlotState.CHARGING, SlotState.UNKNOWN],
                                 certainty=[Certainty.PROBABLE, Certainty.CERTAIN,
                                            Certainty.CANNOT_TELL],
                                 temperature_c=20.0, door=DoorState.CLOSED, mains=MainsState.ON,
                                 devices=[]), NOW)
    one = client.get("/api/fleet").json()["cabinets"][0]
    assert one["slots"][0]["unseen_since"] == unseen.isoformat()
    assert one["slots"][0]["certainty"] == "probable"


@pytest.mark.parametrize(
    ("query", "cabinets"),
    [
        ("", ["k7", "k9", "k8"]),
        ("?state=all", ["k7", "k9", "k8"]),
        ("?state=active", ["k9", "k8"]),
        ("?state=firing", ["k9"]),
        ("?state=pending", ["k8"]),
        ("?state=resolved", ["k7"]),
    ],
)
def test_alerts_filter_by_derived_state(client: ApiClient, query: str,
                                        cabinets: list[str]) -> None:
    body = client.get(f"/api/alerts{query}").json()
    assert [a["labels"]["cabinet"] for a in body["alerts"]] == cabinets


def test_alerts_are_german_by_default_and_english_on_request(client: ApiClient) -> None:
    de = client.get("/api/alerts?state=firing").json()
    assert de["lang"] == "de"
    (alert,) = de["alerts"]
    assert alert["summary"] == "Schrank k9 (gs-mitte) ist offline: Verbindung verloren (Last Will)"
    assert alert["state"] == "firing"
    assert alert["alertname"] == "cabinet_offline"
    assert alert["annotations"] == {"reason": "lwt"}
    assert alert["starts_at"] == (NOW - timedelta(seconds=380)).isoformat()
    assert alert["ends_at"] is None
    assert len(alert["fingerprint"]) == 16
    en = client.get("/api/alerts?state=firing&lang=en").json()
    assert en["alerts"][0]["summary"] == ("Cabinet k9 (gs-mitte) is offline: "
                                          "connection lost (Last Will)")


@pytest.mark.parametrize("query", ["?lang=fr", "?state=bogus"])
def test_bad_alert_queries_are_422(client: ApiClient, query: str) -> None:
    assert client.get(f"/api/alerts{query}").status_code == 422


def test_stats(client: ApiClient) -> None:
    assert client.get("/api/stats").json() == {
        "received": 5, "accepted": 3, "rejected": {"bad_json": 2}, "cabinets": 1,
        "duplicates": 0, "events_stored": 0, "integrity": {},
        "integrity_summary": {
            "cabinets": 0, "with_problems": 0, "listing": "problems", "limit": 100, "listed": 0,
            "truncated": False,
            "totals": {"seq_gaps": 0, "duplicates": 0, "replayed": 0, "clock_skewed": 0,
                       "clock_unsynced": 0, "outbox_dropped": 0, "rejected": 0,
                       "out_of_window": 0, "events_lost": 0}},
        "mqtt": {"connected": True, "connects": 1, "connection_losses": 0, "last_error": None},
        "tsdb": {"health": "failing", "written": 10, "dropped": 1, "errors": 2, "buffered": 7,
                 "last_error": "down"},
    }


def _integrity_world(cabinets: int, role: User) -> ApiClient:
    """``cabinets`` cabinets in two schools; every tenth has gaps, every 25th replays only."""
    integrity = {}
    for n in range(cabinets):
        site = "gs-nord" if n % 2 else "gs-sued"
        integrity[f"{site}/k{n:05d}"] = CabinetIntegrity(
            gaps=2 if n % 10 == 0 else 0, replayed=3 if n % 25 == 0 else 0,
            outbox_dropped=1 if n == 7 else None)
    org = Organisation.model_validate({
        "district": "K", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
        "municipalities": [{"id": "nord", "name": "Nord"}, {"id": "sued", "name": "Süd"}],
        "schools": [{"site": "gs-nord", "name": "N", "municipality": "nord"},
                    {"site": "gs-sued", "name": "S", "municipality": "sued"}]})
    sources = ApiSources(
        fleet=Fleet(), alerts=StoredState.in_memory(), clock=lambda: NOW, org=org,
        ingest_stats=lambda **_: IngestStats(9, 9, {}, integrity=dict(sorted(integrity.items()))),
        mqtt_stats=lambda: MqttStats(True, 1, 0, None),
        tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(UserStore(open_store(None)), lambda: NOW))
    sources.auth.store.add_user(role, "a-long-password", NOW)
    token = sources.auth.store.create_token(role.name, "test", NOW)
    return ApiClient(create_app(sources), {"Authorization": f"Bearer {token}"})


def test_stats_list_only_cabinets_with_problems_up_to_a_limit() -> None:
    client = _integrity_world(1000, User("admin", Role.ADMIN))
    body = client.get("/api/stats").json()
    # 100 with gaps (every tenth), one more with outbox drops; replays alone are no problem
    assert body["integrity_summary"] == {
        "cabinets": 1000, "with_problems": 101, "listing": "problems", "limit": 100,
        "listed": 100, "truncated": True,
        "totals": {"seq_gaps": 200, "duplicates": 0, "replayed": 120, "clock_skewed": 0,
                   "clock_unsynced": 0, "outbox_dropped": 1, "rejected": 0,
                   "out_of_window": 0, "events_lost": 0}}
    listed = body["integrity"]
    assert len(listed) == 100 and list(listed) == sorted(listed)  # site/cabinet order
    assert listed["gs-sued/k00000"]["seq_gaps"] == 2
    assert listed["gs-nord/k00007"]["outbox_dropped"] == 1
    assert all(v["seq_gaps"] or v["outbox_dropped"] for v in listed.values())
    everything = client.get("/api/stats?integrity_limit=1000").json()
    assert len(everything["integrity"]) == 101 and not everything["integrity_summary"]["truncated"]
    full = client.get("/api/stats?integrity=all&integrity_limit=5000").json()
    assert len(full["integrity"]) == 1000 and full["integrity"]["gs-sued/k00050"]["replayed"] == 3
    assert full["integrity"]["gs-nord/k00001"] == {
        "seq_gaps": 0, "duplicates": 0, "replayed": 0, "clock_skewed": 0, "clock_skew_s": None,
        "clock_unsynced": 0, "outbox_dropped": None, "rejected": 0, "last_rejected": None,
        "out_of_window": 0, "events_lost": 0, "events_lost_at": None}
    none = client.get("/api/stats?integrity=none").json()
    assert none["integrity"] == {} and none["integrity_summary"]["with_problems"] == 101
    assert client.get("/api/stats?integrity_limit=100001").status_code == 422
    assert client.get("/api/stats?integrity=some").status_code == 422


def test_stats_integrity_is_limited_to_the_callers_scope() -> None:
    client = _integrity_world(1000, User("tech-nord", Role.TECHNICIAN, "nord"))
    body = client.get("/api/stats?integrity_limit=1000").json()
    assert {key.split("/")[0] for key in body["integrity"]} == {"gs-nord"}
    # odd numbers are gs-nord: 7 (outbox drops) has a problem, none has gaps (n % 10 == 0 is even)
    assert body["integrity_summary"]["cabinets"] == 500
    assert body["integrity_summary"]["with_problems"] == 1
    assert body["integrity_summary"]["totals"]["replayed"] == 60


def test_healthz(client: ApiClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"mqtt_connected": True, "tsdb": "failing"}


def _firing(client: ApiClient) -> dict:
    (alert,) = client.get("/api/alerts?state=firing").json()["alerts"]
    return alert  # type: ignore[no-any-return]


def test_alerts_carry_severity_group_and_flags(client: ApiClient) -> None:
    alert = _firing(client)
    assert alert["group"] == "gs-mitte/k9"
    assert alert["severity"] == "warning"  # no severity label: the default
    assert (alert["acknowledged"], alert["silenced"], alert["inhibited"]) == (False, False, False)
    assert alert["ack"] is None and alert["silenced_by"] == [] and alert["inhibited_by"] is None


def test_acknowledge_with_a_comment(client: ApiClient) -> None:
    fingerprint = _firing(client)["fingerprint"]
    response = client.post(f"/api/alerts/{fingerprint}/ack", {"comment": "Netzteil bestellt"})
    assert response.status_code == 200
    # the author is the API token's user (a "by" in the body is ignored: test_api_hardening.py)
    assert response.json()["ack"] == {"by": "admin", "comment": "Netzteil bestellt",
                                      "at": NOW.isoformat()}
    alert = _firing(client)
    assert alert["acknowledged"] is True and alert["ack"]["by"] == "admin"
    assert client.post("/api/alerts/0000000000000000/ack", {}).status_code == 404
    assert client.post(f"/api/alerts/{fingerprint}/ack", {"comment": 5}).status_code == 422


def test_create_list_and_expire_a_silence(client: ApiClient) -> None:
    ends = (NOW + timedelta(hours=2)).isoformat()
    response = client.post("/api/silences", {"matchers": {"site": "gs-mitte", "cabinet": "k9"},
                                             "ends_at": ends, "created_by": "Herr Klein",
                                             "comment": "Umbau Raum 9"})
    assert response.status_code == 201
    silence = response.json()
    assert silence["active"] is True and silence["kind"] == "silence"
    alert = _firing(client)
    assert alert["silenced"] is True and alert["silenced_by"] == [silence["id"]]
    listed = client.get("/api/silences").json()["silences"]
    assert [s["id"] for s in listed] == [silence["id"]]
    expired = client.post(f"/api/silences/{silence['id']}/expire", None)
    assert expired.status_code == 200 and expired.json()["expired"] is True
    assert _firing(client)["silenced"] is False
    assert client.post(f"/api/silences/{silence['id']}/expire", None).status_code == 404


def test_a_weekly_silence(client: ApiClient) -> None:
    body = {"matchers": {"site": "gs-mitte"}, "ends_at": (NOW + timedelta(days=90)).isoformat(),
            "created_by": "Hausmeister", "weekly": {"days": [0], "start": "08:30", "end": "10:00"}}
    silence = client.post("/api/silences", body).json()
    assert silence["weekly"] == {"days": [0], "start": "08:30", "end": "10:00",
                                 "timezone": "Europe/Berlin"}
    assert silence["active"] is True  # NOW is Monday 09:00 local
    body["weekly"] = {"days": [1], "start": "08:30", "end": "10:00"}
    assert client.post("/api/silences", body).json()["active"] is False


def test_technician_on_site(client: ApiClient) -> None:
    until = (NOW + timedelta(hours=3)).isoformat()
    response = client.post("/api/cabinets/gs-mitte/k9/technician",
                           {"by": "Techniker Maier", "until": until, "comment": "Tausch"})
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "technician"
    assert body["matchers"] == {"site": "gs-mitte", "cabinet": "k9"}
    assert body["ends_at"] == until
    assert _firing(client)["silenced"] is True


@pytest.mark.parametrize(("path", "body"), [
    ("/api/silences", {"matchers": {}, "ends_at": "2026-11-02T10:00:00Z", "created_by": "x"}),
    ("/api/silences", {"matchers": {"site": "a"}, "ends_at": "2026-11-02T07:00:00Z",
                       "created_by": "x"}),
    ("/api/silences", {"matchers": {"site": "a"}, "ends_at": "2026-11-02T10:00:00",
                       "created_by": "x"}),
    ("/api/silences", {"matchers": {"site": "a"}, "ends_at": "2026-11-02T10:00:00Z",
                       "created_by": "x", "weekly": {"days": [7], "start": "08:00", "end": "09:00"}}),
    ("/api/cabinets/a/b/technician", {"by": "x", "until": "2026-11-01T10:00:00Z"}),
    ("/api/cabinets/a/b/technician", {"by": "x", "until": "2026-12-01T10:00:00Z"}),
])
def test_bad_silences_are_422(client: ApiClient, path: str, body: dict) -> None:
    assert client.post(path, body).status_code == 422
