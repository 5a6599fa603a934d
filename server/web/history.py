"""A slot's recent history, kept by the server itself when no time-series database is queried.

The fleet holds only the latest state; the dashboard feeds the cabinets that changed (``Fleet``'s
change feed) into this every few seconds, and it keeps per slot the state changes (at the agent's
``since`` time) and power readings of the last hours. It is what the slot page draws; it starts
empty when the server starts.

**Memory is bounded for the whole fleet, not per slot.** 80,000 cabinets × 32 slots are 2.56 million
slots: two deques of objects per slot (the old layout, ~600 bytes each empty) would be gigabytes. So:

* per cabinet, one ring of sample times (``array('q')``, µs) and one flat ring of power readings
  for all its slots (``array('h')``, 0.1 W, 2 bytes a reading; -32768 = unknown); the ring grows
  by appending up to its *depth*, then overwrites its oldest row;
* per cabinet, its state changes in one flat ``array('q')``, each packed in 8 bytes: the time
  (ms), the slot's index and its state;
* a budget over the fleet: ``max_points`` power readings and ``max_transitions`` state changes.
  The depth (readings per slot) is ``max_points / slots known``, between ``MIN_SAMPLES`` and
  ``MAX_SAMPLES``; the state changes per slot likewise between ``MIN_TRANSITIONS`` and
  ``MAX_TRANSITIONS`` (trimming keeps the newest change of every slot, so its current state never
  goes). A small district gets the full ``MAX_SAMPLES``; at 80,000 × 32 slots a slot keeps the last
  ~15 readings (a quarter of an hour at one telemetry a minute). That is what the slot page is for;
  the long history is the TSDB's (Grafana). When the fleet grows, rings shrink on their next write,
  and all of them at once whenever the depth fell by a quarter, so the budget holds within a third.

Measured at 80,000 × 32 slots: docs/dashboard.md.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import chain
from math import floor
from operator import attrgetter
from typing import Final

from cabinet_agent.common.protocol import SlotState

from ..fleet import CabinetView, SlotView

__all__ = ["HistoryUsage", "Sample", "SlotHistory", "Transition"]

MAX_SAMPLES: Final = 1440  # per slot at most: two hours at one every 5 s, a day at one a minute
MIN_SAMPLES: Final = 8  # per slot at least, whatever the budget: a short curve is still a curve
MAX_TRANSITIONS: Final = 500  # state changes per slot at most
MIN_TRANSITIONS: Final = 3  # must stay > 2: a trim keeps half the cap plus the newest of each slot
# 40 M readings × 2 bytes = 80 MB; 8 M state changes × 8 bytes = 64 MB if every slot flapped.
DEFAULT_MAX_POINTS: Final = 40_000_000
DEFAULT_MAX_TRANSITIONS: Final = 8_000_000

_STATES: Final = tuple(SlotState)
_CODE: Final = {state: code for code, state in enumerate(_STATES)}
_NO_STATE: Final = 255
_NO_POWER: Final = -32768
_POWER_LIMIT: Final = 3276.7  # W: what 16 bits of 0.1 W hold; more is stored as this (saturated)
_MAX_WIDTH: Final = 65535  # slot indices are 16 bits; a cabinet claiming more is not recorded
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_MS: Final = timedelta(milliseconds=1)
# A state change in 64 bits: ms since the epoch (43 bits: until the year 2248), slot index, state.
_TIME_SHIFT: Final = 20
_INDEX_SHIFT: Final = 4
_INDEX_MASK: Final = 0xFFFF
_STATE_MASK: Final = 0xF
_state: Final = attrgetter("state")
_power: Final = attrgetter("power_w")


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime  # to the millisecond
    state: SlotState


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    power_w: float | None  # rounded to 0.1 W


@dataclass(frozen=True, slots=True)
class HistoryUsage:
    """What the history holds now (``SlotHistory.usage``; a pass over the cabinets)."""

    cabinets: int
    slots: int
    samples: int  # power readings over all slots
    transitions: int  # state changes over all slots
    depth: int  # readings a slot keeps now
    transitions_per_slot: int  # state changes a slot keeps now
    data_bytes: int  # the arrays' payload (without Python object overhead)


def _us(at: datetime) -> int:
    return (at - _EPOCH) // _US


def _at(us: int) -> datetime:
    return _EPOCH + us * _US


def _odd_power(watts: float) -> int:
    if math.isnan(watts):
        return _NO_POWER
    return 32767 if watts > 0 else -32767


def _powers(slots: Sequence[SlotView]) -> array[int]:
    """The slots' readings in 0.1 W (half up)."""
    try:
        row = array("h", [floor(p * 10.0 + 0.5) for p in map(_power, slots)])
    except (TypeError, ValueError, OverflowError):  # unknown, NaN, ±inf, beyond ±3276.7 W
        row = None
    if row is None or _NO_POWER in row:
        row = array("h", [_NO_POWER if p is None
                          else floor(p * 10.0 + 0.5) if -_POWER_LIMIT <= p <= _POWER_LIMIT
                          else _odd_power(p) for p in map(_power, slots)])
    return row


