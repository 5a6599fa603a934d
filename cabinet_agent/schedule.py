"""A fixed-rate schedule: one tick every ``interval_s``; a slow cycle skips ahead, never bursts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

__all__ = ["ticks"]


async def ticks(interval_s: float,
                monotonic: Callable[[], float] = time.monotonic) -> AsyncIterator[float]:
    """Yield the monotonic time of each tick; the caller's work runs between two ticks."""
    if not interval_s > 0:
        raise ValueError("interval_s must be > 0")
    due = monotonic()
    while True:
        yield due
        now = monotonic()
        due += interval_s
        if due < now:  # the cycle took longer than the interval: start the next one now
            due = now
        await asyncio.sleep(due - now)
