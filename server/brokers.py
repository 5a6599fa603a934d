"""The collector's broker connections: ``[mqtt] host:port`` and each broker of ``[mqtt] failover``,
subscribed at the same time (docs/deploy.md 6c). Agents publish to one broker at a time and move
to another when theirs fails (``cabinet_agent/failover.py``); the collector hears them wherever
they are, and its duplicate decision (``Integrity``, the event log) drops what arrives twice.

Messages from every connection go to the one pipeline, one at a time (a lock: the pipeline was
built for one MQTT thread). When a connection is down, the cabinets still at that broker are not
heard, and nothing tells a broker that is down for everyone (its agents move to another broker
within their keepalive) from the collector's own link to it being cut (its agents stay there and
talk on). So each cabinet is judged by the connection it was last heard through (``Earshot``): a
cabinet last heard through a connection that is down now is *out of earshot* — the alert engine
leaves it and its alerts as they are (``BrokerLinks.deaf``) until it is heard again, through any
connection — and the teams are told which cabinets wait (``server/notify/blind.py``). A cabinet
that moved is heard through the other connection and judged at once. With one broker this is
exactly that broker's connection: down, nothing is judged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final, NamedTuple, Protocol

from .clock import Clock
from .ingest import MessageHandler, MqttStats

__all__ = ["MAX_CABINETS", "BrokerLinks", "Earshot", "Link", "Unheard", "serialised"]

CabinetKey = tuple[str, str]  # (site, cabinet), as server.fleet keys them

# Bounds what the map of who was heard where can hold (as server/integrity.py bounds its own):
# a cabinet beyond it is judged as if there were one broker.
MAX_CABINETS: Final = 500_000


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


class Earshot:
    """Through which connection each cabinet was last heard: the connection's index per cabinet.

    A live message moves its cabinet to the connection it came through. A retained one (sent on
    subscribing, maybe a copy the old broker kept after the agent moved) only places a cabinet
    not placed yet: it says where the cabinet was, not where it is."""

    def __init__(self, max_cabinets: int = MAX_CABINETS) -> None:
        self._where: dict[CabinetKey, int] = {}
        self._max = max_cabinets

    def hearing(self, index: int, handler: MessageHandler) -> MessageHandler:
        """``handler``, noting for each message that its cabinet was heard through ``index``."""
        where, limit = self._where, self._max

        def handle(topic: str, payload: bytes, retained: bool) -> object:
            parts = topic.split("/")
            if len(parts) == 5:  # root/version/site/cabinet/channel; the pipeline judges the rest
                key = (parts[2], parts[3])
                if retained:
                    if key not in where and len(where) < limit:
                        where[key] = index
                elif key in where or len(where) < limit:
                    where[key] = index
            return handler(topic, payload, retained)

        return handle

    def where(self, key: CabinetKey) -> int | None:
        return self._where.get(key)

    def placed(self) -> list[tuple[CabinetKey, int]]:
        return list(self._where.items())


class Unheard(NamedTuple):
    """A connection that is down, and the cabinets last heard through it."""

    broker: str
    since: datetime  # down since
    cabinets: list[CabinetKey]


class BrokerLinks:
    def __init__(self, links: Sequence[Link], clock: Clock, earshot: Earshot | None = None) -> None:
        """``earshot``: where the links' handlers note each cabinet (``Earshot.hearing``); with
        several links and none, a link down makes every cabinet out of earshot."""
        if not links:
            raise ValueError("at least one broker")
        self.links = links
        self._clock = clock
        self._earshot = earshot

    def start(self) -> None:
        for link in self.links:
            link.start()

    def stop(self, timeout: float = 5.0) -> None:
        for link in self.links:
            link.stop(timeout)

    def receiving_since(self) -> datetime | None:
        """Since when the connections that deliver have delivered (the latest of them): no cabinet
        is silent for a time in which its connection was down. None while none delivers. The
        cabinets of a connection that is down are out of earshot (``deaf``), not silent."""
        since = [up for up in (link.receiving_since() for link in self.links) if up is not None]
        return max(since) if since else None

    def deaf(self) -> Callable[[CabinetKey], bool] | None:
        """Whether a cabinet is out of earshot now: last heard through a connection that is down,
        or, while one is down, never heard through any (it may be at that broker). None while
        every connection delivers (or there is one: down, nothing is judged at all)."""
        if len(self.links) == 1:
            return None
        down = {i for i, link in enumerate(self.links) if link.receiving_since() is None}
        if not down:
            return None
        earshot = self._earshot
        if earshot is None:
            return lambda key: True

        def deaf(key: CabinetKey) -> bool:
            index = earshot.where(key)
            return index is None or index in down

        return deaf

    def unheard(self) -> list[Unheard]:
        """Each connection that is down (with several), with the cabinets out of earshot by it."""
        if len(self.links) == 1:
            return []
        down = {i: link for i, link in enumerate(self.links) if link.receiving_since() is None}
        if not down:
            return []
        by_link: dict[int, list[CabinetKey]] = {i: [] for i in down}
        for key, index in (self._earshot.placed() if self._earshot is not None else []):
            if index in by_link:
                by_link[index].append(key)
        result = []
        for i, link in down.items():
            since = link.stats().silent_since
            result.append(Unheard(link.broker, since if since is not None else self._clock(),
                                  sorted(by_link[i])))
        return result

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
