"""Scripted cabinet life: what happens when, independent of the cabinet's state.

A scenario only produces timed events; ``CabinetSim`` applies them (a "take" of an empty slot
does nothing). Each day's plan comes from its own ``random.Random`` seeded with the scenario
seed and the date, so the events are the same however the caller slices time into windows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Protocol

__all__ = ["EventKind", "Scenario", "ScenarioEvent", "SchoolDay"]


class EventKind(StrEnum):
    TAKE = "take"  # a pupil takes the iPad out of its slot
    RETURN = "return"  # the iPad comes back, ``drain`` lower than it left
    DOOR = "door"  # the door opens (``door_open``) or closes


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    at: datetime
    kind: EventKind
    slot: int | None = None  # 1-based, for TAKE and RETURN
    drain: float = 0.0  # share of capacity used while away, for RETURN
    door_open: bool | None = None  # for DOOR


class Scenario(Protocol):
    name: str

    def events_between(self, start: datetime, end: datetime) -> list[ScenarioEvent]:
        """Events with ``start <= at < end``, in time order."""
        ...


@dataclass(frozen=True, slots=True)
class _Window:
    opens: time
    minutes: int


class SchoolDay:
    """Monday to Friday: iPads leave in the morning and come back after lessons, some not at all.

    All times and shares are GUESSes of an ordinary German school day: the cabinet opens at 07:50
    for a quarter of an hour, classes bring their iPads back at 11:30, 13:15 or 15:00, and each
    return window also opens the door for a quarter of an hour.
    """

    name = "school-day"
    MORNING = _Window(time(7, 50), 15)
    RETURNS = (_Window(time(11, 30), 15), _Window(time(13, 15), 15), _Window(time(15, 0), 15))

    def __init__(self, seed: int, slots: int, *, take_share: float = 0.9,
                 not_returned_share: float = 0.05, drain: tuple[float, float] = (0.15, 0.55)) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        if not (0 <= take_share <= 1 and 0 <= not_returned_share <= 1):
            raise ValueError("take_share and not_returned_share must be in [0, 1]")
        if not 0 <= drain[0] <= drain[1] <= 1:
            raise ValueError("drain must be (low, high) with 0 <= low <= high <= 1")
        self.seed = seed
        self.slots = slots
        self.take_share = take_share
        self.not_returned_share = not_returned_share
        self.drain = drain
        # A day's plan depends only on the day: made once (a cabinet asks at every advance).
        self._plans: dict[tuple[date, tzinfo | None], list[ScenarioEvent]] = {}

    def events_between(self, start: datetime, end: datetime) -> list[ScenarioEvent]:
        events: list[ScenarioEvent] = []
        day = start.date()
        while day <= end.date():
            events.extend(e for e in self.plan(day, start.tzinfo) if start <= e.at < end)
            day += timedelta(days=1)
        return events

    def plan(self, day: date, tz: tzinfo | None = None) -> list[ScenarioEvent]:
        """Every event of ``day``, whether or not it applies to the cabinet's state then."""
        key = (day, tz)
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) > 64:  # a long run: keep the memory flat
                self._plans.clear()
            found = self._plans[key] = self._plan(day, tz)
        return list(found)

    def _plan(self, day: date, tz: tzinfo | None) -> list[ScenarioEvent]:
        if day.weekday() >= 5:
            return []
        # A string seed is hashed with SHA-512 by random.Random: stable across runs and machines.
        rng = random.Random(f"school-day:{self.seed}:{day.isoformat()}")

        def at(window: _Window, minute: float) -> datetime:
            moment = datetime.combine(day, window.opens, tzinfo=tz)
            return moment + timedelta(minutes=minute)

        events: list[ScenarioEvent] = []
        for window in (self.MORNING, *self.RETURNS):
            events.append(ScenarioEvent(at(window, 0), EventKind.DOOR, door_open=True))
            events.append(ScenarioEvent(at(window, window.minutes), EventKind.DOOR,
                                        door_open=False))
        for slot in range(1, self.slots + 1):
            # Draw every number for every slot, so one slot's plan never shifts another's.
            take = rng.random() < self.take_share
            take_minute = rng.uniform(1, self.MORNING.minutes - 1)
            window = self.RETURNS[rng.randrange(len(self.RETURNS))]
            back_minute = rng.uniform(1, window.minutes - 1)
            returned = rng.random() >= self.not_returned_share
            drain = rng.uniform(*self.drain)
            if take:
                events.append(ScenarioEvent(at(self.MORNING, take_minute), EventKind.TAKE, slot))
            # A return also brings back an iPad forgotten on an earlier day.
            if returned:
                events.append(ScenarioEvent(at(window, back_minute), EventKind.RETURN, slot,
                                            drain=drain))
        events.sort(key=lambda e: e.at)
        return events
