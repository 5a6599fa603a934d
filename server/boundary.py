"""The one boundary everything a cabinet sends passes before it touches shared state.

``cabinet_agent.common.protocol.decode`` checks the form (types, finite numbers, sequence numbers within
63 bits, at most 256 slots and 32 devices, names not empty). This module adds what only the
collector can check, because it needs the server's clock and what it knows of the cabinet:

* **counts**: a cabinet reports no more slots than its birth message declared (its model) and
  no more slots or devices than this collector's global limits (``[ingest]``); a message over
  them is rejected whole (reason ``too_many_slots`` / ``too_many_devices``);
* **time**: a message's time must lie within a window around the receive time (``max_ahead_s``
  ahead, ``max_age_days`` back, which covers an outbox replayed after the summer holidays).
  Outside it the message is *kept* but its time is replaced by the receive time and counted as
  clock trouble; every time inside the message (a slot's ``since``, a session's start and end)
  moves with it and is clamped to at most the message's time and at most ``NESTED_MAX_AGE`` before
  it. So nothing downstream (the fleet, the history rings, the TSDB, exports) ever sees a year
  9999 or a year 1.

A rejected message changes nothing: it is counted per cabinet (the topic's cabinet: the broker's
ACL lets a cabinet publish only under its own prefix) and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from cabinet_agent.common.protocol import (
    BirthMessage,
    EventMessage,
    Message,
    ProtocolError,
    StateMessage,
    TelemetryMessage,
)

__all__ = ["BOUNDARY_REASONS", "NESTED_MAX_AGE", "Boundary", "Bounds", "Normalised"]

BOUNDARY_REASONS: Final = ("too_many_slots", "too_many_devices")
# How far back a slot's ``since`` or a session's start may lie before its message: an iPad may be
# missing for a long time, but not for longer than any cabinet has existed.
NESTED_MAX_AGE: Final = timedelta(days=3650)
_ZERO: Final = timedelta(0)


@dataclass(frozen=True, slots=True)
class Bounds:
    max_slots: int = 64  # the largest real cabinets have 48 (reference/devices)
    max_devices: int = 16
    max_ahead_s: float = 300.0
    max_age_days: float = 90.0


class Normalised(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is made per message, at a fraction of the cost.
    message: Message  # every time in it within the window
    when: datetime  # when it happened, in the server's frame (== message.ts)
    out_of_window: bool  # its time was replaced by the receive time
    skew_s: float  # the replaced time minus the receive time (0 when within the window)


class Boundary:
    def __init__(self, bounds: Bounds = Bounds()) -> None:
        self.bounds = bounds
        self._ahead = timedelta(seconds=bounds.max_ahead_s)
        self._age = timedelta(days=bounds.max_age_days)

    # -- counts -------------------------------------------------------------------------------

    def check_counts(self, message: Message, declared_slots: int | None) -> None:
        """Raise ProtocolError when the message reports more slots or devices than allowed;
        ``declared_slots``: the slot count of the cabinet's last birth message, if known."""
        limit = self.bounds.max_slots
        if isinstance(message, BirthMessage):
            if message.slot_count > limit:
                _too_many_slots(f"birth declares {message.slot_count} slots; this collector "
                                f"accepts at most {limit} ([ingest] max_slots)")
            if len(message.slots) > message.slot_count or \
                    any(s.slot > message.slot_count for s in message.slots):
                _too_many_slots(f"birth lists slots beyond its slot_count {message.slot_count}")
            return
        if declared_slots is not None:
            limit = min(limit, declared_slots)
        if isinstance(message, TelemetryMessage):
            widest = max(len(message.states), len(message.power_w),
                         len(message.certainty) if message.certainty is not None else 0)
            if widest > limit:
                _too_many_slots(f"telemetry for {widest} slots; the cabinet has {limit}")
            self._check_devices(len(message.devices))
        elif isinstance(message, StateMessage):
            numbers = [s.slot for s in message.slots]
            if numbers and max(numbers) > limit:
                _too_many_slots(f"state names slot {max(numbers)}; the cabinet has {limit}")
            if len(set(numbers)) != len(numbers):
                raise ProtocolError("schema", "state lists a slot twice")
            self._check_devices(len(message.devices))
        elif isinstance(message, EventMessage):
            slot = message.slot if message.slot is not None else 0
            if message.session is not None:
                slot = max(slot, message.session.slot)
            if slot > limit:
                _too_many_slots(f"event for slot {slot}; the cabinet has {limit}")

    def _check_devices(self, count: int) -> None:
        if count > self.bounds.max_devices:
            raise ProtocolError("too_many_devices",
                                f"{count} devices; this collector accepts at most "
                                f"{self.bounds.max_devices} ([ingest] max_devices)")

    # -- time -----------------------------------------------------------------------------------

    def normalise(self, message: Message, when: datetime, received_at: datetime) -> Normalised:
        """Bring every time of ``message`` into the window. ``when``: when it happened as far as
        the collector can tell (its ts, or a corrected one for an unsynchronised clock)."""
        skew_s = 0.0
        out = not (received_at - self._age <= when <= received_at + self._ahead)
        if out:
            skew_s = (when - received_at).total_seconds()
            when = received_at
        if (when is message.ts or when == message.ts) and _nested_within(message):
            return Normalised(message, when, out, skew_s)
        return Normalised(_moved(message, when), when, out, skew_s)


def _too_many_slots(detail: str) -> None:
    raise ProtocolError("too_many_slots", detail)


def _nested_within(message: Message) -> bool:
    """True when every time inside ``message`` lies in [ts - NESTED_MAX_AGE, ts] (the fast path)."""
    ts = message.ts
    if isinstance(message, StateMessage):
        return all(_inside(t, ts) for s in message.slots
                   for t in (s.since, s.last_draw_at, s.unseen_since) if t is not None)
    if isinstance(message, EventMessage) and message.session is not None:
        return _inside(message.session.started_at, ts) and _inside(message.session.ended_at, ts)
    return True


def _inside(t: datetime, ts: datetime) -> bool:
    return t <= ts and ts - t <= NESTED_MAX_AGE


def _place(t: datetime | None, ts: datetime, when: datetime) -> datetime | None:
    """``t`` (a time inside a message stamped ``ts``) in the frame where the message happened at
    ``when``: the same distance before it, at most NESTED_MAX_AGE and never after it. Computed as
    a difference first, so a year 9999 or 1 never overflows."""
    if t is None:
        return None
    before = ts - t
    return when - min(max(before, _ZERO), NESTED_MAX_AGE)


def _moved(message: Message, when: datetime) -> Message:
    ts = message.ts
    update: dict[str, object] = {"ts": when}
    if isinstance(message, StateMessage):
        update["slots"] = [s.model_copy(update={
            "since": _place(s.since, ts, when), "last_draw_at": _place(s.last_draw_at, ts, when),
            "unseen_since": _place(s.unseen_since, ts, when)}) for s in message.slots]
    elif isinstance(message, EventMessage) and message.session is not None:
        session = message.session
        update["session"] = session.model_copy(update={
            "started_at": _place(session.started_at, ts, when),
            "ended_at": _place(session.ended_at, ts, when)})
    return message.model_copy(update=update)
