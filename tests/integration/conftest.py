"""Fixtures several integration modules share."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.failover_rig import brokers, setup  # noqa: F401 - the broker-failover rig
from tests.support.procs import wait_until
from tests.support.services import Broker


@pytest.fixture
def publish(broker: Broker) -> Iterator[Callable[[str, bytes], None]]:
    """Publish (topic, payload) to the session's broker, retained at QoS 1, and wait for the
    broker's PUBACK: a cabinet's messages as the tests make them."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()

    def send(topic: str, payload: bytes) -> None:
        wait_until(client.is_connected, 20, "the test publisher connected")
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(timeout=10)

    yield send
    client.disconnect()
    client.loop_stop()
