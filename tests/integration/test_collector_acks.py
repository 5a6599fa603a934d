"""The collector acknowledges a QoS 1 message only after ``settle`` made it durable.

Against a real Mosquitto through a proxy the test can cut: while the collector's ``settle`` is held
(the journal append has not happened), the connection dies; the broker then has no PUBACK for what
was handled and sends it again when the collector is back. Messages it settled are acknowledged
and not sent again, also across a clean stop and a start with the same session. A collector away
for longer than its ``session_expiry_s`` finds its session ended by the broker (MQTT 5), which
frees what was queued for it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from server.config import MqttSettings
from server.ingest import MqttCollector
from tests.support.netproxy import NetProxy
from tests.support.procs import wait_until
from tests.support.services import Broker

pytestmark = pytest.mark.integration

TOPIC = "ladewache/v1/gs-acks/schrank-1/event"


class Recorder:
    """The collector's handler and ``settle``: counts what it was handed; ``settle`` waits while
    the gate is closed."""

    def __init__(self) -> None:
        self.seen: Counter[bytes] = Counter()
        self.settles = 0
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def handle(self, topic: str, payload: bytes, retained: bool) -> None:
        with self._lock:
            self.seen[payload] += 1

    def settle(self) -> None:
        with self._lock:
            self.settles += 1
        self.gate.wait(20)

    def count(self, payload: bytes) -> int:
        with self._lock:
            return self.seen[payload]


@pytest.fixture
def publisher(broker: Broker) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="acks-publisher")
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def _collector(port: int, recorder: Recorder, client_id: str = "acks-collector",
               session_expiry_s: int = 3600) -> MqttCollector:
    settings = MqttSettings(host="127.0.0.1", port=port, client_id=client_id,
                            reconnect_min_s=0.1, reconnect_max_s=0.3,
                            session_expiry_s=session_expiry_s)
    collector = MqttCollector(settings, recorder.handle, settle=recorder.settle)
    collector.start()
    wait_until(collector.receiving_since, 10, "the collector's subscription")
    return collector


def _publish(client: mqtt.Client, *payloads: bytes) -> None:
    for payload in payloads:
        client.publish(TOPIC, payload, qos=1).wait_for_publish(5)


def test_what_was_not_settled_is_sent_again_and_what_was_is_not(broker: Broker,
                                                                 publisher: mqtt.Client) -> None:
    recorder = Recorder()
    with NetProxy(broker.host, broker.port) as proxy:
        collector = _collector(proxy.port, recorder)
        try:
            _publish(publisher, b"settled")
            wait_until(lambda: recorder.count(b"settled") == 1 and recorder.settles >= 1, 10,
                       "the first message handled and settled")

            recorder.gate.clear()  # the next settle hangs: nothing after it is durable yet
            settles = recorder.settles
            _publish(publisher, b"held-1", b"held-2")
            wait_until(lambda: recorder.settles > settles and recorder.count(b"held-1") == 1, 10,
                       "the held message handled, its settle waiting")
            assert collector.stats().silent_since is None  # receiving
            proxy.cut(reset=True)  # the collector dies to the broker before its PUBACKs
            recorder.gate.set()
            # it says since when it hears nothing (the dashboard's "may be out of date")
            wait_until(lambda: collector.stats().silent_since is not None, 10, "silent")
            proxy.restore()
            wait_until(lambda: recorder.count(b"held-1") == 2 and recorder.count(b"held-2") >= 1,
                       15, "the broker sending the unacknowledged messages again")
            wait_until(lambda: collector.stats().silent_since is None, 10, "receiving again")
        finally:
            collector.stop()

    # A clean stop acknowledged everything handled: a new start with the session gets only news.
    again = _collector(broker.port, recorder)
    try:
        _publish(publisher, b"after-restart")
        wait_until(lambda: recorder.count(b"after-restart") == 1, 10, "the next message")
    finally:
        again.stop()
    assert recorder.count(b"settled") == 1
    assert recorder.count(b"held-1") == 2
    assert recorder.count(b"held-2") in (1, 2)  # handled before or only after the cut


def test_the_session_outlives_a_restart_and_ends_after_the_expiry(broker: Broker,
                                                                  publisher: mqtt.Client) -> None:
    recorder = Recorder()
    kept = _collector(broker.port, recorder, "acks-kept", session_expiry_s=3600)
    kept.stop()
    short = _collector(broker.port, recorder, "acks-expiring", session_expiry_s=1)
    short.stop()
    _publish(publisher, b"while-away")  # queued in both sessions
    # the broker ends the short one once its second is over, and says so
    broker.process.wait_for_line(lambda ln: "Expiring client acks-expiring" in ln, 10)

    again = _collector(broker.port, recorder, "acks-kept", session_expiry_s=3600)
    try:
        wait_until(lambda: recorder.count(b"while-away") == 1, 10, "the queued message")
    finally:
        again.stop()
    afresh = _collector(broker.port, recorder, "acks-expiring", session_expiry_s=1)
    try:
        # a fresh session: news arrive (after anything queued would have), the queue is gone
        _publish(publisher, b"news")
        wait_until(lambda: recorder.count(b"news") == 1, 10, "the news")
    finally:
        afresh.stop()
    assert recorder.count(b"while-away") == 1


def test_an_update_from_the_mqtt_3_collector_keeps_its_queue(broker: Broker,
                                                            publisher: mqtt.Client) -> None:
    """Collectors before 2026-12-07 spoke MQTT 3.1.1 (clean session off): the first MQTT 5
    connection after the update resumes that session, with what was queued during the update."""
    old = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="acks-updated", clean_session=False)
    subscribed = threading.Event()
    old.on_subscribe = lambda *_: subscribed.set()
    old.connect(broker.host, broker.port)
    old.loop_start()
    old.subscribe(TOPIC, qos=1)
    assert subscribed.wait(10)
    old.disconnect()
    old.loop_stop()
    _publish(publisher, b"during-the-update")

    recorder = Recorder()
    updated = _collector(broker.port, recorder, "acks-updated")
    try:
        wait_until(lambda: recorder.count(b"during-the-update") == 1, 10, "the queued message")
    finally:
        updated.stop()
