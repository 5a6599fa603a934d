"""One MQTT message in: decode, update fleet state, hand it to the sink, count what happened.

Runs in paho's network thread (the fast path). The message is decoded and checked once, at the
boundary, into a typed value that flows on as it is: duplicates (``Integrity.observe``), the fleet,
the alert rules (through the fleet) and the TSDB writer, which builds its lines per batch.

Everything a cabinet sends passes that boundary: the protocol's form (``decode``) and what only
the collector can check (``server/boundary.py``: slot and device counts, times within a window). A
bad message is counted by reason and against its cabinet, logged at a limited rate and dropped;
nothing a publisher sends can stop the collector or touch another cabinet's data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cabinet_agent.common.protocol import (
    EventKind,
    EventMessage,
    Message,
    ProtocolError,
    StateMessage,
    TelemetryMessage,
    decode,
    parse_topic,
)

from .boundary import BOUNDARY_REASONS, Boundary
from .clock import Clock, utcnow
from .events import EventLog
from .fleet import Fleet
from .integrity import CabinetIntegrity, Integrity
from .ratelimit import RateLimitedLogger
from .sessions import SessionRecorder
from .tsdb.base import TimeSeriesSink
from .tsdb.lines import Tagged, event_lines, message_lines

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
        # Without a ledger given: one in the sessions' store (a session row goes with its event);
        # without sessions either, none (a test's pipeline: repeats are caught within the run).
        self._events = events if events is not None else (
            EventLog(sessions.store) if sessions is not None else None)
        self.integrity = integrity if integrity is not None else Integrity()
        self._duplicates = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._received = 0
        self._accepted = 0
        self._rejected = dict.fromkeys(REJECT_REASONS, 0)
        self._ratelimited = RateLimitedLogger(log)
        # A sink that takes typed messages builds their lines per batch in its writer thread.
        write_message = getattr(sink, "write_message", None)
        self._store: Callable[[Message, Sequence[Tagged], datetime, bool], None] = \
            write_message if write_message is not None else self._store_lines
        self._seal: Callable[[], None] | None = getattr(sink, "seal", None)

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> bool:
        """Process one message; True if it was accepted. ``retained``: delivered from the broker's
        store on subscribing (an old message that says nothing about gaps). Telemetry and states
        are journaled with their batch, or at the next ``settle``: the caller settles before it
        acknowledges a QoS 1 message (``MqttCollector``); an event is in the journal and the
        ledger when this returns."""
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
                    self._received += 1
                    self._duplicates += 1
                return False
            # Points of an unsynchronised clock are stored at this time instead of their ts; a time
            # outside the window is replaced by the receive time, never stored as it came.
            checked = self._boundary.normalise(
                message, self.integrity.corrected(message, received_at), received_at)
            message, when = checked.message, checked.when
            if checked.out_of_window:
                integrity = self.integrity.out_of_window(message.site, message.cabinet, checked.skew_s)
            view = self._fleet.apply(message, received_at, integrity, retained)
            if isinstance(message, (TelemetryMessage, StateMessage)):
                # typed into the sink: its lines are built with their batch, by the writer; the
                # asset tags are the inventory's on the fleet's slots, never the cabinet's claim
                self._store(message, view.slots, when, False)
            elif isinstance(message, EventMessage):
                tags = view.asset_tags
                self._event(_attributed(message, tags), tags, received_at, when)
        except Exception:  # a bug for one message must not stop the collector
            self._reject("internal", topic)
            if self._ratelimited.log(logging.ERROR, "internal", "failed to process a message on %s",
                                     topic[:200]):
                log.exception("traceback of the failure above")
            return False
        with self._lock:  # the one lock of an accepted message's own
            self._received += 1
            self._accepted += 1
        return True

    def settle(self) -> None:
        """What every message handled so far keeps is durable (in the TSDB journal, the event
        ledger) when this returns: called before the messages are acknowledged, once per group of
        them."""
        if self._seal is not None:
            self._seal()

    def _store_lines(self, message: Message, slots: Sequence[Tagged], when: datetime,
                     durable: bool) -> None:
        """For a sink that takes lines only: built here, one message at a time."""
        self._sink.write(message_lines(message, {s.slot: s.asset_tag for s in slots if s.asset_tag},
                                       when))

    def _event(self, message: EventMessage, asset_tags: Mapping[int, str],
               received_at: datetime, when: datetime) -> None:
        # The event ledger is the one durable duplicate decision: an event, and the charge session
        # it carries, is stored once per (cabinet, boot_id, seq), even across collector restarts.
        # The lines go to the sink's journal before the ledger records the event, so a SIGKILL
        # between the two repeats a point (the TSDB overwrites it), never loses one.
        ledger = self._events
        if ledger is not None and ledger.seen(message):
            with self._lock:
                self._duplicates += 1
            return
        self._sink.write(event_lines(message, when) + message_lines(message, asset_tags, when))
        sessions = self._sessions if message.event is EventKind.SESSION_ENDED else None
        row = sessions.row(message) if sessions is not None else None
        if ledger is not None and ledger.record(message, received_at, row) and sessions is not None:
            sessions.stored(message)  # battery ageing, once the session is stored

    def _reject(self, reason: str, topic: str) -> None:
        with self._lock:
            self._received += 1
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
        """The counters; ``integrity=False`` leaves out the per-cabinet integrity (a sorted copy of
        the values ``Integrity`` keeps, nothing computed), for callers that need only the counters."""
        with self._lock:
            counts = (self._received, self._accepted, dict(self._rejected), self._duplicates)
        return IngestStats(*counts, self._events.stored if self._events is not None else 0,
                           self.integrity.snapshot() if integrity else {})


def _attributed(message: EventMessage, tags: Mapping[int, str]) -> EventMessage:
    """The event with its session under the asset tag the inventory gives its slot (an older
    agent's own tag is not taken)."""
    session = message.session
    if session is None or session.asset_tag == (tag := tags.get(session.slot)):
        return message
    return message.model_copy(update={"session": session.model_copy(update={"asset_tag": tag})})
