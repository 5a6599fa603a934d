"""Silences: one-off, weekly recurring, and "technician on site" for one cabinet.

A silence mutes the notifications of every alert whose labels equal its matchers while it is
active; the alerts stay visible (flagged ``silenced``). Expiring a silence sets its end to now,
so the record stays for the audit trail.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

__all__ = ["Silence", "SilenceKind", "Weekly", "new_silence_id"]


class SilenceKind(StrEnum):
    SILENCE = "silence"
    TECHNICIAN = "technician"  # someone works on the cabinet: everything of it is muted


@dataclass(frozen=True, slots=True)
class Weekly:
    """Active on ``days`` (0 = Monday) from ``start`` to ``end`` local time; a window that passes
    midnight belongs to the day it starts on."""

    days: frozenset[int]
    start: time
    end: time
    timezone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        if not self.days or not all(0 <= d <= 6 for d in self.days):
            raise ValueError("days must be weekday numbers 0 (Monday) … 6 (Sunday)")
        if self.start == self.end:
            raise ValueError("a weekly window needs different start and end")
        ZoneInfo(self.timezone)  # raises for an unknown zone

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        t, day = local.time(), local.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= t < self.end
        yesterday = (local - timedelta(days=1)).weekday()
        return (day in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


def new_silence_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True, slots=True)
class Silence:
    matchers: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    kind: SilenceKind = SilenceKind.SILENCE
    weekly: Weekly | None = None
    created_at: datetime | None = None
    id: str = field(default_factory=new_silence_id)

    def __post_init__(self) -> None:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher (it would mute everything)")
        if self.ends_at < self.starts_at:  # equal: an expired silence that never began
            raise ValueError("ends_at must not be before starts_at")
        if not self.created_by.strip():
            raise ValueError("created_by is required")
        if self.kind is SilenceKind.TECHNICIAN and not {"site", "cabinet"} <= set(self.matchers):
            raise ValueError("'technician on site' is for one cabinet: needs site and cabinet")
        object.__setattr__(self, "matchers", MappingProxyType(dict(self.matchers)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(name) == value for name, value in self.matchers.items())

    def active(self, now: datetime) -> bool:
        if not self.starts_at <= now < self.ends_at:
            return False
        return self.weekly is None or self.weekly.contains(now)

    def expired(self, now: datetime) -> bool:
        return now >= self.ends_at
