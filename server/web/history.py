"""A slot's recent history, kept by the server itself when no time-series database is queried.

The fleet holds only the latest state; this samples it (every few seconds) and keeps, per slot,
the state changes (at the agent's ``since`` time) and power readings of the last hours, bounded.
It is what the slot page draws; it starts empty when the server starts.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cabinet_agent.protocol import SlotState

from ..fleet import CabinetView

__all__ = ["Sample", "SlotHistory", "Transition"]

MAX_TRANSITIONS: Final = 500
MAX_SAMPLES: Final = 1440  # a day at one sample a minute, or two hours at one every 5 s

SlotKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime
    state: SlotState


@dataclass(frozen=True, slots=True)
class Sample:
    at: datetime
    power_w: float | None


class SlotHistory:
    def __init__(self, keep: timedelta = timedelta(hours=24)) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._transitions: dict[SlotKey, deque[Transition]] = {}
        self._samples: dict[SlotKey, deque[Sample]] = {}
        self._seen: dict[tuple[str, str], datetime] = {}  # cabinet -> last_seen_at when observed

    def observe(self, cabinets: Iterable[CabinetView], now: datetime) -> None:
        """Record the cabinets that reported since the last call; the others have nothing new
        (a whole-fleet sweep every few seconds was a third of the collector's time at 20,000
        cabinets: bench/fleet_capacity.py)."""
        with self._lock:
            for cabinet in cabinets:
                cabinet_key = (cabinet.site, cabinet.cabinet)
                if self._seen.get(cabinet_key) == cabinet.last_seen_at:
                    continue
                self._seen[cabinet_key] = cabinet.last_seen_at
                for slot in cabinet.slots:
                    key = (cabinet.site, cabinet.cabinet, slot.slot)
                    changes = self._transitions.get(key)
                    if changes is None:
                        changes = self._transitions[key] = deque(maxlen=MAX_TRANSITIONS)
                    if not changes or changes[-1].state is not slot.state:
                        changes.append(Transition(slot.since or now, slot.state))
                    samples = self._samples.get(key)
                    if samples is None:
                        samples = self._samples[key] = deque(maxlen=MAX_SAMPLES)
                    samples.append(Sample(now, slot.power_w))
                    while samples and now - samples[0].at > self._keep:
                        samples.popleft()

    def transitions(self, site: str, cabinet: str, slot: int) -> list[Transition]:
        with self._lock:
            return list(self._transitions.get((site, cabinet, slot), ()))

    def samples(self, site: str, cabinet: str, slot: int) -> list[Sample]:
        with self._lock:
            return list(self._samples.get((site, cabinet, slot), ()))
