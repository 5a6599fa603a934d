"""One MQTT message in: decode, update fleet state, hand lines to the sink, count what happened.

Runs in paho's network thread (the fast path). A bad message is counted by reason, logged at a
limited rate and dropped; nothing a publisher sends can stop the collector.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from cabinet_agent.protocol import EventKind, EventMessage, ProtocolError, decode

from .clock import Clock, utcnow
from .fleet import Fleet
from .ratelimit import RateLimitedLogger
from .sessions import SessionRecorder
from .tsdb.base import TimeSeriesSink
from .tsdb.lines import message_lines

__all__ = ["REJECT_REASONS", "IngestStats", "Pipeline"]

log = logging.getLogger(__name__)

# protocol.decode's reasons, plus "internal" for a message that broke our own code (a bug).
REJECT_REASONS = ("unknown_topic", "too_large", "bad_json", "schema", "topic_mismatch", "internal")


@dataclass(frozen=True, slots=True)
class IngestStats:
    received: int
    accepted: int
    rejected: dict[str, int] = field(default_factory=dict)


class Pipeline:
    def __init__(self, fleet: Fleet, sink: TimeSeriesSink, clock: Clock = utcnow,
                 sessions: SessionRecorder | None = None) -> None:
        self._fleet = fleet
        self._sink = sink
        self._sessions = sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._received = 0
        self._accepted = 0
        self._rejected = dict.fromkeys(REJECT_REASONS, 0)
        self._ratelimited = RateLimitedLogger(log)

    def handle(self, topic: str, payload: bytes) -> bool:
        """Process one message; True if it was accepted."""
        with self._lock:
            self._received += 1
        try:
            message = decode(topic, payload)
        except ProtocolError as exc:
            self._reject(exc.reason)
            self._ratelimited.log(logging.WARNING, f"rejected-{exc.reason}",
                                  "rejected message (%s): %s", exc.reason, exc.detail)
            return False
        try:
            received_at = self._clock()
            view = self._fleet.apply(message, received_at)
            repeated = (isinstance(message, EventMessage) and message.event is EventKind.SESSION_ENDED
                        and self._sessions is not None and not self._sessions.record(message))
            # A session sent again after a lost acknowledgement is stored already: no second point.
            lines = [] if repeated else message_lines(message, view.asset_tags, received_at)
            if lines:
                self._sink.write(lines)
        except Exception:  # a bug for one message must not stop the collector
            self._reject("internal")
            if self._ratelimited.log(logging.ERROR, "internal", "failed to process a message on %s",
                                     topic[:200]):
                log.exception("traceback of the failure above")
            return False
        with self._lock:
            self._accepted += 1
        return True

    def _reject(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1

    def stats(self) -> IngestStats:
        with self._lock:
            return IngestStats(self._received, self._accepted, dict(self._rejected))
