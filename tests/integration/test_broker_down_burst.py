"""One of two brokers dies in the middle of a burst of notifications (issue 19's fault suite): a
collector subscribed to both brokers ([mqtt] failover) is telling twelve schools that their
cabinets went offline, slowly, while a real agent on broker A opens and closes its door; A is
SIGKILLed. Every school is told once, the agent's cabinet (moved to B with its outbox) is told
about nothing (no false cabinet_offline), and every door event the agent saw is stored once."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
    EventKind,
    SlotInfo,
    StatusMessage,
    encode,
    topic_for,
)
from server.store.schema_events import events
from tests.support.failover_rig import CABINET, SITE, Setup, collector_on_both, connected_to
from tests.support.http_receiver import http_receiver
from tests.support.notify_config import webhook_district
from tests.support.procs import ManagedProcess, wait_until
from tests.support.services import Broker
from tests.support.store import store_at

pytestmark = pytest.mark.integration

SCHOOLS = 12
RIG_SCHOOL = "Grundschule am Rig"


def _schools(sites: list[str]) -> list[tuple[str, str]]:
    return [(SITE, RIG_SCHOOL)] + [(site, f"Grundschule {n}") for n, site in enumerate(sites, 1)]


@pytest.fixture
def publisher(brokers: tuple[Broker, Broker]) -> Iterator[mqtt.Client]:
    """The twelve schools' cabinets, on broker A."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"schools-{uuid.uuid4().hex[:6]}")
    client.connect("127.0.0.1", brokers[0].port)
    client.loop_start()
    try:
        yield client
    finally:
        client.loop_stop()


def _goes_offline(client: mqtt.Client, site: str) -> None:
    """A school's cabinet: born, then its agent's Last Will."""
    env: dict[str, Any] = {"v": 1, "site": site, "cabinet": "k1", "boot_id": "d" * 32, "seq": 0,
                           "ts": datetime.now(UTC), "clock_synced": True}
    for topic, message in (
            (topic_for(site, "k1", Channel.BIRTH), BirthMessage(
                **env, agent_version="0.1.0", config_hash="0123abcd", cabinet_model="m",
                slot_count=1, slots=[SlotInfo(slot=1)], poll_interval_s=1.0,
                telemetry_interval_s=10.0)),
            (topic_for(site, "k1", Channel.STATUS),
             StatusMessage(**{**env, "seq": 1}, status=AgentStatus.OFFLINE))):
        client.publish(topic, encode(message), qos=1, retain=True).wait_for_publish(timeout=10)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _heard_after(http: str, moment: datetime) -> bool:
    cabinet = next((c for c in _get(f"{http}/api/fleet")["cabinets"]
                    if (c["site"], c["cabinet"]) == (SITE, CABINET)), None)
    return bool(cabinet and cabinet["status"] == "online"
                and datetime.fromisoformat(cabinet["last_seen_at"]) > moment)


def _door_changes(agent: ManagedProcess) -> int:
    return sum(f"{EventKind.DOOR_CHANGED.value} " in line for line in agent.output().splitlines())


def _toggle_door(setup: Setup, agent: ManagedProcess) -> None:
    """Open and close the door, each seen by the agent before the next."""
    for open_ in (True, False):
        seen = _door_changes(agent)
        setup.door(open_)
        wait_until(lambda seen=seen: _door_changes(agent) > seen, 20, "the agent saw the door")


def _door_events_stored(state: Path) -> int:
    with store_at(state).connect() as db:
        return int(db.scalar(select(func.count()).select_from(events).where(
            events.c.site == SITE, events.c.kind == EventKind.DOOR_CHANGED.value)) or 0)


def test_one_broker_dies_mid_burst_every_school_is_told_once(
        tmp_path: Path, setup: Setup, brokers: tuple[Broker, Broker],
        publisher: mqtt.Client) -> None:
    broker_a, broker_b = brokers
    sites = [f"gs-{uuid.uuid4().hex[:6]}-{n}" for n in range(1, SCHOOLS + 1)]
    with http_receiver(delay_s=0.3) as receiver:
        collector, http = collector_on_both(
            tmp_path, broker_a.port, broker_b.port,
            webhook_district(receiver.url, _schools(sites), per_receiver=2))
        try:
            agent = setup.agent(broker_a.port, broker_b.port)
            agent.wait_for_line(connected_to(broker_a.port))
            wait_until(lambda: _heard_after(http, datetime.now(UTC)), 20, "the cabinet via A")

            for site in sites:
                _goes_offline(publisher, site)
            # two at a time, 0.3 s each: the burst lasts about two seconds
            assert receiver.wait_for(3, 30), collector.output()[-4000:]
            _toggle_door(setup, agent)
            broker_a.process.kill()  # no Will from A, the collector loses one of its two links
            agent.wait_for_line(connected_to(broker_b.port), 30)
            collector.wait_for_line(lambda ln: "MQTT connection lost" in ln, 30)
            lost = datetime.now(UTC)
            _toggle_door(setup, agent)

            names = {f"Grundschule {n}" for n in range(1, SCHOOLS + 1)}
            wait_until(lambda: {r.json()["school"] for r in receiver.delivered()} >= names, 30,
                       "every school told")
            # the cabinet is judged by what B brings: heard there, not silent
            wait_until(lambda: _heard_after(http, lost + timedelta(seconds=1)), 30,
                       "the cabinet heard via B")
            changes = _door_changes(agent)
            wait_until(lambda: _door_events_stored(tmp_path / "state") >= changes, 20,
                       "the agent's door events stored")
            firing = [a["labels"]["site"] for a in _get(f"{http}/api/alerts?state=firing")["alerts"]
                      if a["labels"]["alertname"] == "cabinet_offline"]
        finally:
            collector.stop()

        told = Counter((r.json()["school"], r.json()["status"]) for r in receiver.delivered())
        assert told == Counter({(name, "firing"): 1 for name in names}), told
        assert sorted(firing) == sorted(sites)  # the rig's cabinet is not among them
        # the first poll's unknown -> closed, then open/closed twice before the kill, twice after
        assert changes == 5, agent.output()[-3000:]
        assert _door_events_stored(tmp_path / "state") == changes  # once each, none lost
