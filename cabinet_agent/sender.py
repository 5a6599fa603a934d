"""Drains the outbox into the MQTT link: a window of unacknowledged messages, paced replay.

At most ``window`` messages are handed to paho and not yet acknowledged (PUBACK for QoS 1, written
to the socket for QoS 0): paho loses QoS 1 messages past 65,535 queued and scans its queue on every
PUBACK (../shared/reference/ceilings.md). A message leaves the outbox only on that acknowledgement;
when the connection breaks, whatever was in flight is sent again after the reconnect — the server
stores by (cabinet, boot_id, seq), so a repeat is harmless.

A message created while the broker was away, found in the outbox from an earlier run, or sent a
second time carries ``replayed: true``; the backlog is sent in order at ``replay_rate_per_s`` so that
the poll loop keeps its CPU on a Raspberry Pi.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol

from paho.mqtt.enums import MQTTErrorCode

from .outbox import Outbox, OutboxItem

__all__ = ["OutboxSender", "mark_replayed"]

log = logging.getLogger(__name__)

_NOT_REPLAYED: Final = b'"replayed":false'
_REPLAYED: Final = b'"replayed":true'
# An acknowledgement may overtake publish() returning its message id; kept this long.
_EARLY_ACK_TTL_S: Final = 10.0
_MAX_BATCH: Final = 20
# publish() while disconnected: paho holds a QoS > 0 message and sends it after the next CONNACK.
_HELD: Final = MQTTErrorCode.MQTT_ERR_NO_CONN


class PublishResult(Protocol):
    """What paho's ``MQTTMessageInfo`` tells about one publish."""

    @property
    def rc(self) -> int: ...

    @property
    def mid(self) -> int: ...

    def is_published(self) -> bool: ...


Publish = Callable[[str, bytes, int, bool], "PublishResult | None"]


def mark_replayed(payload: bytes) -> bytes:
    """Set the envelope's ``replayed`` flag. The byte pattern cannot occur inside a JSON string
    (a quote there is escaped), so replacing the first one is exact."""
    return payload.replace(_NOT_REPLAYED, _REPLAYED, 1)


class OutboxSender:
    def __init__(self, outbox: Outbox, publish: Publish, connected: Callable[[], bool], *,
                 window: int = 100, replay_rate_per_s: float = 200.0, sync_interval_s: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._outbox = outbox
        self._publish = publish
        self._connected = connected
        self._window = window
        self._replay_gap = 1.0 / replay_rate_per_s
        self._sync_interval = sync_interval_s
        self._monotonic = monotonic
        self._first_live_id = outbox.last_id()  # anything up to here was left by an earlier run
        self._cond = threading.Condition()
        self._mids: dict[int, int] = {}  # paho message id -> outbox id
        self._early: dict[int, float] = {}  # acknowledged before we knew the mid
        self._generation = 0  # +1 per lost connection: a batch of an older one is not mapped
        self._stop = threading.Event()
        self._next_replay = 0.0
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self.sent = 0
        self.replayed = 0
        self.acked = 0

    # -- hooks (any thread) --------------------------------------------------------------------
    def notify(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def on_published(self, mid: int) -> None:
        with self._cond:
            item_id = self._mids.pop(mid, None)
            if item_id is None:
                self._early[mid] = self._monotonic()
                return
            self._ack(item_id)

    def on_disconnected(self) -> None:
        with self._cond:
            self._generation += 1
            self._mids.clear()
            self._early.clear()
            released = self._outbox.release_in_flight()
            self._cond.notify_all()
        if released:
            log.info("outbox: %d messages in flight are sent again after the reconnect", released)

    def _ack(self, item_id: int) -> None:
        self._outbox.ack(item_id)
        self.acked += 1
        self._cond.notify_all()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._outbox.sync()

    def drained(self) -> bool:
        return len(self._outbox) == 0

    # -- the sending thread ------------------------------------------------------------------------
    def _room(self) -> int:
        if not self._connected():
            return 0
        return min(self._window - self._outbox.in_flight, len(self._outbox) - self._outbox.in_flight)

    def _run(self) -> None:
        next_sync = self._monotonic() + self._sync_interval
        while not self._stop.is_set():
            try:
                with self._cond:
                    self._cond.wait_for(lambda: self._stop.is_set() or self._room() > 0,
                                        timeout=max(0.0, min(1.0, next_sync - self._monotonic())))
                if self._monotonic() >= next_sync:
                    self._outbox.sync()
                    next_sync = self._monotonic() + self._sync_interval
                room = self._room()
                if room > 0 and not self._stop.is_set():
                    with self._cond:
                        generation = self._generation
                    self._send(self._outbox.next_batch(min(room, _MAX_BATCH)), generation)
            except Exception:  # top of the thread: a bug must not stop delivery for good
                log.exception("outbox sender failed; going on")
                self._stop.wait(1.0)

    def _is_replay(self, item: OutboxItem) -> bool:
        return item.queued_offline or item.attempts > 0 or item.id <= self._first_live_id

    def _pace(self) -> None:
        now = self._monotonic()
        if now < self._next_replay:
            self._stop.wait(self._next_replay - now)
        self._next_replay = max(now, self._next_replay) + self._replay_gap

    def _send(self, items: list[OutboxItem], generation: int) -> None:
        for item in items:
            payload = item.payload
            if self._is_replay(item):
                self._pace()
                payload = mark_replayed(payload)
                self.replayed += 1
            result = self._publish(item.topic, payload, item.qos, item.retain)
            # Held: the connection broke after _room() looked, perhaps after the disconnect hook
            # ran. paho keeps a QoS 1 message and sends it after the next CONNACK, to whichever
            # broker that is; mapped like any other, its PUBACK there deletes it from the outbox
            # (left unmapped, it stayed "in flight", never sent again, until the next disconnect).
            held = result is not None and result.rc == _HELD and item.qos > 0
            if result is None or (result.rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not held):
                continue  # the connection is going; the disconnect hook releases it
            self.sent += 1
            with self._cond:
                if generation != self._generation:
                    continue  # released already; sent again after the reconnect
                early = self._early.pop(result.mid, None)
                if result.is_published() or (early is not None
                                             and self._monotonic() - early < _EARLY_ACK_TTL_S):
                    self._ack(item.id)
                else:
                    self._mids[result.mid] = item.id
                cutoff = self._monotonic() - _EARLY_ACK_TTL_S
                for mid in [m for m, at in self._early.items() if at < cutoff]:
                    del self._early[mid]
