"""The collector's broker connections: ``[mqtt] host:port`` and each broker of ``[mqtt] failover``,
subscribed at the same time (docs/deploy.md 6c). Agents publish to one broker at a time and move
to another when theirs fails (``cabinet_agent/failover.py``); the collector hears them wherever
they are, and its duplicate decision (``Integrity``, the event log) drops what arrives twice.

Messages from every connection go to the one pipeline, one at a time (a lock: the pipeline was
built for one MQTT thread). When a connection is down, the cabinets still at that broker are not
heard: the alert engine must not call them silent. So the collector counts as receiving only
while every connection is up — until one has been down for ``failover_grace_s``, long enough for
the agents at that broker to move (their keepalive and a connect); then it judges by what the
others receive, silence counted from the end of the grace at the earliest. With one broker this is
exactly that broker's connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from .clock import Clock
from .ingest import MessageHandler, MqttStats

__all__ = ["BrokerLinks", "Link", "serialised"]


class Link(Protocol):
    """What ``BrokerLinks`` needs of one connection (``server.ingest.MqttCollector``)."""

    @property
    def broker(self) -> str: ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...

    def receiving_since(self) -> datetime | None: ...

    def stats(self) -> MqttStats: ...


def serialised(handler: MessageHandler, settle: Callable[[], object]
               ) -> tuple[MessageHandler, Callable[[], object]]:
    """``handler`` and ``settle`` behind one lock, for several MQTT threads."""
    lock = threading.Lock()

    def handle(topic: str, payload: bytes, retained: bool) -> object:
        with lock:
            return handler(topic, payload, retained)

    def settled() -> object:
        with lock:
            return settle()

    return handle, settled


class BrokerLinks:
    def __init__(self, links: Sequence[Link], clock: Clock, grace: timedelta) -> None:
        if not links:
            raise ValueError("at least one broker")
        self.links = links
        self._clock = clock
        self._grace = grace

    def start(self) -> None:
        for link in self.links:
            link.start()

    def stop(self, timeout: float = 5.0) -> None:
        for link in self.links:
            link.stop(timeout)

    def receiving_since(self) -> datetime | None:
        """Since when the collector hears every cabinet it can; None while it may miss some."""
        if len(self.links) == 1:
            return self.links[0].receiving_since()
        now, since, heard = self._clock(), [], False
        for link in self.links:
            up = link.receiving_since()
            if up is not None:
                since.append(up)
                heard = True
                continue
            down = link.stats().silent_since
            if down is None or now - down < self._grace:
                return None  # its agents may not have moved yet
            since.append(down + self._grace)
        return max(since) if heard else None

    def missing_since(self) -> datetime | None:
        """Since when at least one connection receives nothing (None: every one receives): a
        collector that may miss the cabinets at some broker (``server/leader.py`` hands the lead
        to one that hears them all)."""
        silent = [s for s in (link.stats().silent_since for link in self.links) if s is not None]
        return min(silent) if silent else None

    def stats(self) -> MqttStats:
        """All connections together: connected when every one is."""
        each = [link.stats() for link in self.links]
        if len(each) == 1:
            return each[0]
        errors = [f"{link.broker}: {s.last_error}" for link, s in zip(self.links, each, strict=True)
                  if s.last_error]
        silent = [s.silent_since for s in each]
        return MqttStats(all(s.connected for s in each), sum(s.connects for s in each),
                         sum(s.connection_losses for s in each), "; ".join(errors) or None,
                         # silent while no broker delivers: since the last one was lost
                         None if None in silent else max(s for s in silent if s is not None))
