"""The ingest boundary against real servers: a hostile cabinet next to an honest one on a real
Mosquitto, the collector as a process, points in VictoriaMetrics; a refused TSDB line isolated in
its batch."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
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
    encode,
    topic_for,
)
from server.config import TsdbSettings
from server.tsdb.influx import InfluxSink
from tests.integration.test_server_ingest import ServerFactory, publisher, start_server  # noqa: F401
from tests.support.procs import free_port, wait_until
from tests.support.services import VictoriaMetrics

pytestmark = pytest.mark.integration


class Cabinet:
    """Messages of one agent boot, numbered as the agent numbers them."""

    def __init__(self, site: str, cabinet: str) -> None:
        self.site, self.cabinet = site, cabinet
        self.boot = uuid.uuid4().hex
        self.seq = 0
        self.events = 0

    def env(self, **overrides: Any) -> dict[str, Any]:
        self.seq += 1
        return {"v": 1, "site": self.site, "cabinet": self.cabinet, "boot_id": self.boot,
                "seq": self.seq, "ts": datetime.now(UTC), "clock_synced": True, **overrides}

    def topic(self, channel: Channel) -> str:
        return topic_for(self.site, self.cabinet, channel)

    def announce(self, publish: Callable[..., None]) -> None:
        publish(self.topic(Channel.STATUS),
                encode(StatusMessage(**self.env(), status=AgentStatus.ONLINE)), retain=True)
        publish(self.topic(Channel.BIRTH), encode(BirthMessage(
            **self.env(), agent_version="1.0", config_hash="0123abcd", cabinet_model="test-3",
            slot_count=3, slots=[SlotInfo(slot=n) for n in (1, 2, 3)], poll_interval_s=1.0,
            telemetry_interval_s=10.0)), retain=True)

    def telemetry(self, power: float = 11.5, queued: int = 0, **overrides: Any) -> bytes:
        return encode(TelemetryMessage(
            **self.env(**overrides), power_w=[power, 0.5, None],
            states=[SlotState.CHARGING, SlotState.CHARGED, SlotState.UNKNOWN], temperature_c=21.0,
            door=DoorState.CLOSED, mains=MainsState.ON, devices=[], outbox_queued=queued,
            event_seq=self.events))

    def event(self) -> bytes:
        self.events += 1
        return encode(EventMessage(**self.env(), event=EventKind.DOOR_CHANGED, old="closed",
                                   new="open", event_seq=self.events))

    def session(self, energy_wh: float, asset_tag: str) -> bytes:
        self.events += 1
        now = datetime.now(UTC)
        return encode(EventMessage(
            **self.env(), event=EventKind.SESSION_ENDED, slot=1, event_seq=self.events,
            session=ChargeSession(slot=1, asset_tag=asset_tag, started_at=now - timedelta(hours=2),
                                  ended_at=now, duration_s=7200.0, energy_wh=energy_wh,
                                  peak_w=18.0, end=SessionEnd.FULL)))


def _text(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return response.read().decode("utf-8-sig")


def _export(victoria: VictoriaMetrics, selector: str) -> list[tuple[float, datetime]]:
    samples = []
    for series in victoria.export(selector):
        samples += [(float(v), datetime.fromtimestamp(t / 1000, UTC))
                    for v, t in zip(series["values"], series["timestamps"], strict=True)]
    return sorted(samples, key=lambda s: s[1])


def test_a_hostile_cabinet_leaves_its_neighbour_whole(
        start_server: ServerFactory, publisher: Callable[..., None],  # noqa: F811
        victoria: VictoriaMetrics) -> None:
    site = f"it-{uuid.uuid4().hex[:10]}"
    a, b = Cabinet(site, "a"), Cabinet(site, "b")
    server = start_server()
    server.wait_connected()
    # The inventory's tags (an MDM export may hold a formula); what the sessions claim is ignored
    server.place("B-0001", site, "b", 1)
    server.place("=HYPERLINK(1)", site, "a", 1)
    for cabinet in (a, b):
        cabinet.announce(publisher)
    wait_until(lambda: server.cabinet(site, "a") and server.cabinet(site, "b"), 20, "both births")
    publisher(b.topic(Channel.TELEMETRY), b.telemetry(power=11.5))
    publisher(b.topic(Channel.EVENT), b.session(31.5, "B-0001"))

    future = a.telemetry(power=7.0, ts=datetime(9999, 12, 31, tzinfo=UTC))
    good = json.loads(a.telemetry(power=8.0))
    hostile = [
        future,  # kept, but at the receive time
        json.dumps(good).replace('"power_w": [8.0', '"power_w": [1e999').encode(),
        json.dumps({**good, "seq": 2**64}).encode(),
        json.dumps({**good, "power_w": [1.0] * 5, "states": ["charging"] * 5}).encode(),
        json.dumps({**good, "devices": [{"name": "", "ok": False}]}).encode(),
        json.dumps({**good, "devices": [{"name": f"d{i}", "ok": False} for i in range(30)]}).encode(),
    ]
    infinite_session = a.session(9.5, "=HYPERLINK(1)").replace(b'"energy_wh":9.5',
                                                                 b'"energy_wh":1e999')
    sent_at = datetime.now(UTC)
    for payload in hostile:
        publisher(a.topic(Channel.TELEMETRY), payload)
    publisher(a.topic(Channel.EVENT), infinite_session)
    publisher(a.topic(Channel.EVENT), a.session(9.5, "=HYPERLINK(1)"))
    publisher(b.topic(Channel.TELEMETRY), b.telemetry(power=42.0))

    def integrity(cabinet: str) -> dict[str, Any]:
        found = server.cabinet(site, cabinet)
        assert found is not None
        return dict(found["integrity"])

    wait_until(lambda: integrity("a")["rejected"] == 6, 20, "six refusals counted for a")
    assert integrity("a")["last_rejected"] == "schema"  # the infinite session, the last refused
    assert integrity("a")["out_of_window"] == 1
    assert integrity("b")["rejected"] == 0 and integrity("b")["out_of_window"] == 0
    rejected = server.get("/api/stats")["rejected"]
    assert rejected["schema"] == 4 and rejected["too_many_slots"] == 1
    assert rejected["too_many_devices"] == 1

    b_samples = wait_until(
        lambda: len(s := _export(victoria, f'slot_power_w{{site="{site}",cabinet="b",slot="1"}}'))
        == 2 and s, 20, "both of b's readings in VictoriaMetrics")
    assert [value for value, _ in b_samples] == [11.5, 42.0]
    a_samples = wait_until(
        lambda: _export(victoria, f'slot_power_w{{site="{site}",cabinet="a",slot="1"}}'), 20,
        "a's reading from year 9999, stored at its receive time")
    assert [value for value, _ in a_samples] == [7.0]
    assert abs(a_samples[0][1] - sent_at) < timedelta(minutes=1)
    # the exports still work for everyone, b's session in them, a's text neutralised
    sessions = wait_until(lambda: "B-0001" in (t := _text(f"{server.url}/api/export/sessions.csv",
                                                          server.token)) and t, 20, "sessions.csv")
    assert "'=HYPERLINK(1)" in sessions and '"=HYPERLINK' not in sessions
    assert "31,5" in sessions or "31.5" in sessions
    assert f"{site}" in _text(f"{server.url}/api/export/inventory.csv", server.token)
    assert server.process.proc.poll() is None


# -- a TSDB that refuses a whole batch for one line, as InfluxDB 2 does -------------------------

def _influx2_refuses(line: str) -> bool:
    """The checks InfluxDB 2 applies that VictoriaMetrics does not (it skips such lines, or stores
    them): a timestamp beyond int64 nanoseconds, a non-finite field, an empty tag value."""
    head, _, rest = line.partition(" ")
    fields, _, stamp = rest.rpartition(" ")
    if not stamp.isdigit() or int(stamp) >= 2**63:
        return True
    if any(value.lower().startswith(("inf", "nan", "-inf")) for _, value in
           (f.split("=", 1) for f in fields.split(","))):
        return True
    return any(tag.endswith("=") for tag in head.split(",")[1:])


class StrictWrite(BaseHTTPRequestHandler):
    """``/api/v2/write`` with InfluxDB 2's all-or-nothing answer, in front of VictoriaMetrics
    (InfluxDB 2 itself cannot be installed here): a batch with one refused line gets 400, as
    InfluxDB 2 answers, and nothing of it is stored; any other batch is passed on."""

    target = ""
    batches: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        lines = body.decode().splitlines()
        StrictWrite.batches.append(len(lines))
        if any(_influx2_refuses(line) for line in lines):
            answer = json.dumps({"code": "invalid", "message": "unable to parse points"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        request = urllib.request.Request(f"{self.target}{self.path}", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            status = response.status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def strict_tsdb(victoria: VictoriaMetrics) -> Iterator[str]:
    StrictWrite.target = victoria.url
    StrictWrite.batches = []
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), StrictWrite)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_refused_line_costs_only_itself(strict_tsdb: str, victoria: VictoriaMetrics) -> None:
    site = f"it-{uuid.uuid4().hex[:10]}"
    now_ns = time.time_ns()
    good = [f"slot,site={site},cabinet=b,slot={n} power_w={n}.5 {now_ns}" for n in range(1, 40)]
    bad = f"slot,site={site},cabinet=a,slot=1 power_w=1.0 {10**20}"  # year 5138: beyond int64 ns
    sink = InfluxSink(TsdbSettings(url=strict_tsdb, batch_size=100, flush_interval_s=0.05))
    try:
        sink.write([*good[:20], bad, *good[20:]])
        assert sink.flush(20)
        stats = sink.stats()
    finally:
        sink.close(5)
    assert (stats.written, stats.dropped) == (len(good), 1)
    assert StrictWrite.batches[0] == len(good) + 1  # the whole batch was tried first
    stored = wait_until(
        lambda: len(s := victoria.export(f'slot_power_w{{site="{site}",cabinet="b"}}')) == 39 and s,
        20, "every good line in VictoriaMetrics")
    assert sorted(int(s["metric"]["slot"]) for s in stored) == list(range(1, 40))
    assert victoria.export(f'slot_power_w{{site="{site}",cabinet="a"}}') == []
