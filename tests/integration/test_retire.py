"""``cabinet-server retire`` against a real Mosquitto: a collector taken out of service for good
has its persistent session ended at once (not after [mqtt] session_expiry_s, while the broker
holds its queue in memory), and the command refuses while the collector runs or while no other
collector receives what would be discarded."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from server.clock import utcnow
from server.hearing import Hearing
from tests.support.procs import console_script
from tests.support.services import Broker
from tests.support.store import store_at

pytestmark = pytest.mark.integration


def _session(broker: Broker, client_id: str, subscribe: bool) -> bool:
    """Connect as ``client_id`` resuming its session (expiry 1 h); whether the broker had one.
    ``subscribe``: make it a collector's session, which the broker then queues for."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=MQTTProtocolVersion.MQTTv5)
    present: list[bool] = []
    ready = threading.Event()

    def on_connect(client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                   reason_code: object, properties: object) -> None:
        present.append(flags.session_present)
        if subscribe:
            client.subscribe("ladewache/v1/+/+/+", qos=1)
        else:
            ready.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *args: ready.set()
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=properties)
    client.loop_start()
    try:
        assert ready.wait(10), "the broker did not answer"
    finally:
        client.disconnect()
        client.loop_stop()
    return present[0]


def _queue_for_it(broker: Broker, count: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for n in range(count):
            client.publish("ladewache/v1/gs-a/k1/event", b"{}" + str(n).encode(),
                           qos=1).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def _config(tmp_path: Path, broker: Broker, client_id: str) -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    config = tmp_path / "server.toml"
    config.write_text(f"""
[mqtt]
host = "{broker.host}"
port = {broker.port}
client_id = "{client_id}"
[state]
dir = "state"
[cluster]
node = "old"
""", encoding="utf-8")
    return config


def _retire(config: Path, *more: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([console_script("cabinet-server"), "retire", "--config", str(config),
                           *more], capture_output=True, text=True, timeout=60, env=os.environ)


def _says_it_hears(tmp_path: Path, node: str) -> Hearing:
    hearing = Hearing(store_at(tmp_path / "state"), node, timedelta(seconds=60), utcnow)
    hearing.report(True)
    return hearing


def test_retire_ends_the_session_and_forgets_the_collector(tmp_path: Path, broker: Broker) -> None:
    client_id = f"collector-old-{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, broker, client_id)
    assert not _session(broker, client_id, subscribe=True)  # made now
    _queue_for_it(broker, 5)  # the broker keeps these for the collector that is away
    old = Hearing(store_at(tmp_path / "state"), "old", timedelta(seconds=60), utcnow)
    old.report(False)  # it ran once: a row that no longer counts
    _says_it_hears(tmp_path, "new")

    result = _retire(config)
    assert result.returncode == 0, result.stderr
    assert f"the session of '{client_id}' has ended" in result.stdout
    assert "collector 'old' retired; new receive(s) every message" in result.stdout
    assert not _session(broker, client_id, subscribe=False)  # gone, with what it queued
    assert "old" not in old.hearing_now()
    assert old.report(False) == ["new"]


def test_retire_refuses_while_the_collector_runs(tmp_path: Path, broker: Broker) -> None:
    client_id = f"collector-old-{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, broker, client_id)
    _session(broker, client_id, subscribe=True)
    _says_it_hears(tmp_path, "old")
    _says_it_hears(tmp_path, "new")
    result = _retire(config, "--force")
    assert result.returncode == 1
    assert "collector 'old' is running" in result.stderr and "Stop it first" in result.stderr
    assert "Traceback" not in result.stderr
    assert _session(broker, client_id, subscribe=False)  # untouched


def test_retire_refuses_when_nobody_else_receives_unless_forced(tmp_path: Path,
                                                                broker: Broker) -> None:
    client_id = f"collector-old-{uuid.uuid4().hex[:6]}"
    config = _config(tmp_path, broker, client_id)
    _session(broker, client_id, subscribe=True)
    result = _retire(config)
    assert result.returncode == 1
    assert "no other collector receives from the broker now" in result.stderr
    assert "--force" in result.stderr
    assert _session(broker, client_id, subscribe=True)  # untouched

    forced = _retire(config, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "no other collector receives now" in forced.stdout
    assert not _session(broker, client_id, subscribe=False)
