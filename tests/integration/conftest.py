"""Fixtures several integration modules share."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.failover_rig import brokers, setup  # noqa: F401 - the broker-failover rig
from tests.support.publisher import retained_publisher
from tests.support.services import Broker


@pytest.fixture
def publish(broker: Broker) -> Iterator[Callable[[str, bytes], None]]:
    """Publish (topic, payload) to the session's broker, retained at QoS 1, and wait for the
    broker's PUBACK: a cabinet's messages as the tests make them."""
    with retained_publisher(broker) as send:
        yield send
