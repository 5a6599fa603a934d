"""A test's publisher: a cabinet's messages as the tests make them, to one broker."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .procs import wait_until
from .services import Broker

__all__ = ["retained_publisher"]


@contextlib.contextmanager
def retained_publisher(broker: Broker) -> Iterator[Callable[[str, bytes], None]]:
    """Publish (topic, payload) to ``broker``, retained at QoS 1, and wait for its PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(broker.host, broker.port)
    client.loop_start()

    def send(topic: str, payload: bytes) -> None:
        wait_until(client.is_connected, 20, "the test publisher connected")
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(timeout=10)

    try:
        yield send
    finally:
        client.disconnect()
        client.loop_stop()
