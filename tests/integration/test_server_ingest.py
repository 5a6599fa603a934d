"""The collector as a real process against a real Mosquitto and VictoriaMetrics."""

from __future__ import annotations

import itertools
import json
import signal
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
    DoorState,
    MainsState,
    PointReading,
    SlotInfo,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
    encode,
    topic_for,
)
from server.errors import EXIT_CONFIG
from tests.support.api_auth import admin_token, api_get, place_ipad
from tests.support.procs import ManagedProcess, console_script, wait_until
from tests.support.services import Broker, VictoriaMetrics

pytestmark = pytest.mark.integration

BOOT = "e" * 32
ASSET_TAG = "iPad 7, Raum=12"  # needs every kind of line-protocol escaping


def _site() -> str:
    return f"it-{uuid.uuid4().hex[:10]}"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


class Server:
    def __init__(self, process: ManagedProcess, url: str, token: str) -> None:
        self.process = process
        self.url = url
        self.token = token

    def get(self, path: str) -> Any:
        return api_get(self.url + path, self.token)

    def cabinet(self, site: str, cabinet: str) -> dict[str, Any] | None:
        return next((c for c in self.get("/api/fleet")["cabinets"]
                     if (c["site"], c["cabinet"]) == (site, cabinet)), None)

    def place(self, asset_tag: str, site: str, cabinet: str, slot: int) -> None:
        place_ipad(self.url, self.token, asset_tag, site, cabinet, slot)

    def wait_connected(self) -> None:
        wait_until(lambda: self.get("/healthz")["mqtt_connected"], 20, "collector subscribed")


ServerFactory = Callable[..., Server]


@pytest.fixture
def start_server(tmp_path: Path, broker: Broker,
                 victoria: VictoriaMetrics) -> Iterator[ServerFactory]:
    started: list[ManagedProcess] = []

    def start(tsdb: bool = True, flush_interval_s: float = 0.2, pending_s: float = 120.0,
              client_id: str | None = None, state: str | None = None,
              extra: str = "") -> Server:
        config = tmp_path / f"server-{len(started)}.toml"
        state = state or f"state-{len(started)}"
        config.write_text(
            f"[mqtt]\nhost = '{broker.host}'\nport = {broker.port}\n"
            f"client_id = '{client_id or 'collector-' + uuid.uuid4().hex[:8]}'\n"
            "reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n"
            + (f"[tsdb]\nurl = '{victoria.url}'\nflush_interval_s = {flush_interval_s}\n"
               if tsdb else "")
            + "[http]\nport = 0\n"
            + f"[state]\ndir = '{state}'\n"
            f"[alerts]\noffline_pending_s = {pending_s}\ntick_s = 0.1\nsettle_s = 0.5\n"
            + extra,
            encoding="utf-8",
        )
        token = admin_token(tmp_path / state)
        process = ManagedProcess("cabinet-server",
                                 [console_script("cabinet-server"), "run", "--config", str(config)])
        started.append(process)
        line = process.wait_for_line(lambda ln: ln.startswith("READY http="), timeout=30)
        return Server(process, line.split("=", 1)[1], token)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Callable[..., None]]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()

    def publish(topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> None:
        wait_until(client.is_connected, 20, "the test publisher connected")
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)
        assert info.is_published()

    yield publish
    client.disconnect()
    client.loop_stop()


# Like an agent: every message its own seq, in publication order. The collector drops a repeated
# (boot_id, seq) as a duplicate and an older seq does not overwrite newer state (docs/reliability.md).
_SEQ = itertools.count()


def _env(site: str, cabinet: str, seq: int | None = None) -> dict[str, object]:
    return {"v": 1, "site": site, "cabinet": cabinet, "boot_id": BOOT, "seq": next(_SEQ),
            "ts": datetime.now(UTC), "clock_synced": True}


def _status(site: str, cabinet: str, status: AgentStatus) -> StatusMessage:
    return StatusMessage(**_env(site, cabinet), status=status)  # type: ignore[arg-type]


