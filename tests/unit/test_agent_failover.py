"""The agent's broker failover in pieces: the address parser, the rotation policy as a timeline
on a fake clock, and the outbox sender when a publish meets a connection that just broke."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTErrorCode

from cabinet_agent.common.backoff import Backoff
from cabinet_agent.common.broker_address import BrokerAddress, parse_broker
from cabinet_agent.failover import BrokerRotation
from cabinet_agent.outbox import Outbox, Priority
from cabinet_agent.sender import OutboxSender
from tests.support.procs import wait_until

A, B, C = BrokerAddress("a.example", 8883), BrokerAddress("b.example", 8883), BrokerAddress("c", 1)


# -- the address -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("entry", "host", "port"), [
    ("b2.example", "b2.example", 8883),
    ("b2.example:1884", "b2.example", 1884),
    ("  10.0.0.2:1  ", "10.0.0.2", 1),
    ("[::1]", "::1", 8883),
    ("[::1]:1883", "::1", 1883),
    ("[FD00:0::2]:65535", "fd00::2", 65535),
    ("fd00::2", "fd00::2", 8883),  # a bare IPv6 address: no port can follow
])
def test_a_broker_is_host_or_host_and_port(entry: str, host: str, port: int) -> None:
    assert parse_broker(entry, 8883) == BrokerAddress(host, port)


@pytest.mark.parametrize(("entry", "why"), [
    ("", "empty entry"),
    (":1883", "empty host"),
    ("b2:", "port '' is not a number"),
    ("b2:88x3", "port '88x3' is not a number"),
    ("b2:0", "port 0 is not in 1-65535"),
    ("b2:65536", "port 65536 is not in 1-65535"),
    ("mqtts://b2:8883", "not a URL"),
    ("b 2", "cannot be part of a host name"),
    ("[b2]:1883", "must hold an IPv6 address"),
    ("[::1", "must hold an IPv6 address"),
    ("[::1]1883", "only :port may follow"),
    ("fd00::2:x", "written [address]:port"),
])
def test_a_bad_broker_entry_says_what_is_wrong(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("]", r"\]")):
        parse_broker(entry, 1883)


def test_an_address_prints_as_a_config_would_write_it() -> None:
    assert [str(b) for b in (A, BrokerAddress("::1", 1883))] == ["a.example:8883", "[::1]:1883"]
    assert BrokerAddress("B.Example", 1).same_as(BrokerAddress("b.example", 1))
    assert BrokerAddress("::1", 1).same_as(BrokerAddress("0:0::1", 1))
    assert not BrokerAddress("b", 1).same_as(BrokerAddress("b", 2))


# -- the policy, as a timeline ---------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _rotation(*brokers: BrokerAddress, clock: Clock) -> BrokerRotation:
    # 1 s first delay, 8 s at most; the jitter draws from a fixed seed.
    return BrokerRotation(brokers, Backoff(1.0, 8.0, random.Random(5)), settle_s=1.0, monotonic=clock)


def test_the_next_broker_is_tried_at_once_and_a_whole_failed_round_waits() -> None:
    clock = Clock()
    rotation = _rotation(A, B, C, clock=clock)
    assert rotation.current == A
    steps = []
    for _ in range(6):  # nothing answers
        delay = rotation.failed()
        steps.append((rotation.current, delay))
    assert [b for b, _ in steps] == [B, C, A, B, C, A]
    assert [d for _, d in steps][:2] == [0.0, 0.0] and steps[3][1] == steps[4][1] == 0.0
    # the pause before a new round grows: 0.5-1 s, then 1-2 s (half fixed, half jitter)
    assert 0.5 <= steps[2][1] <= 1.0 and 1.0 <= steps[5][1] <= 2.0


def test_the_agent_stays_where_it_connected_and_moves_on_at_once_when_that_breaks() -> None:
    clock = Clock()
    rotation = _rotation(A, B, clock=clock)
    assert rotation.failed() == 0.0 and rotation.current == B  # the primary is down at start
    rotation.connected()
    clock.now += 3600  # sticky: nothing moves it back to A while B works
    assert rotation.current == B and rotation.position == 1
    assert rotation.failed() == 0.0 and rotation.current == A  # B broke: A at once
    delay = rotation.failed()  # A is still down: the round from B is complete
    assert rotation.current == B and 0.5 <= delay <= 1.0


def test_a_broker_back_after_a_long_outage_is_reached_without_the_long_wait_of_the_other() -> None:
    clock = Clock()
    rotation = _rotation(A, B, clock=clock)
    delays = [rotation.failed() for _ in range(20)]  # both down for long: the delay is capped
    assert rotation.current == A and 4.0 <= delays[-1] <= 8.0
    assert rotation.failed() == 0.0 and rotation.current == B  # A still down, B is tried at once
    rotation.connected()  # B is back
    clock.now += 5
    assert rotation.failed() == 0.0  # B lasted: a fresh round, from its first delay
    assert 0.5 <= rotation.failed() <= 1.0


def test_connections_that_break_at_once_count_as_failed_attempts() -> None:
    """Two brokers that each accept and drop the agent (its login used elsewhere, say) must not
    make it spin between them: a connection that did not last reconnect_min_s is no success."""
    clock = Clock()
    rotation = _rotation(A, B, clock=clock)
    delays = []
    for _ in range(6):
        rotation.connected()
        clock.now += 0.1
        delays.append(rotation.failed())
    assert delays[0::2] == [0.0] * 3  # A → B at once
    assert all(d >= 0.5 for d in delays[1::2]) and delays[5] > delays[1]  # B → A waits, growing


def test_one_broker_backs_off_per_attempt_as_before() -> None:
    clock = Clock()
    rotation = _rotation(A, clock=clock)
    first, second = rotation.failed(), rotation.failed()
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0 and rotation.current == A
    rotation.connected()
    clock.now += 60
    assert 0.5 <= rotation.failed() <= 1.0  # a connection that lasted starts the back-off anew


# -- the sender: a publish into a connection that just broke ---------------------------------------
@dataclass
class _Info:
    rc: int
    mid: int

    def is_published(self) -> bool:
        return False


class _Paho:
    """paho's role: while ``down``, publish() answers NO_CONN and keeps QoS 1 messages, as paho
    does, to send them after the next CONNACK."""

    def __init__(self) -> None:
        self.down = False
        self.held: list[int] = []
        self.sent: list[int] = []
        self._mid = 0
        self.lock = threading.Lock()

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> _Info:
        with self.lock:
            self._mid += 1
            (self.held if self.down else self.sent).append(self._mid)
            return _Info(MQTTErrorCode.MQTT_ERR_NO_CONN if self.down else 0, self._mid)


def test_a_message_paho_holds_for_the_next_broker_leaves_the_outbox_on_its_puback(
        tmp_path: Path) -> None:
    """The connection broke after the sender looked and after the disconnect hook had run (the
    order the link thread and the sender thread may take): publish() answers NO_CONN, paho keeps
    the message and sends it after the next CONNACK. Its PUBACK from the new broker must delete
    it from the outbox; before, it stayed "in flight", sent by no one, until the next disconnect."""
    outbox, paho = Outbox(tmp_path / "o.sqlite"), _Paho()
    sender = OutboxSender(outbox, paho.publish, lambda: True, window=10, replay_rate_per_s=10_000)
    sender.on_disconnected()  # the hook ran first: nothing was in flight yet
    paho.down = True
    outbox.put("t", b'{"replayed":false}', qos=1, retain=False, priority=Priority.EVENT,
               offline=False)
    sender.start()
    try:
        wait_until(lambda: paho.held, 5, "the publish paho held")
        assert outbox.in_flight == 1 and len(outbox) == 1
        paho.down = False  # connected to the next broker: paho sends what it held, the PUBACK comes
        for mid in paho.held:
            sender.on_published(mid)
        wait_until(lambda: len(outbox) == 0, 5, "the held message acknowledged")
        assert paho.sent == [] and sender.acked == 1
    finally:
        sender.stop()
