"""One MQTT message in: decode, update fleet state, hand lines to the sink, count what happened.

Runs in paho's network thread (the fast path). Everything a cabinet sends passes one boundary first:
the protocol's form (``decode``) and what only the collector can check (``server/boundary.py``:
slot and device counts, times within a window). A bad message is counted by reason and against its
cabinet, logged at a limited rate and dropped; nothing a publisher sends can stop the collector or
touch another cabinet's data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from cabinet_agent.protocol import EventKind, EventMessage, ProtocolError, decode, parse_topic

from .boundary import BOUNDARY_REASONS, Boundary
from .clock import Clock, utcnow
from .events import EventLog
from .fleet import Fleet
from .integrity import CabinetIntegrity, Integrity
from .ratelimit import RateLimitedLogger
from .sessions import SessionRecorder
from .tsdb.base import TimeSeriesSink
from .tsdb.lines import event_lines, message_lines

__all__ = ["REJECT_REASONS", "IngestStats", "Pipeline"]

log = logging.getLogger(__name__)

# protocol.decode's reasons, plus "internal" for a message that broke our own code (a bug).
REJECT_REASONS = ("unknown_topic", "too_large", "bad_json", "schema", "topic_mismatch",
                  *BOUNDARY_REASONS, "internal")


@dataclass(frozen=True, slots=True)
class IngestStats:
    received: int
    accepted: int
    rejected: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0  # valid messages seen before (same cabinet, boot_id, seq): not stored again
    events_stored: int = 0  # event messages stored in the event log since start
    integrity: dict[str, CabinetIntegrity] = field(default_factory=dict)  # per site/cabinet


class Pipeline:
    def __init__(self, fleet: Fleet, sink: TimeSeriesSink, clock: Clock = utcnow,
                 sessions: SessionRecorder | None = None, events: EventLog | None = None,
                 integrity: Integrity | None = None, boundary: Boundary | None = None) -> None:
        self._fleet = fleet
        self._boundary = boundary if boundary is not None else Boundary()
        self._sink = sink
        self._sessions = sessions
        self._events = events if events is not None else EventLog(None)
        self.integrity = integrity if integrity is not None else Integrity()
        self._duplicates = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._received = 0
        self._accepted = 0
        self._rejected = dict.fromkeys(REJECT_REASONS, 0)
        self._ratelimited = RateLimitedLogger(log)

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> bool:
        """Process one message; True if it was accepted. ``retained``: delivered from the broker's
        store on subscribing (an old message that says nothing about gaps)."""
        with self._lock:
            self._received += 1
        try:
            message = decode(topic, payload)
            known = self._fleet.get(message.site, message.cabinet)
            self._boundary.check_counts(message, known.slot_count if known is not None else None)
        except ProtocolError as exc:
            self._reject(exc.reason, topic)
            self._ratelimited.log(logging.WARNING, f"rejected-{exc.reason}",
                                  "rejected message (%s): %s", exc.reason, exc.detail)
            return False
        try:
            received_at = self._clock()
            fresh, integrity = self.integrity.observe(message, received_at, retained)
            if not fresh:  # the same (cabinet, boot_id, seq) again: processed already
                with self._lock:
                    self._duplicates += 1
                return False
            # Points of an unsynchronised clock are stored at this time instead of their ts; a time
            # outside the window is replaced by the receive time, never stored as it came.
            checked = self._boundary.normalise(
                message, self.integrity.corrected(message, received_at), received_at)
            message, when = checked.message, checked.when
            if checked.out_of_window:
                self.integrity.out_of_window(message.site, message.cabinet, checked.skew_s)
                integrity = self.integrity.get(message.site, message.cabinet)
            view = self._fleet.apply(message, received_at, integrity, retained)
            tags = view.asset_tags  # the inventory's, never the cabinet's claim (server/assets.py)
            if isinstance(message, EventMessage):
                self._event(_attributed(message, tags), tags, received_at, when)
            else:
                self._sink.write(message_lines(message, tags, when))
        except Exception:  # a bug for one message must not stop the collector
            self._reject("internal", topic)
            if self._ratelimited.log(logging.ERROR, "internal", "failed to process a message on %s",
                                     topic[:200]):
                log.exception("traceback of the failure above")
            return False
        with self._lock:
            self._accepted += 1
        return True

    def _event(self, message: EventMessage, asset_tags: Mapping[int, str],
               received_at: datetime, when: datetime) -> None:
        # Stored once per (cabinet, boot_id, seq), even across collector restarts; the lines go to
        # the sink's journal first, so a SIGKILL between the two repeats a point, never loses one.
        if self._events.seen(message):
            with self._lock:
                self._duplicates += 1
            return
        lines = event_lines(message, when)
        repeated = (message.event is EventKind.SESSION_ENDED and self._sessions is not None
                    and not self._sessions.record(message))
        if not repeated:  # a session stored already gets no second point
            lines += message_lines(message, asset_tags, when)
        self._sink.write(lines)
        self._events.record(message, received_at)

    def _reject(self, reason: str, topic: str) -> None:
        with self._lock:
            self._rejected[reason] = self._rejected.get(reason, 0) + 1
        if reason == "unknown_topic":
            return
        try:
            address = parse_topic(topic)
        except ProtocolError:
            return
        if self.integrity.rejected(address.site, address.cabinet, reason):
            self._fleet.set_integrity(address.site, address.cabinet,
                                      self.integrity.get(address.site, address.cabinet))

    def stats(self, integrity: bool = True) -> IngestStats:
        """The counters; ``integrity=False`` leaves out the per-cabinet integrity (a pass over
        every cabinet: a third of a second at 80,000), for callers that need only the counters."""
        with self._lock:
            counts = (self._received, self._accepted, dict(self._rejected), self._duplicates)
        return IngestStats(*counts, self._events.stored,
                           self.integrity.snapshot() if integrity else {})


def _attributed(message: EventMessage, tags: Mapping[int, str]) -> EventMessage:
    """The event with its session under the asset tag the inventory gives its slot (an older
    agent's own tag is not taken)."""
    session = message.session
    if session is None or session.asset_tag == (tag := tags.get(session.slot)):
        return message
    return message.model_copy(update={"session": session.model_copy(update={"asset_tag": tag})})