def _birth(site: str, cabinet: str) -> BirthMessage:
    return BirthMessage(**_env(site, cabinet, 1), agent_version="0.1.0",  # type: ignore[arg-type]
                        config_hash="0123abcd", cabinet_model="test-3", slot_count=3,
                        slots=[SlotInfo(slot=1), SlotInfo(slot=2),
                               SlotInfo(slot=3)],
                        poll_interval_s=1.0, telemetry_interval_s=10.0)


def _telemetry(site: str, cabinet: str, power: float = 11.5, seq: int | None = None) -> TelemetryMessage:
    return TelemetryMessage(**_env(site, cabinet, seq),  # type: ignore[arg-type]
                            power_w=[power, 0.5, None],
                            states=[SlotState.CHARGING, SlotState.CHARGED, SlotState.UNKNOWN],
                            temperature_c=23.0, door=DoorState.CLOSED, mains=MainsState.ON,
                            devices=[], poll_ms=8.0)


def _announce(publish: Callable[..., None], site: str, cabinet: str) -> None:
    publish(topic_for(site, cabinet, Channel.STATUS),
            encode(_status(site, cabinet, AgentStatus.ONLINE)), retain=True)
    publish(topic_for(site, cabinet, Channel.BIRTH), encode(_birth(site, cabinet)), retain=True)


def _slot_powers(server: Server, site: str, cabinet: str) -> list[float | None] | None:
    found = server.cabinet(site, cabinet)
    return None if found is None else [s["power_w"] for s in found["slots"]]


def test_messages_reach_fleet_state_and_victoria_metrics(
        start_server: ServerFactory, publisher: Callable[..., None],
        victoria: VictoriaMetrics) -> None:
    site, cabinet = _site(), "k1"
    _announce(publisher, site, cabinet)  # retained: delivered whenever the collector subscribes
    server = start_server()
    server.place(ASSET_TAG, site, cabinet, 1)  # the inventory knows the iPad; the agent does not
    wait_until(lambda: server.cabinet(site, cabinet), 20, "the retained birth in /api/fleet")
    publisher(topic_for(site, cabinet, Channel.TELEMETRY), encode(_telemetry(site, cabinet)))

    wait_until(lambda: _slot_powers(server, site, cabinet) == [11.5, 0.5, None], 20,
               "telemetry in /api/fleet")
    found = server.cabinet(site, cabinet)
    assert found is not None
    assert found["status"] == "online"
    assert found["model"] == "test-3"
    assert found["telemetry_interval_s"] == 10.0
    assert [(s["slot"], s["asset_tag"], s["state"]) for s in found["slots"]] == [
        (1, ASSET_TAG, "charging"), (2, None, "charged"), (3, None, "unknown")]
    assert found["last_seen_at"] and found["last_message_ts"]

    selector = f'site="{site}",cabinet="{cabinet}"'
    series = wait_until(lambda: victoria.query(f"slot_power_w{{{selector}}}"), 20,
                        "slot_power_w in VictoriaMetrics")
    by_slot = {s["metric"]["slot"]: (s["metric"].get("asset_tag"), float(s["value"][1]))
               for s in series}
    assert by_slot == {"1": (ASSET_TAG, 11.5), "2": (None, 0.5)}  # unknown power is not 0
    states = victoria.query(f"slot_state{{{selector}}}")
    assert {s["metric"]["slot"]: s["value"][1] for s in states} == {"1": "1", "2": "2", "3": "5"}
    cabinet_series = victoria.query(f"cabinet_temperature_c{{{selector}}}")
    assert [float(s["value"][1]) for s in cabinet_series] == [23.0]

    stats = server.get("/api/stats")
    assert stats["accepted"] == 3 and stats["received"] == 3
    assert stats["mqtt"]["connected"] is True
    wait_until(lambda: server.get("/api/stats")["tsdb"]["written"] >= 4, 10, "written count")
    assert server.get("/healthz") == {"mqtt_connected": True, "tsdb": "ok", "leading": True}


