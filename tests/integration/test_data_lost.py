"""Events the broker acknowledged but never delivered: proven lost and alerted (data_lost), against
a real Mosquitto that drops what exceeds an absent collector's queue, and the collector as a
process. A cabinet whose events all arrive is never called lossy."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cabinet_agent.common.protocol import Channel
from tests.integration.test_ingest_boundary import Cabinet
from tests.integration.test_server_ingest import ServerFactory, publisher, start_server  # noqa: F401
from tests.support.procs import free_port, wait_until
from tests.support.services import Broker, _start_mosquitto_process

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that keeps at most 3 messages for an absent persistent session, then drops."""
    port = free_port()
    config = tmp_path / "mosquitto-small.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      "max_queued_messages 3\nlog_dest stdout\nlog_type error\n", encoding="utf-8")
    broker = Broker("127.0.0.1", port, _start_mosquitto_process(config, port), config)
    yield broker
    broker.process.stop()


def test_events_dropped_by_the_broker_raise_data_lost(
        start_server: ServerFactory, publisher: Callable[..., None]) -> None:  # noqa: F811
    start, publish = start_server, publisher
    site = f"it-{uuid.uuid4().hex[:10]}"
    lossy, steady = Cabinet(site, "lossy"), Cabinet(site, "steady")
    server = start(tsdb=False, client_id="collector-lost")
    server.wait_connected()
    for cabinet in (lossy, steady):
        cabinet.announce(publish)
        publish(cabinet.topic(Channel.EVENT), cabinet.event())
    wait_until(lambda: server.cabinet(site, "lossy") and server.cabinet(site, "steady"), 20,
               "both cabinets")
    # the steady cabinet: every event arrives; its empty outbox and a later event prove nothing lost
    publish(steady.topic(Channel.TELEMETRY), steady.telemetry())
    publish(steady.topic(Channel.EVENT), steady.event())

    server.process.stop()  # the persistent session stays on the broker, queueing at most 3
    for _ in range(7):
        publish(lossy.topic(Channel.EVENT), lossy.event())  # acknowledged to the agent: gone
    server = start(tsdb=False, client_id="collector-lost")
    server.wait_connected()
    publish(lossy.topic(Channel.TELEMETRY), lossy.telemetry(queued=0))
    publish(lossy.topic(Channel.EVENT), lossy.event())

    def lost(cabinet: str) -> int:
        found = server.cabinet(site, cabinet)
        return -1 if found is None else int(found["integrity"]["events_lost"])

    wait_until(lambda: lost("lossy") == 4, 20, "events 5 to 8 proven lost")
    alerts = wait_until(
        lambda: [a for a in server.get("/api/alerts?state=firing")["alerts"]
                 if a["labels"]["alertname"] == "data_lost"], 20, "the data_lost alert")
    assert [a["labels"]["cabinet"] for a in alerts] == ["lossy"]
    assert "4" in alerts[0]["summary"]
    assert lost("steady") == 0
