"""A cabinet's health on its page: refused messages (with a readable reason), impossible clocks,
lost events; in German by default, in English on request; nothing on a healthy neighbour's page."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from cabinet_agent.common.protocol import Channel, topic_for
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Auth, Role, User, UserStore
from server.fleet import Fleet
from server.ingest import MqttStats
from server.org import Organisation
from server.pipeline import Pipeline
from server.store import open_store
from server.tsdb.base import SinkHealth, SinkStats
from server.tsdb.null import NullSink
from server.web import Dashboard, install_dashboard

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
ORG = Organisation.model_validate({
    "district": "Kreis", "district_team": "it", "teams": [{"id": "it", "name": "IT"}],
    "municipalities": [{"id": "nord", "name": "Nord"}],
    "schools": [{"site": "gs-dq", "name": "Grundschule DQ", "municipality": "nord"}],
    "cabinets": [{"school": "gs-dq", "id": "a", "name": "Raum 1"},
                 {"school": "gs-dq", "id": "b", "name": "Raum 2"}],
})


def _message(cabinet: str, kind: str, seq: int, **fields: Any) -> tuple[str, bytes]:
    body = {"v": 1, "site": "gs-dq", "cabinet": cabinet, "boot_id": "c" * 32, "seq": seq,
            "ts": "2026-12-02T08:00:00Z", "clock_synced": True, "type": kind, **fields}
    return topic_for("gs-dq", cabinet, Channel(kind)), json.dumps(body).encode()


def _birth(cabinet: str) -> tuple[str, bytes]:
    return _message(cabinet, "birth", 1, agent_version="1", config_hash="0123abcd",
                    cabinet_model="m", slot_count=2, slots=[{"slot": 1}, {"slot": 2}],
                    poll_interval_s=5.0, telemetry_interval_s=60.0)


def _telemetry(cabinet: str, seq: int, **overrides: Any) -> tuple[str, bytes]:
    fields = {"power_w": [1.0, 0.0], "states": ["charging", "empty"], "temperature_c": 20.0,
              "door": "closed", "mains": "on", "devices": [], **overrides}
    return _message(cabinet, "telemetry", seq, **fields)


def _page(lang: str, cabinet: str) -> str:
    fleet = Fleet()
    pipeline = Pipeline(fleet, NullSink(), lambda: NOW)
    for topic, payload in (_birth("a"), _birth("b"), _telemetry("b", 2)):
        assert pipeline.handle(topic, payload)
    refused = [_telemetry("a", 3, power_w=[1.0] * 5, states=["empty"] * 5),
               ("ladewache/v1/gs-dq/a/telemetry", b"{not json")]
    for topic, payload in refused:
        assert not pipeline.handle(topic, payload)
    assert pipeline.handle(*_telemetry("a", 4, ts="9999-01-01T00:00:00Z"))
    store = UserStore(open_store(None))
    store.add_user(User("admin", Role.ADMIN), "a-long-password", NOW)
    sources = ApiSources(fleet=fleet, alerts=StoredState.in_memory(), clock=lambda: NOW, org=ORG,
                         ingest_stats=pipeline.stats, mqtt_stats=lambda: MqttStats(True, 1, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.OK), auth=Auth(store, lambda: NOW))
    dash = Dashboard(sources)
    app = create_app(sources)
    install_dashboard(app, dash)
    token = store.create_token("admin", "t", NOW)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            return await client.get(f"/cabinets/gs-dq/{cabinet}?lang={lang}")
    response = asyncio.run(call())
    assert response.status_code == 200
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.text))


def test_the_cabinet_page_names_what_was_refused_in_german() -> None:
    text = _page("de", "a")
    assert "Datenqualität" in text
    assert "2 Nachricht(en) abgewiesen, zuletzt: kein gültiges JSON" in text
    assert "1 Nachricht(en) mit unmöglicher Uhrzeit, zur Empfangszeit gespeichert" in text


def test_and_in_english() -> None:
    assert "2 message(s) refused, the last: not valid JSON" in _page("en", "a")


def test_a_healthy_neighbour_shows_no_data_quality_line() -> None:
    assert "Datenqualität" not in _page("de", "b")