def test_extra_points_reach_victoria_metrics_raw(start_server: ServerFactory,
                                                 publisher: Callable[..., None],
                                                 victoria: VictoriaMetrics) -> None:
    site, cabinet = _site(), "k8"
    server = start_server()
    server.wait_connected()
    _announce(publisher, site, cabinet)
    telemetry = _telemetry(site, cabinet).model_copy(update={"points": [
        PointReading(device="meter", point="import_energy", value=1234.5, unit="kWh"),
        PointReading(device="climate", point="humidity", value=45.5, unit="% rH")]})
    publisher(topic_for(site, cabinet, Channel.TELEMETRY), encode(telemetry))
    query = f'point_value{{site="{site}"}}'
    wait_until(lambda: len(victoria.query(query)) == 2, 20, "the points in VictoriaMetrics")
    series = victoria.query(query)
    assert {(s["metric"]["device"], s["metric"]["point"], s["metric"]["unit"], float(s["value"][1]))
            for s in series} == {("meter", "import_energy", "kWh", 1234.5),
                                 ("climate", "humidity", "% rH", 45.5)}


def test_state_changes_show_up_at_once(start_server: ServerFactory,
                                       publisher: Callable[..., None],
                                       victoria: VictoriaMetrics) -> None:
    site, cabinet = _site(), "k2"
    server = start_server()
    server.wait_connected()
    _announce(publisher, site, cabinet)
    state = StateMessage(**_env(site, cabinet, 3), slots=[  # type: ignore[arg-type]
        SlotSnapshot(slot=2, state=SlotState.FAULT, power_w=None, since=datetime.now(UTC))],
        door=DoorState.OPEN, temperature_c=None, mains=MainsState.ON, devices=[])
    publisher(topic_for(site, cabinet, Channel.STATE), encode(state), retain=True)
    wait_until(lambda: (c := server.cabinet(site, cabinet)) and c["door"] == "open"
               and c["slots"][1]["state"] == "fault", 20, "state in /api/fleet")
    wait_until(lambda: victoria.query(f'slot_state{{site="{site}",slot="2"}} == 4'), 20,
               "the fault state in VictoriaMetrics")


def test_bad_messages_are_counted_and_never_stop_the_collector(
        start_server: ServerFactory, publisher: Callable[..., None],
        victoria: VictoriaMetrics) -> None:
    site = _site()
    server = start_server()
    server.wait_connected()
    _announce(publisher, site, "a")
    wait_until(lambda: server.cabinet(site, "a"), 20, "cabinet a")

    good = json.loads(encode(_telemetry(site, "a")))
    schema_breaking = {**good, "power_w": "viel", "slot_count": 3}
    spoofed = encode(_telemetry(site, "b"))  # payload names cabinet b ...
    bad = [
        (topic_for(site, "a", Channel.TELEMETRY), b'{"v": 1, "site": ', "bad_json"),
        (topic_for(site, "a", Channel.TELEMETRY), json.dumps(schema_breaking).encode(), "schema"),
        (f"ladewache/v1/{site}/a/firmware", encode(_telemetry(site, "a")), "unknown_topic"),
        (topic_for(site, "a", Channel.TELEMETRY), b"x" * 1_000_000, "too_large"),
        (topic_for(site, "a", Channel.TELEMETRY), spoofed, "topic_mismatch"),  # ... topic a
    ]
    for topic, payload, _ in bad:
        publisher(topic, payload)

    expected = {reason: 1 for _, _, reason in bad}
    wait_until(lambda: {k: v for k, v in server.get("/api/stats")["rejected"].items() if v}
               == expected, 20, f"rejections {expected}")
    assert server.cabinet(site, "b") is None  # the spoofed cabinet never appeared
    assert _slot_powers(server, site, "a") == [None, None, None]  # nothing bad was applied

    publisher(topic_for(site, "a", Channel.TELEMETRY), encode(_telemetry(site, "a", power=42.0)))
    wait_until(lambda: _slot_powers(server, site, "a") == [42.0, 0.5, None], 20,
               "a good message after the bad ones")
    wait_until(lambda: victoria.query(f'slot_power_w{{site="{site}",cabinet="a",slot="1"}} == 42'),
               20, "the good message in VictoriaMetrics")
    stats = server.get("/api/stats")
    assert stats["received"] == 2 + len(bad) + 1
    assert stats["accepted"] == 3
    assert server.process.proc.poll() is None