class _Cabinet:
    """One cabinet's readings and state changes. ``numbers``: the slot numbers by index when they
    are not 1…width (index = number - 1 otherwise)."""

    __slots__ = ("changes", "head", "numbers", "powers", "states", "times", "width")

    def __init__(self, width: int, numbers: array[int] | None) -> None:
        self.width = width
        self.numbers = numbers
        self.times = array("q")  # µs since the epoch, one per row
        self.powers = array("h")  # width readings per row, in 0.1 W
        self.head = 0  # the oldest row once the ring is full (and wrapped)
        self.states = bytes((_NO_STATE,)) * width  # the state code last recorded per slot
        self.changes = array("q")  # packed: ms << _TIME_SHIFT | index << _INDEX_SHIFT | state

    def index(self, slot: int) -> int | None:
        if self.numbers is None:
            return slot - 1 if 1 <= slot <= self.width else None
        try:
            return self.numbers.index(slot)
        except ValueError:
            return None

    # -- power readings: a ring of rows -----------------------------------------------------------
    def _linearise(self) -> None:
        head, width = self.head, self.width
        if head:
            self.times = self.times[head:] + self.times[:head]
            self.powers = self.powers[head * width:] + self.powers[:head * width]
            self.head = 0

    def shrink(self, depth: int) -> None:
        extra = len(self.times) - depth
        if extra > 0:
            self._linearise()
            del self.times[:extra]
            del self.powers[:extra * self.width]

    def add_row(self, at_us: int, row: array[int], depth: int) -> None:
        rows = len(self.times)
        if rows > depth:
            self.shrink(depth)
            rows = depth
        if rows < depth:
            self._linearise()  # a ring that may grow again (the budget rose) appends in order
            self.times.append(at_us)
            self.powers.extend(row)
        else:
            head, width = self.head, self.width
            self.times[head] = at_us
            self.powers[head * width:(head + 1) * width] = row
            self.head = (head + 1) % rows

    def samples(self, index: int, keep_us: int) -> list[Sample]:
        times, powers, width, rows = self.times, self.powers, self.width, len(self.times)
        if not rows:
            return []
        cutoff = times[self.head - 1] - keep_us  # the old deques dropped what was older than this
        out = []
        for row in chain(range(self.head, rows), range(self.head)):
            if times[row] < cutoff:
                continue
            power = powers[row * width + index]
            out.append(Sample(_at(times[row]), None if power == _NO_POWER else power / 10))
        return out

    # -- state changes ----------------------------------------------------------------------------
    def add_changes(self, codes: bytes, slots: Sequence[SlotView], now: datetime,
                    cap: int) -> None:
        old = self.states
        for index, (new, before) in enumerate(zip(codes, old, strict=True)):
            if new != before:
                since = slots[index].since
                ms = ((now if since is None else since) - _EPOCH) // _MS
                self.changes.append(ms << _TIME_SHIFT | index << _INDEX_SHIFT | new)
        self.states = codes
        if len(self.changes) > cap:
            self.trim(cap)

    def trim(self, cap: int) -> None:
        """Keep the newest half of ``cap`` and the newest change of every slot (its current
        state): at most cap / 2 + width entries, which is less than cap."""
        changes = self.changes
        count = len(changes)
        if count <= cap:
            return
        keep_newest = cap // 2
        seen: set[int] = set()
        kept = []
        for k in range(count - 1, -1, -1):
            index = changes[k] >> _INDEX_SHIFT & _INDEX_MASK
            if count - 1 - k < keep_newest or index not in seen:
                kept.append(changes[k])
            seen.add(index)
        kept.reverse()
        self.changes = array("q", kept)

    def transitions(self, index: int) -> list[Transition]:
        return [Transition(_EPOCH + (change >> _TIME_SHIFT) * _MS, _STATES[change & _STATE_MASK])
                for change in self.changes if change >> _INDEX_SHIFT & _INDEX_MASK == index]


