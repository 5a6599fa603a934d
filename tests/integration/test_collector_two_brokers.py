"""A collector subscribed to two brokers ([mqtt] failover, docs/deploy.md 6c) while a real agent
moves between them (cabinet_agent/failover.py): the cabinet stays online throughout and no
cabinet_offline alert is raised, neither by the old broker's late Last Will nor by the time the
collector's connection to a dead broker is down."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.failover_rig import (
    CABINET,
    SITE,
    Recorder,
    Setup,
    collector_on_both,
    connected_to,
)
from tests.support.netproxy import NetProxy
from tests.support.procs import ManagedProcess, wait_until
from tests.support.services import Broker

pytestmark = pytest.mark.integration

GRACE_S = 4.0


def _collector(tmp_path: Path, a: Broker, b: Broker) -> tuple[ManagedProcess, str]:
    return collector_on_both(tmp_path, a, b, GRACE_S)


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
        # the collector judges by what B brings once the grace is over: the cabinet is heard there
        wait_until(lambda: _online_and_heard_after(http, lost + timedelta(seconds=GRACE_S + 1)),
                   30, "the cabinet heard via B after the grace")
        health = _get(f"{http}/healthz")
        assert health["mqtt_connected"] is False  # one of its brokers is down: it says so
        assert _offline_alerts(http) == [], collector.output()[-3000:]
    finally:
        collector.stop()