def test_offline_alert_from_last_will_then_resolved(start_server: ServerFactory,
                                                   publisher: Callable[..., None]) -> None:
    site, cabinet = _site(), "k3"
    server = start_server(tsdb=False, pending_s=0.5)
    server.wait_connected()
    _announce(publisher, site, cabinet)
    publisher(topic_for(site, cabinet, Channel.STATUS),
              encode(_status(site, cabinet, AgentStatus.OFFLINE)), retain=True)

    def alert(state: str, lang: str = "de") -> dict[str, Any] | None:
        alerts = server.get(f"/api/alerts?state={state}&lang={lang}")["alerts"]
        return next((a for a in alerts if a["labels"].get("site") == site), None)

    firing = wait_until(lambda: alert("firing"), 20, "a firing cabinet_offline alert")
    assert firing["summary"] == (f"Schrank {cabinet} ({site}) ist offline: "
                                 "Verbindung verloren (Last Will)")
    assert firing["annotations"]["reason"] == "lwt"
    english = alert("firing", "en")
    assert english is not None and english["summary"].startswith(f"Cabinet {cabinet} ({site})")

    _announce(publisher, site, cabinet)
    publisher(topic_for(site, cabinet, Channel.TELEMETRY), encode(_telemetry(site, cabinet)))
    resolved = wait_until(lambda: alert("resolved"), 20, "the alert resolved")
    assert resolved["fingerprint"] == firing["fingerprint"]
    assert server.get("/healthz") == {"mqtt_connected": True, "tsdb": "none", "leading": True}


def test_sigterm_flushes_the_tsdb_buffer_and_exits_0(start_server: ServerFactory,
                                                     publisher: Callable[..., None],
                                                     victoria: VictoriaMetrics) -> None:
    site, cabinet = _site(), "k4"
    server = start_server(flush_interval_s=60.0)  # only the shutdown flush can write it
    server.wait_connected()
    _announce(publisher, site, cabinet)
    publisher(topic_for(site, cabinet, Channel.TELEMETRY), encode(_telemetry(site, cabinet)))
    wait_until(lambda: server.get("/api/stats")["tsdb"]["buffered"] == 4, 20, "4 buffered lines")
    assert server.get("/api/stats")["tsdb"]["written"] == 0

    server.process.signal(signal.SIGTERM)
    assert server.process.proc.wait(15) == 0
    assert "TSDB writer closed: 4 lines written, 0 dropped" in server.process.output()
    wait_until(lambda: len(victoria.query(f'slot_power_w{{site="{site}"}}')) == 2, 20,
               "the flushed lines in VictoriaMetrics")


def test_a_restarted_collector_gets_what_was_sent_meanwhile(start_server: ServerFactory,
                                                            publisher: Callable[..., None]) -> None:
    site, cabinet = _site(), "k5"
    client_id = f"collector-{uuid.uuid4().hex[:8]}"
    first = start_server(tsdb=False, client_id=client_id, state="state-k7")
    first.wait_connected()
    first.place(ASSET_TAG, site, cabinet, 1)
    _announce(publisher, site, cabinet)
    wait_until(lambda: first.cabinet(site, cabinet), 20, "cabinet known")
    assert first.process.stop() == 0

    # Not retained, QoS 1: only the broker's persistent session can keep this for the collector.
    state = StateMessage(**_env(site, cabinet, 9), slots=[  # type: ignore[arg-type]
        SlotSnapshot(slot=1, state=SlotState.CHARGED, power_w=0.2, since=datetime.now(UTC))],
        door=DoorState.CLOSED, temperature_c=None, mains=MainsState.ON, devices=[])
    publisher(topic_for(site, cabinet, Channel.STATE), encode(state), retain=False)

    second = start_server(tsdb=False, client_id=client_id, state="state-k7")  # same inventory
    wait_until(lambda: (c := second.cabinet(site, cabinet)) and c["slots"]
               and c["slots"][0]["state"] == "charged", 20, "the queued state message")


