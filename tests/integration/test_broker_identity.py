"""The shipped broker config binds a client's identity to its login and bounds what it accepts.

Against a real mosquitto with deploy/mosquitto/ladewache.conf (tests/support/secure_broker.py):
a cabinet that sends another client's id neither kicks that client off nor fires its Last Will;
the collector's session belongs to its user name; an oversized packet ends the connection; and
provisioning refuses ids that fold to an existing identity. Every "did not happen" is proven
against a positive control that arrives later on the same path (the broker delivers in order).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr

from cabinet_agent.common.protocol import MAX_PAYLOAD_BYTES
from server.config import MqttSettings
from server.ingest import MqttCollector
from server.provision import COLLECTOR_USER
from tests.support.procs import wait_until
from tests.support.secure_broker import SecureBroker, start_secure_broker

pytestmark = pytest.mark.integration

A = ("gs-id", "schrank-a")
B = ("gs-id", "schrank-b")
MAX_PACKET_SIZE = 66560  # deploy/mosquitto/ladewache.conf


def _topic(cab: tuple[str, str], channel: str) -> str:
    return f"ladewache/v1/{cab[0]}/{cab[1]}/{channel}"


def _agent_client_id(cab: tuple[str, str]) -> str:
    return f"ladewache-{cab[0]}-{cab[1]}"  # the agent's default (cabinet_agent/config.py)


class Peer:
    """One connection, never reconnected by paho: a client the broker drops stays dropped, and
    ``dropped`` is set. Records what it receives."""

    def __init__(self, broker: SecureBroker, client_id: str, login: tuple[str, str], *,
                 will: tuple[str, bytes] | None = None, clean_session: bool = True) -> None:
        user, password = login
        self.client = broker.client(client_id, user, password, clean_session=clean_session,
                                    reconnect_on_failure=False)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []
        self.dropped = threading.Event()
        self.subscribed = threading.Event()
        connack: queue.Queue[int] = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: connack.put(rc.value)
        self.client.on_disconnect = lambda *args: self.dropped.set()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.connect("127.0.0.1", broker.port, keepalive=30)
        self.client.loop_start()
        code = connack.get(timeout=10)
        if code != 0:
            self.client.loop_stop()
        assert code == 0, f"{client_id} ({user}) refused: {code}"

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def until(self, topic: str, payload: bytes, timeout: float = 10) -> list[tuple[str, bytes]]:
        """Wait for (topic, payload); everything received up to and including it."""
        while (topic, payload) not in self.seen:
            message = self.messages.get(timeout=timeout)
            self.seen.append((message.topic, bytes(message.payload)))
        return self.seen

    def close(self) -> None:
        if not self.dropped.is_set():
            self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecureBroker]:
    b = start_secure_broker(tmp_path / "broker", cabinets=[A, B])
    yield b
    b.stop()


def _login(broker: SecureBroker, cab: tuple[str, str]) -> tuple[str, str]:
    return f"{cab[0]}.{cab[1]}", broker.password(broker.cabinet_dir(*cab) / "agent.env")


def _collector_login(broker: SecureBroker) -> tuple[str, str]:
    return COLLECTOR_USER, broker.password(broker.workdir / "provision" / "server.env")


def test_a_cabinet_sending_another_cabinets_id_kicks_no_one_and_fires_no_will(
        broker: SecureBroker) -> None:
    status = _topic(A, "status")
    watcher = Peer(broker, "watcher", _collector_login(broker))
    a = Peer(broker, _agent_client_id(A), _login(broker, A), will=(status, b"offline-will"))
    peers = [watcher, a]
    try:
        watcher.subscribe(_topic(A, "#"))
        # B with A's configured client id, then with A's user name (the id the broker gives A).
        for number, stolen_id in enumerate((_agent_client_id(A), _login(broker, A)[0])):
            impostor = Peer(broker, stolen_id, _login(broker, B))
            peers.append(impostor)
            a.publish(status, b"control-%d" % number)
            seen = watcher.until(status, b"control-%d" % number)
            assert (status, b"offline-will") not in seen, f"B as {stolen_id!r} fired A's will"
            assert not a.dropped.is_set() and not impostor.dropped.is_set()
            impostor.close()
        assert [payload for _, payload in watcher.seen] == [b"control-0", b"control-1"]
        # Positive control: A's own login a second time takes A's session over (as an agent
        # reconnecting over a dead connection does): A is dropped and its will reaches the watcher.
        again = Peer(broker, "any-id", _login(broker, A))
        peers.append(again)
        assert watcher.until(status, b"offline-will")[-1] == (status, b"offline-will")
        assert a.dropped.wait(5), "A's own second login did not replace A"
    finally:
        for peer in reversed(peers):
            peer.close()


def _collector(broker: SecureBroker, client_id: str,
               received: queue.Queue[tuple[str, bytes]]) -> MqttCollector:
    user, password = _collector_login(broker)
    settings = MqttSettings(host="127.0.0.1", port=broker.port, username=user,
                            password=SecretStr(password), client_id=client_id, tls=True)
    collector = MqttCollector(settings,
                              lambda topic, payload, retained: received.put((topic, payload)),
                              ca_file=broker.ca_file)
    collector.start()
    wait_until(collector.receiving_since, 10, "the collector's subscription")
    return collector


def _events(cab: tuple[str, str], tag: str, count: int) -> list[tuple[str, bytes]]:
    return [(_topic(cab, "event"), json.dumps({"test": tag, "n": n}).encode()) for n in range(count)]


def _receive(received: queue.Queue[tuple[str, bytes]], expected: list[tuple[str, bytes]]) -> None:
    got = [received.get(timeout=10) for _ in expected]
    assert got == expected


def test_a_cabinet_sending_the_collectors_id_neither_kicks_it_nor_takes_its_messages(
        broker: SecureBroker) -> None:
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    collector = _collector(broker, COLLECTOR_USER, received)
    impostor: Peer | None = None
    try:
        # A with the collector's client id, which is also its user name.
        impostor = Peer(broker, COLLECTOR_USER, _login(broker, A))
        expected = _events(A, "meanwhile", 5)
        for topic, payload in expected:
            impostor.publish(topic, payload)  # PUBACKed: the broker has taken them over
        _receive(received, expected)
        stats = collector.stats()
        assert (stats.connects, stats.connection_losses) == (1, 0), stats
        assert not impostor.dropped.is_set()
    finally:
        if impostor is not None:
            impostor.close()
        collector.stop()


def test_the_collectors_session_is_its_user_name_and_survives_a_restart(
        broker: SecureBroker) -> None:
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    collector = _collector(broker, COLLECTOR_USER, received)
    collector.stop()  # a clean DISCONNECT: the persistent session stays on the broker
    a = Peer(broker, _agent_client_id(A), _login(broker, A))
    try:
        expected = _events(A, "while-away", 3)
        for topic, payload in expected:
            a.publish(topic, payload)
        # Restarted with another [mqtt] client_id: the broker keys the session by the user name.
        collector = _collector(broker, "renamed-collector", received)
        _receive(received, expected)
        live = _events(A, "live", 1)
        a.publish(*live[0])
        _receive(received, live)
    finally:
        a.close()
        collector.stop()


def test_an_oversized_packet_ends_the_connection_and_is_not_delivered(
        broker: SecureBroker) -> None:
    telemetry = _topic(A, "telemetry")
    largest = b"l" * MAX_PAYLOAD_BYTES  # the protocol's limit fits, with its topic and headers
    oversized = b"o" * MAX_PACKET_SIZE
    watcher = Peer(broker, "watcher", _collector_login(broker))
    a = Peer(broker, _agent_client_id(A), _login(broker, A))
    peers = [watcher, a]
    try:
        watcher.subscribe(_topic(A, "#"))
        a.publish(telemetry, largest)
        assert watcher.until(telemetry, largest)[-1] == (telemetry, largest)
        a.client.publish(telemetry, oversized, qos=1)
        assert a.dropped.wait(10), "the broker kept a connection that sent an oversized packet"
        again = Peer(broker, _agent_client_id(A), _login(broker, A))
        peers.append(again)
        again.publish(telemetry, b"control")
        assert watcher.until(telemetry, b"control") == [(telemetry, largest), (telemetry, b"control")]
    finally:
        for peer in reversed(peers):
            peer.close()


def _add(broker: SecureBroker, site: str, cabinet: str) -> int:
    return broker.provision(
        "add", "--site", site, "--cabinet", cabinet, "--model", "ladewache-8",
        "--asset-tag", "1=ID-0001", "--broker-host", "127.0.0.1", "--broker-port", str(broker.port),
        "--ca-file", str(broker.ca_file), "--hasher", "builtin")


def _broker_files(broker: SecureBroker) -> dict[str, bytes]:
    files = [broker.workdir / "passwd", broker.workdir / "acl",
             broker.workdir / "provision" / "cabinets.json"]
    return {f.name: f.read_bytes() for f in files}


def _try_login(broker: SecureBroker, user: str, password: str) -> bool:
    try:
        Peer(broker, "probe", (user, password)).close()
    except AssertionError:
        return False
    return True


def test_provisioning_refuses_ids_that_fold_to_an_existing_identity(
        broker: SecureBroker, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(broker, "gs-id", "schrank_1") == 0
    capsys.readouterr()
    before = _broker_files(broker)
    attempts = {("gs-id", "schrank-1"): "gs-id/schrank_1",  # "-" vs "_"
                ("gs-id", "Schrank_1"): "gs-id/schrank_1",  # case
                ("gs_id", "SCHRANK-1"): "gs-id/schrank_1",  # both, in the site too
                ("gs", "id-schrank_1"): "gs-id/schrank_1"}  # the same Home Assistant node
    for (site, cabinet), existing in attempts.items():
        assert _add(broker, site, cabinet) == 2, f"{site}/{cabinet} was provisioned"
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert f"{site}/{cabinet}" in err and existing in err, err
        assert not broker.cabinet_dir(site, cabinet).exists()
    # A collector user that folds to a cabinet's user is refused as well.
    assert broker.provision("server", "--user", "GS-ID.schrank-1", "--hasher", "builtin") == 2
    err = capsys.readouterr().err
    assert "GS-ID.schrank-1" in err and "gs-id/schrank_1" in err and err.count("\n") == 1, err
    assert _broker_files(broker) == before, "a refused provisioning wrote a broker file"
    broker.reload()  # the files are unchanged: the refused names have no login
    password = broker.password(broker.cabinet_dir("gs-id", "schrank_1") / "agent.env")
    wait_until(lambda: _try_login(broker, "gs-id.schrank_1", password), 10, "the provisioned login")
    assert not _try_login(broker, "gs-id.schrank-1", password)
