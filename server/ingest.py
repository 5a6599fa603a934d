"""The MQTT side of the collector: one paho client, a visible reconnect loop, messages to a handler.

The client is driven from one thread of our own (connect → ``loop()`` until the connection ends →
wait with back-off → connect again) instead of paho's hidden ``loop_start`` machinery, so every
attempt and every wait is logged and ``stop()`` ends it cleanly. Messages are handled directly in
this network thread.

A QoS 1 message is acknowledged only once what it carries is durable, and durability is bought
per group: the handler takes each message (``Pipeline.handle``), and when the socket has nothing
more to read, or ``ACK_GROUP`` messages wait, ``settle`` makes everything handled so far durable
(one journal append, ``Pipeline.settle``) and then the group's PUBACKs leave, in the order the
messages came (paho's ``manual_ack``). A collector killed before that is sent the group again by
the broker (its persistent session); the duplicates are recognised (``Integrity``, the event
ledger) or overwrite themselves in the TSDB.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cabinet_agent.common.backoff import Backoff
from cabinet_agent.common.protocol import subscription

from .clock import Clock, utcnow
from .config import MqttSettings

__all__ = ["ACK_GROUP", "MessageHandler", "MqttCollector", "MqttStats", "new_client"]

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], object]
"""Called with (topic, payload, retained) for every message; must not raise (it is guarded
anyway). ``retained``: delivered from the broker's store because we subscribed, not as it was
published."""

# QoS 1 messages acknowledged together at most. Below the broker's in-flight window towards the
# collector (Mosquitto's max_inflight_messages, 20 by default and in deploy/mosquitto), which
# stops sending until acknowledgements come: a group never waits for messages that cannot come.
ACK_GROUP = 16

# select() timeout of one loop turn: bounds how long stop() waits when nothing arrives.
_LOOP_TIMEOUT_S = 0.25


@dataclass(frozen=True, slots=True)
class MqttStats:
    connected: bool
    connects: int
    connection_losses: int
    last_error: str | None
    # since when nothing is received (no subscription granted, since the start or a loss);
    # None while receiving
    silent_since: datetime | None = None


def new_client(settings: MqttSettings, ca_file: Path | None = None,
               cert_file: Path | None = None, key_file: Path | None = None) -> mqtt.Client:
    """A paho client as the collector connects: its client id, login and TLS files, MQTT 5."""
    s = settings
    # A fixed client id with a persistent session: the broker keeps our subscription and queues
    # QoS 1 messages while the collector restarts, so a restart loses nothing. MQTT 5, so that
    # the session ends by itself once the collector is away for good (session_expiry_s; MQTT
    # 3.1.1 sessions never end).
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id,
                         protocol=MQTTProtocolVersion.MQTTv5, reconnect_on_failure=False,
                         manual_ack=True)
    if s.username is not None:
        password = s.password.get_secret_value() if s.password is not None else None
        client.username_pw_set(s.username, password)
    if s.tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file is not None else None,
                       certfile=str(cert_file) if cert_file is not None else None,
                       keyfile=str(key_file) if key_file is not None else None)
    return client


class MqttCollector:
    def __init__(self, settings: MqttSettings, handler: MessageHandler,
                 ca_file: Path | None = None, clock: Clock = utcnow,
                 cert_file: Path | None = None, key_file: Path | None = None,
                 settle: Callable[[], object] = lambda: None) -> None:
        """``settle``: makes everything ``handler`` took so far durable; called before the QoS 1
        messages among them are acknowledged."""
        self._settings = settings
        self._handler = handler
        self._settle = settle
        self._unacked: list[int] = []  # mids of QoS 1 messages handled, not yet acknowledged
        self._clock = clock
        self._receiving_since: datetime | None = None
        self._down_since: datetime | None = clock()  # not receiving since (None: receiving)
        self._failed_attempts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connected = False
        self._connects = 0
        self._losses = 0
        self._last_error: str | None = None
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self._client = self._make_client(ca_file, cert_file, key_file)
        self._connect_properties = Properties(PacketTypes.CONNECT)
        self._connect_properties.SessionExpiryInterval = settings.session_expiry_s
        self._thread = threading.Thread(target=self._run, name="mqtt-collector", daemon=True)

    def _make_client(self, ca_file: Path | None, cert_file: Path | None = None,
                     key_file: Path | None = None) -> mqtt.Client:
        client = new_client(self._settings, ca_file, cert_file, key_file)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly (the persistent session stays on the broker) and end the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def receiving_since(self) -> datetime | None:
        """When the current subscription was granted; None while not connected."""
        with self._lock:
            return self._receiving_since

    @property
    def broker(self) -> str:
        return f"{self._settings.host}:{self._settings.port}"

    def stats(self) -> MqttStats:
        with self._lock:
            return MqttStats(self._connected, self._connects, self._losses, self._last_error,
                             self._down_since)

    # -- the reconnect loop (collector thread) -------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._session()
                except Exception:  # top of the thread: a bug must not end ingestion for good
                    log.exception("MQTT collector loop failed; starting over")
                    self._set_connected(False)
                    self._wait_before_retry("MQTT collector loop failed")
        finally:
            self._disconnect()

    def _session(self) -> None:
        """One connection: connect, run paho's loop until it ends, wait before the next."""
        s = self._settings
        # Every attempt at INFO until the first failure; then the warnings say enough.
        log.log(logging.DEBUG if self._failed_attempts else logging.INFO,
                "connecting to MQTT broker %s:%d as %r", s.host, s.port, s.client_id)
        try:
            self._client.connect(s.host, s.port, keepalive=s.keepalive, clean_start=False,
                                 properties=self._connect_properties)
        except (OSError, ValueError) as exc:  # refused, unreachable, DNS, TLS
            self._set_error(f"cannot connect: {exc}")
            self._wait_before_retry(f"MQTT broker {s.host}:{s.port} unreachable ({exc})")
            return
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not self._stop.is_set():
            rc = self._client.loop(timeout=_LOOP_TIMEOUT_S)
            if self._unacked and (len(self._unacked) >= ACK_GROUP or not self._readable()):
                self._acknowledge()
        if self._stop.is_set() and self._unacked and self._client.is_connected():
            self._acknowledge()  # a clean stop: what was handled is not sent again
        self._unacked.clear()  # the connection is gone: the broker sends them again
        if not self._stop.is_set():
            self._set_connected(False)
            self._wait_before_retry(f"MQTT connection ended ({mqtt.error_string(rc)})")

    def _readable(self) -> bool:
        """More is waiting to be read right now (in the socket, or decrypted in TLS's buffer)."""
        sock = self._client.socket()
        if sock is None:
            return False
        pending = getattr(sock, "pending", None)  # an SSL socket's decrypted bytes
        if pending is not None and pending() > 0:
            return True
        return bool(select.select([sock], [], [], 0)[0])

    def _acknowledge(self) -> None:
        """Make the group durable, then send its PUBACKs in the order the messages came."""
        self._settle()
        for mid in self._unacked:
            self._client.ack(mid, 1)
        self._unacked.clear()

    def _wait_before_retry(self, why: str) -> None:
        self._failed_attempts += 1
        delay = self._backoff.next_delay()
        log.warning("%s; reconnecting in %.1f s", why, delay)
        self._stop.wait(delay)

    def _disconnect(self) -> None:
        if self._client.is_connected():
            self._client.disconnect()
            # A few turns so that DISCONNECT leaves and the socket closes.
            for _ in range(8):
                if self._client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        self._set_connected(False)
        log.info("MQTT collector stopped")

    def _set_connected(self, value: bool) -> None:
        with self._lock:
            if value:
                self._down_since = None
            elif self._down_since is None:
                self._down_since = self._clock()
            self._connected = value
            self._receiving_since = self._clock() if value else None

    def _set_error(self, error: str) -> None:
        with self._lock:
            self._last_error = error

    # -- paho callbacks (collector thread) ------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._set_error(f"broker refused the connection: {reason_code}")
            log.error("MQTT broker refused the connection: %s", reason_code)
            return
        with self._lock:
            self._connects += 1
        self._backoff.reset()
        self._failed_attempts = 0
        # Subscribe on every connect: cheap, and right even if the broker lost our session.
        client.subscribe(subscription(), qos=1)
        log.info("connected to MQTT broker (session present: %s); subscribing to %s",
                 flags.session_present, subscription())

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: list[Any], properties: Any) -> None:
        # "connected" means receiving: only once the broker granted the subscription.
        if any(code.is_failure for code in reason_codes):
            self._set_error(f"broker refused the subscription: {reason_codes}")
            log.error("MQTT broker refused the subscription to %s: %s", subscription(),
                      reason_codes)
            return
        self._set_connected(True)
        log.info("subscribed to %s", subscription())

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: Any, properties: Any) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            self._receiving_since = None
            if self._down_since is None:
                self._down_since = self._clock()
            if was_connected and not self._stop.is_set():
                self._losses += 1
                self._last_error = f"connection lost: {reason_code}"
        if was_connected and not self._stop.is_set():
            log.warning("MQTT connection lost: %s", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "<topic is not UTF-8>"  # counted as unknown_topic by the handler
        try:
            self._handler(topic, message.payload, bool(message.retain))
        except Exception:  # an exception here would end paho's loop: log it and go on
            log.exception("message handler failed on %s", topic[:200])
        if message.qos > 0:  # acknowledged with its group, once durable (_acknowledge)
            self._unacked.append(message.mid)
