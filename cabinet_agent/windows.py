"""Charging windows: some cabinets charge only at night, or switch shelves in turn.

Outside a window no slot is expected to draw, so "not charging" means nothing there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["ChargingWindows"]

_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class _Window:
    start: int  # minutes after midnight
    end: int  # exclusive, up to 1440

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # across midnight, e.g. 22:00-06:00


@dataclass(frozen=True)
class ChargingWindows:
    """``always`` when no window is configured; otherwise local-time windows like ``22:00-06:00``."""

    windows: tuple[_Window, ...] = ()
    timezone: str = "Europe/Berlin"

    @classmethod
    def parse(cls, texts: list[str], timezone: str = "Europe/Berlin") -> ChargingWindows:
        parsed = []
        for text in texts:
            match = _WINDOW.match(text.strip())
            if not match:
                raise ValueError(f"charging window {text!r} is not HH:MM-HH:MM")
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if h1 > 23 or m1 > 59 or m2 > 59 or end > 1440:
                raise ValueError(f"charging window {text!r}: no such time of day")
            if start == end % 1440 and not (start == 0 and end == 1440):
                raise ValueError(f"charging window {text!r} is empty")
            parsed.append(_Window(start, end))
        ZoneInfo(timezone)  # raises for an unknown zone
        return cls(tuple(parsed), timezone)

    def active(self, now: datetime) -> bool:
        if not self.windows:
            return True
        local = now.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        return any(w.contains(minute) for w in self.windows)
