"""Times and durations on the dashboard's pages: local time (the organisation's zone,
Europe/Berlin), German by default. The formatting itself is ``server.formatting`` (Babel), the one
layer every surface shares; this module keeps the names the pages and templates use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ..formatting import duration as duration_text
from ..formatting import long_time, short_time
from ..i18n import Language

__all__ = ["LocalTimes", "duration_text", "long_time", "short_time"]


@dataclass(frozen=True, slots=True)
class LocalTimes:
    """What a page needs to show times: the zone, the language and the page's now."""

    zone: ZoneInfo
    lang: Language
    now: datetime

    def short(self, moment: datetime | None) -> str:
        return short_time(moment, self.zone, self.now, self.lang)

    def long(self, moment: datetime | None) -> str:
        return long_time(moment, self.zone, self.lang)

    def duration(self, seconds: float) -> str:
        return duration_text(seconds, self.lang)
