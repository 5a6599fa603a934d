"""The agent's MQTT connection: a visible reconnect loop with failover and back-off, Last Will,
clean stop.

paho-mqtt runs in this module's own thread with an explicit ``connect → loop → next broker /
back off`` cycle (modbus2mqtt #191: agents that never reconnect until reboot). Which broker comes
next and how long to wait is ``failover.BrokerRotation``'s decision. The Last Will is
re-registered before every connect, with whichever broker, so its timestamp and sequence number
are current. Messages paho holds unacknowledged when a connection breaks are sent again by paho
after the next CONNACK, to whichever broker that is, and the outbox sender sends its in-flight
ones again too (``on_disconnected``): the collectors store by (cabinet, boot_id, seq).
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .common.backoff import Backoff
from .common.broker_address import BrokerAddress
from .config import MqttSection
from .failover import BrokerRotation

__all__ = ["MqttLink"]

log = logging.getLogger(__name__)

# Bound paho's own queue of QoS 1 messages while the broker is away (paho loses messages
# silently past 65,535 queued: ../shared/reference/ceilings.md).
MAX_QUEUED = 10_000


class MqttLink:
    def __init__(
        self,
        settings: MqttSection,
        client_id: str,
        *,
        will_topic: str,
        make_will: Callable[[], bytes],
        on_connected: Callable[[], None],
        ca_file: Path | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        on_published: Callable[[int], None] | None = None,
        on_disconnected: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._will_topic = will_topic
        self._make_will = make_will
        self._on_connected_cb = on_connected
        # The outbox sender: PUBACK (QoS 1; written, for QoS 0) per message id; connection gone.
        self._on_published_cb = on_published
        self._on_disconnected_cb = on_disconnected
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True,
            reconnect_on_failure=False,
        )
        self._client.max_queued_messages_set(MAX_QUEUED)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            self._client.username_pw_set(settings.username, password)
        if settings.tls:
            self._client.tls_set(ca_certs=str(ca_file) if ca_file else None,
                                 certfile=str(cert_file) if cert_file else None,
                                 keyfile=str(key_file) if key_file else None,
                                 cert_reqs=ssl.CERT_REQUIRED)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._rotation = BrokerRotation(
            settings.brokers, Backoff(settings.reconnect_min_s, settings.reconnect_max_s),
            settle_s=settings.reconnect_min_s)
        self._stopping = threading.Event()
        self._session_up = threading.Event()
        self._refused = False
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self.connects = 0
        self.dropped = 0

    # -- callbacks (run in the link thread) ---------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object,
                    reason_code: mqtt.ReasonCode, properties: object) -> None:
        if reason_code.is_failure:
            log.error("MQTT: broker refused the connection: %s", reason_code)
            self._refused = True
            return
        self.connects += 1
        self._rotation.connected()
        self._session_up.set()
        log.info("MQTT: connected to %s%s", self._rotation.current, self._which())
        try:
            self._on_connected_cb()
        except Exception:  # a bug in the birth code must not kill the connection thread
            log.exception("MQTT: publishing the birth messages failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason_code: mqtt.ReasonCode, properties: object) -> None:
        self._session_up.clear()
        if not self._stopping.is_set():
            log.warning("MQTT: connection lost (%s)", reason_code)
        self._disconnected()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int,
                    reason_code: mqtt.ReasonCode, properties: object) -> None:
        if self._on_published_cb is not None:
            self._on_published_cb(mid)

    def _disconnected(self) -> None:
        if self._on_disconnected_cb is not None:
            try:
                self._on_disconnected_cb()
            except Exception:  # must not kill the connection thread
                log.exception("MQTT: disconnect hook failed")

    # -- the visible reconnect loop ----------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            broker = self._rotation.current
            self._refused = False
            self._client.will_set(self._will_topic, self._make_will(), qos=1, retain=True)
            try:
                self._client.connect(broker.host, broker.port, keepalive=self._settings.keepalive_s)
            except (OSError, ssl.SSLError) as exc:
                self._next_broker(f"broker {broker} unreachable ({exc})")
                continue
            while not self._stopping.is_set() and not self._refused:
                if self._client.loop(timeout=0.2) != mqtt.MQTT_ERR_SUCCESS:
                    break
            if not self._stopping.is_set():
                self._session_up.clear()
                self._disconnected()
                self._next_broker(f"broker {broker} refused" if self._refused
                                  else f"disconnected from {broker}")
        log.debug("MQTT: link thread ends")

    def _which(self) -> str:
        position = self._rotation.position
        return f" (failover broker {position})" if position else ""

    def _next_broker(self, why: str) -> None:
        delay = self._rotation.failed()
        nxt = self._rotation.current
        if delay > 0:
            log.warning("MQTT: %s; next attempt (%s) in %.1f s", why, nxt, delay)
            self._stopping.wait(delay)
        else:
            log.warning("MQTT: %s; trying %s%s now", why, nxt, self._which())

    # -- used by the agent ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._session_up.is_set()

    @property
    def broker(self) -> BrokerAddress:
        """The broker connected to, or being tried now (``connected`` says which)."""
        return self._rotation.current

    def wait_connected(self, timeout: float) -> bool:
        return self._session_up.wait(timeout)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        """Hand one message to paho; ``rc`` says whether it took it, ``mid`` names it in on_published."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
        return info

    def stop(self, topic: str, payload: bytes, timeout: float = 5.0) -> None:
        """Publish the final retained status, disconnect cleanly (no Last Will), end the thread."""
        if self.connected:
            info = self._client.publish(topic, payload, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.warning("MQTT: final status not confirmed: %s", exc)
        self._stopping.set()
        self._client.disconnect()
        if self._thread.is_alive():
            self._thread.join(timeout)
