"""A collector subscribed to two brokers ([mqtt] failover, docs/deploy.md 6c) while a real agent
moves between them (cabinet_agent/failover.py): the cabinet stays online throughout and no
cabinet_offline alert is raised, neither by the old broker's late Last Will nor by the time the
collector's connection to a dead broker is down; and when only the collector's own link to a
broker is cut (the agent talks on there), its cabinet is not called offline: the team is told
that it is not monitored, and again when the link is back."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cabinet_agent.common.protocol import (
    AgentStatus,
    BirthMessage,
    Channel,
    SlotInfo,
    StatusMessage,
    encode,
    topic_for,
)
from tests.support.failover_rig import (
    CABINET,
    SITE,
    Recorder,
    Setup,
    collector_on_both,
    connected_to,
)
from tests.support.http_receiver import Receiver, http_receiver
from tests.support.netproxy import NetProxy
from tests.support.notify_config import webhook_district
from tests.support.procs import ManagedProcess, wait_until
from tests.support.publisher import retained_publisher
from tests.support.services import Broker

pytestmark = pytest.mark.integration


def _collector(tmp_path: Path, a: Broker, b: Broker) -> tuple[ManagedProcess, str]:
    return collector_on_both(tmp_path, a.port, b.port)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _cabinet(http: str) -> dict[str, Any] | None:
    return next((c for c in _get(f"{http}/api/fleet")["cabinets"]
                 if (c["site"], c["cabinet"]) == (SITE, CABINET)), None)


def _offline_alerts(http: str) -> list[dict[str, Any]]:
    return [a for a in _get(f"{http}/api/alerts")["alerts"]
            if a["labels"].get("alertname") == "cabinet_offline"]


def _online_and_heard_after(http: str, moment: datetime) -> bool:
    cabinet = _cabinet(http)
    return bool(cabinet and cabinet["status"] == "online"
                and datetime.fromisoformat(cabinet["last_seen_at"]) > moment)


def test_a_late_will_from_the_old_broker_does_not_mark_the_cabinet_offline(
        tmp_path: Path, setup: Setup, brokers: tuple[Broker, Broker]) -> None:
    broker_a, broker_b = brokers
    collector, http = _collector(tmp_path, broker_a, broker_b)
    at_a, at_b = Recorder(broker_a.port, "a-watch"), Recorder(broker_b.port, "b-watch")
    try:
        with NetProxy("127.0.0.1", broker_a.port) as proxy:
            agent = setup.agent(proxy.port, broker_b.port)
            agent.wait_for_line(connected_to(proxy.port))
            wait_until(lambda: _online_and_heard_after(http, datetime.now(UTC)), 20,
                       "the cabinet online via A")
            proxy.cut_client_side()  # the agent's link to A breaks: it knows at once, A by keepalive
            agent.wait_for_line(connected_to(broker_b.port), 30)
            # A sends the first connection's Last Will 1.5 keepalives after the agent's last packet,
            # when the agent is online at B already; the collector hears it through its A connection
            will = wait_until(lambda: at_a.messages("status", lambda m: m["status"] == "offline"),
                              30, "A's late Last Will")[0]
            heard_will = datetime.now(UTC)
            online_b = wait_until(lambda: at_b.messages("status", lambda m: m["status"] == "online"),
                                  10, "the online status at B")
            assert will["seq"] < online_b[0]["seq"]  # a Will of the connection replaced since
            wait_until(lambda: _online_and_heard_after(http, heard_will + timedelta(seconds=1)), 20,
                       "the cabinet heard via B after the Will")
            cabinet = _cabinet(http)
            assert cabinet is not None and cabinet["status"] == "online"
            assert _offline_alerts(http) == []

            # restarted, the collector gets A's kept Will and B's kept "online" from the brokers'
            # stores, in no particular order: the cabinet is online still
            assert collector.stop() == 0
            collector, http = _collector(tmp_path, broker_a, broker_b)
            restarted = datetime.now(UTC)
            wait_until(lambda: _online_and_heard_after(http, restarted + timedelta(seconds=3)), 20,
                       "the cabinet heard after the restart, past settle and pending")
            assert _offline_alerts(http) == []
    finally:
        at_a.close()
        at_b.close()
        collector.stop()


def test_a_dead_broker_s_cabinet_is_heard_through_the_other(
        tmp_path: Path, setup: Setup, brokers: tuple[Broker, Broker]) -> None:
    broker_a, broker_b = brokers
    collector, http = _collector(tmp_path, broker_a, broker_b)
    try:
        agent = setup.agent(broker_a.port, broker_b.port)
        agent.wait_for_line(connected_to(broker_a.port))
        wait_until(lambda: _online_and_heard_after(http, datetime.now(UTC)), 20,
                   "the cabinet online via A")
        broker_a.process.kill()  # A dies: agent and collector lose it at once, A sends no Will
        agent.wait_for_line(connected_to(broker_b.port), 30)
        collector.wait_for_line(lambda ln: "MQTT connection lost" in ln, 30)
        lost = datetime.now(UTC)
        # the collector judges the cabinet by what B brings: heard there
        wait_until(lambda: _online_and_heard_after(http, lost + timedelta(seconds=1)),
                   30, "the cabinet heard via B")
        health = _get(f"{http}/healthz")
        assert health["mqtt_connected"] is False  # one of its brokers is down: it says so
        assert _offline_alerts(http) == [], collector.output()[-3000:]
    finally:
        collector.stop()


def _offline(http: str, cabinet: str) -> list[dict[str, Any]]:
    return [a for a in _offline_alerts(http) if a["labels"]["cabinet"] == cabinet]


def _talks_once(publish: Callable[[str, bytes], None], cabinet: str) -> None:
    """A cabinet online, born with a 0.1 s telemetry interval, then nothing: silent in 2 s."""
    env = {"v": 1, "site": SITE, "cabinet": cabinet, "boot_id": "c" * 32, "seq": 0,
           "ts": datetime.now(UTC), "clock_synced": True}
    publish(topic_for(SITE, cabinet, Channel.STATUS),
            encode(StatusMessage(**env, status=AgentStatus.ONLINE)))  # type: ignore[arg-type]
    env["seq"] = 1
    publish(topic_for(SITE, cabinet, Channel.BIRTH), encode(BirthMessage(
        **env, agent_version="0.1.0", config_hash="0123abcd",  # type: ignore[arg-type]
        cabinet_model="m", slot_count=1, slots=[SlotInfo(slot=1)],
        poll_interval_s=0.1, telemetry_interval_s=0.1)))


def _wait_kind(receiver: Receiver, kind: str, status: str) -> dict[str, Any]:
    """The payload of the first delivered notification of ``kind`` with ``status``."""
    def found() -> list[dict[str, Any]]:
        return [body for body in (r.json() for r in receiver.delivered())
                if body.get("kind") == kind and body.get("status") == status]
    return wait_until(found, 30, f"a {kind} notification ({status})")[0]


def test_a_cut_link_to_a_running_broker_leaves_its_cabinets_unjudged_and_says_so(
        tmp_path: Path, setup: Setup, brokers: tuple[Broker, Broker]) -> None:
    """The agent is at B and stays there; only the collector's link to B is cut. Before, the
    collector called the cabinet offline once a grace was over (a false alert); now it is out
    of earshot: not judged, the team told which cabinet is not monitored, and told again when
    the link is back. A cabinet heard through A is judged all the while (it goes silent and is
    called offline)."""
    broker_a, broker_b = brokers
    with http_receiver() as receiver, NetProxy("127.0.0.1", broker_b.port) as proxy:
        notify = webhook_district(receiver.url, [(SITE, "Grundschule am Park")])
        collector, http = collector_on_both(  # told after 1.5 s instead of 5 minutes
            tmp_path, broker_a.port, proxy.port,
            notify.replace("[notify]\n", "[notify]\nblind_after_s = 1.5\n", 1))
        try:
            agent = setup.agent(broker_b.port, broker_a.port)
            agent.wait_for_line(connected_to(broker_b.port))
            wait_until(lambda: _online_and_heard_after(http, datetime.now(UTC)), 20,
                       "the cabinet online via B")
            proxy.cut(reset=True)  # the collector's link to B; the agent stays on B
            collector.wait_for_line(lambda ln: "MQTT connection lost" in ln, 30)
            with retained_publisher(broker_a) as publish:  # a cabinet at A, then silent
                _talks_once(publish, "k-at-a")
            told = _wait_kind(receiver, "unheard", "unheard")
            assert told["cabinets"] == [f"{CABINET}, Grundschule am Park"]
            wait_until(lambda: [a["state"] for a in _offline(http, "k-at-a")] == ["firing"], 30,
                       "the cabinet at A called offline: what A brings is judged")
            assert _offline(http, CABINET) == [], collector.output()[-3000:]
            on_a = connected_to(broker_a.port)
            assert not any(on_a(ln) for ln in agent.output().splitlines())  # it stayed on B

            proxy.restore()
            back = _wait_kind(receiver, "unheard", "back")
            assert back["broker"] == f"127.0.0.1:{proxy.port}"
            wait_until(lambda: _online_and_heard_after(http, datetime.now(UTC)), 20,
                       "the cabinet heard via B again")
            assert _offline(http, CABINET) == []
        finally:
            collector.stop()
