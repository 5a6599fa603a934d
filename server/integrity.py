"""Per-cabinet delivery integrity: duplicates, sequence gaps, clock skew, what the agent dropped.

Every message carries ``(boot_id, seq)``; ``seq`` grows by one per message of a boot, over all
channels. The agent's outbox delivers at least once, so a message may come twice (a lost PUBACK, a
re-subscribe that re-sends retained messages): the second is a *duplicate* and is not processed
again. Numbers never seen between the lowest and the highest of a boot are *gaps*; a replay that
arrives later fills them again. Some gaps are normal and documented (docs/reliability.md): the seq of
a Last Will that was never needed, QoS 0 telemetry of an older agent lost with a connection.

Events carry a second counter (``event_seq``, protocol revision 3) and telemetry says how many
events the boot created so far and how many messages wait in its outbox. When a telemetry message
says the outbox was empty after event R, every event up to R was acknowledged by the broker; once an
event after R arrives (the broker hands one subscriber its QoS 1 messages in order), an event up to R
that is still missing was **lost**: acknowledged, never delivered, and the outbox cannot replay it.
Those are counted as ``events_lost`` and raise the ``data_lost`` alert.

Seen numbers are kept as a sorted list of closed intervals — one interval per boot in the normal
case — bounded per boot and for the last few boots per cabinet, so memory stays small for years.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from cabinet_agent.common.protocol import EventMessage, Message, TelemetryMessage

__all__ = ["CabinetIntegrity", "Integrity", "SeqRanges"]

MAX_BOOTS_PER_CABINET: Final = 4
MAX_CABINETS: Final = 500_000  # bounds what rejected messages on unknown topics can create
MAX_RANGES_PER_BOOT: Final = 512
_SNAPSHOT_BATCH: Final = 1000  # cabinets per hold of the lock in snapshot()
_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # the protocol's id


class SeqRanges:
    """Seen sequence numbers of one boot as disjoint, sorted, closed intervals."""

    def __init__(self, max_ranges: int = MAX_RANGES_PER_BOOT) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._max = max_ranges
        self._holes = 0  # numbers missing between the intervals, kept as they change
        self.written_off = 0  # missing numbers given up on when the interval list was full

    def add(self, seq: int) -> bool:
        """Record ``seq``; False when it was seen before (a duplicate)."""
        starts, ends = self._starts, self._ends
        if ends and seq == ends[-1] + 1:  # the next number of the boot: the common case
            ends[-1] = seq
            return True
        i = bisect.bisect_right(starts, seq) - 1
        if i >= 0 and seq <= ends[i]:
            return False
        after = i + 1 < len(starts)
        joins_left = i >= 0 and ends[i] == seq - 1
        joins_right = after and starts[i + 1] == seq + 1
        if joins_left and joins_right:  # the hole of one between them is closed
            ends[i] = ends[i + 1]
            del starts[i + 1], ends[i + 1]
            self._holes -= 1
        elif joins_left:
            ends[i] = seq
            self._holes -= after
        elif joins_right:
            starts[i + 1] = seq
            self._holes -= i >= 0
        else:
            if i >= 0 and after:  # within a hole: one number less missing
                self._holes -= 1
            elif i >= 0:  # beyond the highest
                self._holes += seq - ends[i] - 1
            elif after:  # below the lowest
                self._holes += starts[0] - seq - 1
            starts.insert(i + 1, seq)
            ends.insert(i + 1, seq)
            if len(starts) > self._max:
                self._merge_oldest()
        return True

    def missing_between(self, low: int, high: int) -> int:
        """How many numbers in [low, high] were not seen (given-up holes count as seen)."""
        if high < low:
            return 0
        seen = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            if end < low:
                continue
            if start > high:
                break
            seen += min(end, high) - max(start, low) + 1
        return high - low + 1 - seen

    def contains(self, seq: int) -> bool:
        i = bisect.bisect_right(self._starts, seq) - 1
        return i >= 0 and seq <= self._ends[i]

    def _merge_oldest(self) -> None:
        # Too many holes: the oldest one is given up on (counted), never memory without bound.
        hole = self._starts[1] - self._ends[0] - 1
        self.written_off += hole
        self._holes -= hole
        self._ends[0] = self._ends[1]
        del self._starts[1], self._ends[1]

    @property
    def missing(self) -> int:
        """Numbers not seen between the lowest and the highest, and those given up on."""
        return self._holes + self.written_off


class CabinetIntegrity(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is made per message (``last_skew_s`` moves).
    gaps: int = 0  # sequence numbers missing now, over the boots kept
    duplicates: int = 0  # messages seen before, not processed again
    replayed: int = 0  # messages flagged replayed (sent from the outbox after an outage)
    skewed: int = 0  # messages of a synchronised clock off from the receive time by more than the bound
    last_skew_s: float | None = None  # ts - receive time of the last message with clock_synced
    unsynced: int = 0  # messages with clock_synced = false (stored at the receive time)
    outbox_dropped: int | None = None  # as the agent's telemetry reported it
    rejected: int = 0  # messages on this cabinet's topics refused at the boundary
    last_rejected: str | None = None  # the reason of the newest ("schema", "too_many_slots", …)
    out_of_window: int = 0  # messages whose time lay outside the window: stored at receive time
    events_lost: int = 0  # events acknowledged by the broker that never arrived (module doc)
    events_lost_at: datetime | None = None  # receive time when the newest loss was proven

    @property
    def clock_suspect(self) -> bool:
        return self.skewed > 0 or self.out_of_window > 0


_NONE: Final = CabinetIntegrity()
_make: Final = tuple.__new__  # a NamedTuple without its Python-level __new__


class _Events:
    """Event numbers of one boot: seen, the newest R known to have left the agent, judged."""

    __slots__ = ("baseline", "judged", "seen", "settled")

    def __init__(self) -> None:
        self.seen = SeqRanges()
        self.baseline: int | None = None  # the first number this collector could have seen
        self.settled = 0  # newest event_seq of a telemetry with an empty outbox
        self.judged = 0  # numbers up to this were checked for loss

    def event(self, number: int) -> tuple[bool, int]:
        """Record an event; (it was new, how many events this proves lost: may be negative when a
        number given up arrives after all)."""
        if self.baseline is None:
            self.baseline = number
        if not self.seen.add(number):
            return False, 0
        if number <= self.judged and number >= self.baseline:
            return True, -1  # counted lost, but here it is
        if number > self.settled > self.judged:
            lost = self.seen.missing_between(max(self.judged + 1, self.baseline), self.settled)
            self.judged = self.settled
            return True, lost
        return True, 0

    def telemetry(self, created: int, outbox_queued: int | None) -> None:
        if self.baseline is None:
            self.baseline = created + 1  # what came before was not ours to see
        if outbox_queued == 0 and created > self.settled:
            self.settled = created


class _Cabinet:
    __slots__ = ("boots", "current", "duplicates", "events", "events_lost", "events_lost_at",
                 "last_rejected", "last_skew_s", "offsets", "out_of_window", "outbox_dropped",
                 "rejected", "replayed", "skewed", "unsynced")

    def __init__(self) -> None:
        self.boots: OrderedDict[str, SeqRanges] = OrderedDict()
        self.offsets: dict[str, timedelta] = {}  # per boot: receive time - ts of an unsynced clock
        self.events: dict[str, _Events] = {}  # per boot kept in ``boots``
        self.duplicates = self.replayed = self.skewed = self.unsynced = 0
        self.rejected = self.out_of_window = self.events_lost = 0
        self.last_rejected: str | None = None
        self.events_lost_at: datetime | None = None
        self.last_skew_s: float | None = None
        self.outbox_dropped: int | None = None
        self.current = _NONE  # the counters as a value, made again after every change

    def refresh(self) -> CabinetIntegrity:
        """The counters as a value: kept, so that reading them (the fleet, ``/api/stats``) never
        computes anything."""
        self.current = _make(CabinetIntegrity, (
            sum(b.missing for b in self.boots.values()), self.duplicates, self.replayed,
            self.skewed, self.last_skew_s, self.unsynced, self.outbox_dropped, self.rejected,
            self.last_rejected, self.out_of_window, self.events_lost, self.events_lost_at))
        return self.current

    def track_events(self, message: Message, received_at: datetime) -> None:
        if isinstance(message, EventMessage):
            if message.event_seq is None:
                return
            track = self.events.get(message.boot_id)
            if track is None:
                track = self.events[message.boot_id] = _Events()
            _, lost = track.event(message.event_seq)
            if lost:
                self.events_lost = max(0, self.events_lost + lost)
                if lost > 0:
                    self.events_lost_at = received_at
        elif isinstance(message, TelemetryMessage) and message.event_seq is not None:
            track = self.events.get(message.boot_id)
            if track is None:
                track = self.events[message.boot_id] = _Events()
            track.telemetry(message.event_seq, message.outbox_queued)


class Integrity:
    """Thread-safe; ``observe`` is called once per valid message on the ingest path."""

    def __init__(self, skew_bound_s: float = 120.0) -> None:
        self._skew_bound = skew_bound_s
        self._lock = threading.Lock()
        self._cabinets: dict[tuple[str, str], _Cabinet] = {}

    def observe(self, message: Message, received_at: datetime,
                retained: bool = False) -> tuple[bool, CabinetIntegrity]:
        """(is new, the cabinet's counters). A duplicate changes nothing but its counter. A
        retained message (delivered on subscribing, maybe long after it was published) is checked
        for being a duplicate but not recorded: its old seq would open a false gap."""
        key = (message.site, message.cabinet)
        with self._lock:
            cab = self._cabinets.get(key)
            if cab is None:
                cab = self._cabinets[key] = _Cabinet()
            ranges = cab.boots.get(message.boot_id)
            if ranges is None:
                ranges = cab.boots[message.boot_id] = SeqRanges()
                while len(cab.boots) > MAX_BOOTS_PER_CABINET:
                    gone, _ = cab.boots.popitem(last=False)
                    cab.offsets.pop(gone, None)
                    cab.events.pop(gone, None)
            if ranges.contains(message.seq) if retained else not ranges.add(message.seq):
                cab.duplicates += 1
                return False, cab.refresh()
            if retained:
                return True, cab.refresh()
            if message.replayed:
                cab.replayed += 1
            if not message.clock_synced:
                cab.unsynced += 1
                if not message.replayed:  # the least delayed live message tells the offset best
                    offset = received_at - message.ts
                    known = cab.offsets.get(message.boot_id)
                    cab.offsets[message.boot_id] = offset if known is None else min(known, offset)
            elif not message.replayed:  # a replay is old on purpose; its ts is when it happened
                skew = (message.ts - received_at).total_seconds()
                cab.last_skew_s = round(skew, 3)
                if abs(skew) > self._skew_bound:
                    cab.skewed += 1
            if isinstance(message, TelemetryMessage) and message.outbox_dropped is not None:
                cab.outbox_dropped = message.outbox_dropped
            cab.track_events(message, received_at)
            return True, cab.refresh()

    def rejected(self, site: str, cabinet: str, reason: str) -> bool:
        """Count a message refused at the boundary against the cabinet whose topic it came on
        (the broker's ACL confines a cabinet to its own topics). False when not counted: the
        topic's ids are not valid ids, or too many cabinets are known already."""
        key = (site, cabinet)
        with self._lock:
            cab = self._cabinets.get(key)
            if cab is None:
                if len(self._cabinets) >= MAX_CABINETS or not (_ID.match(site) and _ID.match(cabinet)):
                    return False
                cab = self._cabinets[key] = _Cabinet()
            cab.rejected += 1
            cab.last_rejected = reason
            cab.refresh()
            return True

    def out_of_window(self, site: str, cabinet: str, skew_s: float) -> CabinetIntegrity:
        """A message whose time lay outside the window (server/boundary.py): stored at the
        receive time; counted as clock trouble. Returns the cabinet's counters."""
        with self._lock:
            cab = self._cabinets.get((site, cabinet))
            if cab is None:
                return _NONE
            cab.out_of_window += 1
            cab.last_skew_s = round(max(-1e12, min(1e12, skew_s)), 3)
            return cab.refresh()

    def corrected(self, message: Message, received_at: datetime) -> datetime:
        """When an unsynchronised message happened: its ts moved by the offset its boot showed on
        live messages (a Pi without RTC runs a wrong but steady clock), so a replayed backlog keeps
        its spacing; the receive time when the boot's offset is unknown."""
        if message.clock_synced:
            return message.ts
        with self._lock:
            cab = self._cabinets.get((message.site, message.cabinet))
            offset = cab.offsets.get(message.boot_id) if cab is not None else None
        return received_at if offset is None else message.ts + offset

    def get(self, site: str, cabinet: str) -> CabinetIntegrity:
        with self._lock:
            cab = self._cabinets.get((site, cabinet))
            return cab.current if cab is not None else _NONE

    def snapshot(self) -> dict[str, CabinetIntegrity]:
        """Per ``site/cabinet``: the values every change keeps (nothing is computed here), copied
        under the lock in batches, so the ingest thread never waits long for it."""
        with self._lock:
            cabinets = list(self._cabinets.items())
        views: dict[tuple[str, str], CabinetIntegrity] = {}
        for start in range(0, len(cabinets), _SNAPSHOT_BATCH):
            with self._lock:
                for key, cab in cabinets[start:start + _SNAPSHOT_BATCH]:
                    views[key] = cab.current
        return {f"{s}/{c}": view for (s, c), view in sorted(views.items())}
