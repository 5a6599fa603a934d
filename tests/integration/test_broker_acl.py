"""The shipped Mosquitto config with provisioned users: TLS only, no anonymous, per-cabinet ACL.

Every "never arrives" is proven against a positive control: the same subscriber waits for a
later message it may see; the broker delivers one connection's messages in order, so a leaked
message would have arrived first.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.procs import wait_until
from tests.support.secure_broker import SecureBroker, start_secure_broker

pytestmark = pytest.mark.integration

A = ("gs-acl", "schrank-a")
B = ("gs-acl", "schrank-b")
C = ("rs-other", "schrank-a")  # another school, same cabinet id


def _prefix(cab: tuple[str, str]) -> str:
    return f"ladewache/v1/{cab[0]}/{cab[1]}"


class Session:
    """A connected client that records what it receives."""

    def __init__(self, broker: SecureBroker, client_id: str, user: str, password: str) -> None:
        self.client = broker.client(client_id, user, password)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        code = _connect(self.client, broker.port)
        assert code == 0, f"{user} refused: {code}"

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5), "no SUBACK"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def until(self, topic: str, payload: bytes, timeout: float = 5) -> list[tuple[str, bytes]]:
        """Wait for (topic, payload); return everything received up to and including it."""
        while (topic, payload) not in self.seen:
            message = self.messages.get(timeout=timeout)
            self.seen.append((message.topic, message.payload))
        return self.seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _connect(client: mqtt.Client, port: int) -> int | str:
    """0 when the broker accepts (the loop keeps running), else its reason code or the failure."""
    result: queue.Queue[int | str] = queue.Queue()
    client.on_connect = lambda c, u, f, rc, p: result.put(rc.value)
    client.on_disconnect = lambda c, u, f, rc, p: result.put(f"disconnected: {rc}")
    try:
        client.connect("127.0.0.1", port, keepalive=10)
    except OSError as exc:  # includes ssl.SSLError
        return f"connect failed: {exc}"
    client.loop_start()
    outcome = result.get(timeout=10)
    if outcome != 0:
        client.loop_stop()
    return outcome


def _try(client: mqtt.Client, port: int) -> int | str:
    """Connect, note the outcome, and leave."""
    outcome = _connect(client, port)
    if outcome == 0:
        client.disconnect()
        client.loop_stop()
    return outcome


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecureBroker]:
    b = start_secure_broker(tmp_path / "broker", cabinets=[A, B, C])
    yield b
    b.stop()


def _login(broker: SecureBroker, cab: tuple[str, str]) -> tuple[str, str]:
    return f"{cab[0]}.{cab[1]}", broker.password(broker.cabinet_dir(*cab) / "agent.env")


def _server(broker: SecureBroker) -> Session:
    password = broker.password(broker.workdir / "provision" / "server.env")
    return Session(broker, "test-server", "ladewache-server", password)


def test_anonymous_wrong_password_and_plaintext_are_refused(broker: SecureBroker) -> None:
    user, password = _login(broker, A)
    refused = {
        "anonymous": _try(broker.client("anon", None, None), broker.port),
        "wrong password": _try(broker.client("wrong", user, password + "x"), broker.port),
        "unknown user": _try(broker.client("who", "gs-acl.nobody", password), broker.port),
        "other cabinet's password": _try(
            broker.client("mix", user, _login(broker, B)[1]), broker.port),
        "plain MQTT": _try(broker.client("plain", user, password, tls=False), broker.port),
    }
    assert _try(broker.client("right", user, password), broker.port) == 0  # positive control
    for what, outcome in refused.items():
        assert outcome != 0, f"{what} was accepted"
    # MQTT 3.1.1 CONNACK 5 "not authorised" for a wrong login (paho maps it to 135).
    assert refused["anonymous"] in (5, 135), refused
    assert refused["wrong password"] in (5, 135), refused


def test_a_cabinet_cannot_publish_into_another_cabinets_topics(broker: SecureBroker) -> None:
    server = _server(broker)
    a = Session(broker, "cab-a", *_login(broker, A))
    try:
        server.subscribe("ladewache/v1/#")
        forged = [f"{_prefix(B)}/status", f"{_prefix(B)}/state", f"{_prefix(C)}/event",
                  "ladewache/v1/gs-acl/schrank-a-evil/state", "ladewache/v1/gs-acl", "other/topic"]
        for topic in forged:
            a.publish(topic, b"forged")
        a.publish(f"{_prefix(B)}/status", b"forged-retained", retain=True)
        a.publish(f"{_prefix(A)}/state", b"control")
        seen = server.until(f"{_prefix(A)}/state", b"control")
        assert seen == [(f"{_prefix(A)}/state", b"control")]
    finally:
        a.close()
        server.close()


def test_a_cabinet_cannot_read_another_cabinets_topics_and_the_server_reads_all(
        broker: SecureBroker) -> None:
    b = Session(broker, "cab-b", *_login(broker, B))
    c = Session(broker, "cab-c", *_login(broker, C))
    b.publish(f"{_prefix(B)}/status", b"b-retained", retain=True)
    a = Session(broker, "cab-a", *_login(broker, A))
    server = _server(broker)
    try:
        for topic in ("#", "ladewache/v1/#", f"{_prefix(B)}/#", "$SYS/#"):
            a.subscribe(topic)
        server.subscribe("ladewache/v1/#")
        b.publish(f"{_prefix(B)}/telemetry", b"b-live")
        c.publish(f"{_prefix(C)}/telemetry", b"c-live")
        server.publish(f"{_prefix(A)}/state", b"server-may-not-write")
        a.publish(f"{_prefix(A)}/state", b"control")
        seen = a.until(f"{_prefix(A)}/state", b"control")
        assert seen == [(f"{_prefix(A)}/state", b"control")], seen
        # The collector sees every cabinet's messages, the retained one included.
        server_seen = server.until(f"{_prefix(A)}/state", b"control")
        assert (f"{_prefix(B)}/status", b"b-retained") in server_seen
        assert (f"{_prefix(B)}/telemetry", b"b-live") in server_seen
        assert (f"{_prefix(C)}/telemetry", b"c-live") in server_seen
        assert (f"{_prefix(A)}/state", b"server-may-not-write") not in server_seen
    finally:
        for session in (a, b, c, server):
            session.close()


def test_rotation_replaces_the_password_after_a_reload(broker: SecureBroker) -> None:
    user, old = _login(broker, A)
    assert broker.provision("rotate", "--site", A[0], "--cabinet", A[1]) == 0
    _, new = _login(broker, A)
    assert new != old
    broker.reload()
    wait_until(lambda: _try(broker.client("rot-new", user, new), broker.port) == 0, 10,
               "the rotated password accepted after SIGHUP")
    assert _try(broker.client("rot-old", user, old), broker.port) != 0
    # Removal revokes the cabinet.
    assert broker.provision("remove", "--site", A[0], "--cabinet", A[1]) == 0
    broker.reload()
    wait_until(lambda: _try(broker.client("rm", user, new), broker.port) != 0, 10,
               "the removed cabinet refused after SIGHUP")
