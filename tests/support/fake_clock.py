"""A clock a test moves by hand: ``clock.now += timedelta(...)``; called, it says the time."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["START", "FakeClock"]

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now
