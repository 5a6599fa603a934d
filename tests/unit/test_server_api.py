"""HTTP API shapes, with in-process state, called through httpx's ASGI transport.

(starlette's ApiClient is not used: this starlette deprecates it with httpx, and warnings are errors.)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from cabinet_agent.protocol import (
    AgentStatus,
    BirthMessage,
    DoorState,
    MainsState,
    SlotInfo,
    SlotState,
    StatusMessage,
    TelemetryMessage,
)
from server.alerts import Alert, MemoryAlertStore
from server.api import ApiSources, create_app
from server.fleet import Fleet
from server.ingest import MqttStats
from server.pipeline import IngestStats
from server.tsdb.base import SinkHealth, SinkStats

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOT = "d" * 32


def _env() -> dict[str, object]:
    return {"v": 1, "site": "gs-mitte", "cabinet": "k1", "boot_id": BOOT, "seq": 0,
            "ts": NOW - timedelta(seconds=5), "clock_synced": True}


class ApiClient:
    """Synchronous GETs against an ASGI app, one event loop per call."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def get(self, path: str) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.get(path)

        return asyncio.run(call())


@pytest.fixture
def store() -> MemoryAlertStore:
    return MemoryAlertStore()


@pytest.fixture
def client(store: MemoryAlertStore) -> ApiClient:
    fleet = Fleet()
    fleet.apply(StatusMessage(**_env(), status=AgentStatus.ONLINE), NOW)  # type: ignore[arg-type]
    fleet.apply(BirthMessage(**_env(), agent_version="0.1.0", config_hash="0123abcd",  # type: ignore[arg-type]
                             cabinet_model="m", slot_count=2,
                             slots=[SlotInfo(slot=1, asset_tag="A-1"), SlotInfo(slot=2)],
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
        ingest_stats=lambda: IngestStats(5, 3, {"bad_json": 2}),
        mqtt_stats=lambda: MqttStats(True, 1, 0, None),
        tsdb_stats=lambda: SinkStats(SinkHealth.FAILING, written=10, dropped=1, errors=2,
                                     buffered=7, last_error="down"),
    )
    return ApiClient(create_app(sources))


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
         "since": (NOW - timedelta(seconds=5)).isoformat()},
        {"slot": 2, "asset_tag": None, "state": "empty", "power_w": None,
         "since": (NOW - timedelta(seconds=5)).isoformat()},
    ]
    assert set(cabinet) >= {"boot_id", "agent_version", "model", "config_hash", "slot_count",
                            "temperature_c", "devices", "boot_changes", "status_since"}


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
        "mqtt": {"connected": True, "connects": 1, "connection_losses": 0, "last_error": None},
        "tsdb": {"health": "failing", "written": 10, "dropped": 1, "errors": 2, "buffered": 7,
                 "last_error": "down"},
    }


def test_healthz(client: ApiClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"mqtt_connected": True, "tsdb": "failing"}