class SlotHistory:
    """Thread-safe: ``observe`` runs in the event loop, the readers in request threads."""

    def __init__(self, keep: timedelta = timedelta(hours=24), max_points: int = DEFAULT_MAX_POINTS,
                 max_transitions: int = DEFAULT_MAX_TRANSITIONS) -> None:
        self._keep_us = keep // _US
        self._max_points = max_points
        self._max_transitions = max_transitions
        self._lock = threading.Lock()
        self._cabinets: dict[tuple[str, str], _Cabinet] = {}
        self._slots = 0  # the widths of all cabinets kept
        self._depth = MAX_SAMPLES
        self._per_slot = MAX_TRANSITIONS
        self._swept = (MAX_SAMPLES, MAX_TRANSITIONS)  # the limits when every cabinet last met them

    @property
    def limits(self) -> tuple[int, int]:
        """(readings, state changes) a slot keeps now."""
        with self._lock:
            return self._depth, self._per_slot

    def observe(self, cabinets: Iterable[CabinetView], now: datetime) -> int:
        """Record one row of readings (at ``now``) and any state changes of each cabinet given.
        Give it only the cabinets that changed since the last call (``Fleet.changed_since``): the
        cost is theirs, not the fleet's. Returns how many cabinets were recorded."""
        now_us = _us(now)
        recorded = 0
        with self._lock:
            for view in cabinets:
                slots = view.slots
                if not slots:
                    continue  # no birth nor state yet: nothing to draw
                width = len(slots)
                if width > _MAX_WIDTH:
                    continue
                key = (view.site, view.cabinet)
                cab = self._cabinets.get(key)
                contiguous = slots[0].slot == 1 and slots[-1].slot == width
                if cab is None or cab.width != width or (cab.numbers is None) != contiguous or (
                        not contiguous and list(cab.numbers or ()) != [s.slot for s in slots]):
                    cab = self._replace(key, cab, slots, contiguous)
                codes = bytes(map(_CODE.__getitem__, map(_state, slots)))
                if codes != cab.states:
                    cab.add_changes(codes, slots, now, self._per_slot * width)
                cab.add_row(now_us, _powers(slots), self._depth)
                recorded += 1
        return recorded

    def _replace(self, key: tuple[str, str], old: _Cabinet | None, slots: Sequence[SlotView],
                 contiguous: bool) -> _Cabinet:
        """A cabinet seen first, or whose slots changed (a new birth): it starts afresh."""
        numbers = None if contiguous else array("q", [s.slot for s in slots])
        cab = self._cabinets[key] = _Cabinet(len(slots), numbers)
        self._slots += cab.width - (old.width if old is not None else 0)
        slots_known = max(self._slots, 1)
        self._depth = max(MIN_SAMPLES, min(MAX_SAMPLES, self._max_points // slots_known))
        self._per_slot = max(MIN_TRANSITIONS,
                             min(MAX_TRANSITIONS, self._max_transitions // slots_known))
        swept_depth, swept_per_slot = self._swept
        if self._depth < swept_depth * 3 // 4 or self._per_slot < swept_per_slot * 3 // 4:
            # The fleet grew by a third since every ring last met the budget: shrink them all now
            # (rare: a few times while a fleet connects), not only on their next write.
            for other in self._cabinets.values():
                other.shrink(self._depth)
                other.trim(self._per_slot * other.width)
            self._swept = (self._depth, self._per_slot)
        return cab

    def transitions(self, site: str, cabinet: str, slot: int) -> list[Transition]:
        with self._lock:
            cab = self._cabinets.get((site, cabinet))
            index = cab.index(slot) if cab is not None else None
            return cab.transitions(index) if cab is not None and index is not None else []

    def samples(self, site: str, cabinet: str, slot: int) -> list[Sample]:
        with self._lock:
            cab = self._cabinets.get((site, cabinet))
            index = cab.index(slot) if cab is not None else None
            return cab.samples(index, self._keep_us) if cab is not None and index is not None else []

    def usage(self) -> HistoryUsage:
        with self._lock:
            cabs = self._cabinets.values()
            samples = sum(len(c.powers) for c in cabs)
            transitions = sum(len(c.changes) for c in cabs)
            data = sum(len(c.times) * 8 + len(c.powers) * 2 + len(c.changes) * 8 + c.width
                       for c in cabs)
            return HistoryUsage(len(self._cabinets), self._slots, samples, transitions,
                                self._depth, self._per_slot, data)