def test_a_restarted_collector_restores_a_cabinet_that_stopped_before(
        start_server: ServerFactory, publisher: Callable[..., None]) -> None:
    # The broker hands the retained status (the boot's last seq) over before the birth and state
    # (earlier seqs of the same boot): they must not be dropped as older than the status.
    site, cabinet = _site(), "k7"
    client_id = f"collector-{uuid.uuid4().hex[:8]}"
    first = start_server(tsdb=False, client_id=client_id, state="state-k7")
    first.wait_connected()
    first.place(ASSET_TAG, site, cabinet, 1)
    _announce(publisher, site, cabinet)
    state = StateMessage(**_env(site, cabinet), slots=[  # type: ignore[arg-type]
        SlotSnapshot(slot=1, state=SlotState.CHARGING, power_w=9.5, since=datetime.now(UTC)),
        SlotSnapshot(slot=2, state=SlotState.EMPTY, power_w=0.0, since=datetime.now(UTC))],
        door=DoorState.CLOSED, temperature_c=21.0, mains=MainsState.ON, devices=[])
    publisher(topic_for(site, cabinet, Channel.STATE), encode(state), retain=True)
    stopped = StatusMessage(**_env(site, cabinet), status=AgentStatus.STOPPED,  # type: ignore[arg-type]
                            reason="stopped by SIGTERM")
    publisher(topic_for(site, cabinet, Channel.STATUS), encode(stopped), retain=True)
    wait_until(lambda: (c := first.cabinet(site, cabinet)) and c["status"] == "stopped", 20,
               "the first collector saw the agent stop")
    assert first.process.stop() == 0

    second = start_server(tsdb=False, client_id=client_id, state="state-k7")  # same inventory
    restored = wait_until(lambda: (c := second.cabinet(site, cabinet)) and c["model"] and c, 20,
                          "the stopped cabinet restored from retained messages")
    wait_until(lambda: second.cabinet(site, cabinet)["slots"][0]["state"] == "charging",  # type: ignore[index]
               20, "the retained state restored")
    restored = second.cabinet(site, cabinet)
    assert restored is not None
    assert (restored["status"], restored["model"]) == ("stopped", "test-3")
    assert [(s["slot"], s["asset_tag"], s["state"]) for s in restored["slots"]] == [
        (1, ASSET_TAG, "charging"), (2, None, "empty"), (3, None, "unknown")]
    assert second.get("/api/stats")["accepted"] == 3  # status, birth, state: nothing stale


def test_the_collector_reconnects_after_a_broker_restart(start_server: ServerFactory,
                                                         publisher: Callable[..., None],
                                                         broker: Broker) -> None:
    site, cabinet = _site(), "k6"
    server = start_server(tsdb=False)
    server.wait_connected()
    broker.restart()  # the broker keeps no sessions: the collector must subscribe again
    wait_until(lambda: server.get("/api/stats")["mqtt"]["connects"] >= 2
               and server.get("/healthz")["mqtt_connected"], 30, "a reconnect")
    assert server.get("/api/stats")["mqtt"]["connection_losses"] >= 1
    assert any("reconnecting in" in line for line in server.process.lines)
    _announce(publisher, site, cabinet)
    wait_until(lambda: server.cabinet(site, cabinet), 20, "messages after the reconnect")


def test_bad_config_exits_78_naming_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[tsdb]\nurl = 'http://127.0.0.1:8428'\nbatchsize = 10\n", encoding="utf-8")
    process = ManagedProcess("cabinet-server",
                             [console_script("cabinet-server"), "run", "--config", str(config)])
    try:
        assert process.proc.wait(20) == EXIT_CONFIG  # the unit's RestartPreventExitStatus
    finally:
        process.stop()
    assert f"{config}: tsdb.batchsize: unknown key" in process.output()
