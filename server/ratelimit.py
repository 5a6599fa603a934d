"""Log a flood of similar problems as a few lines plus a count of what was held back."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimitedLogger"]


class RateLimitedLogger:
    """At most ``burst`` lines per ``key`` and ``interval_s``; then one summary of the suppressed.

    A broken or hostile publisher can send thousands of bad messages a second; logging each would
    cost more than rejecting it and bury everything else in the log.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        interval_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # key -> [window start, lines logged in window, lines suppressed in window]
        self._windows: dict[str, list[float]] = {}

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log unless ``key`` used up its burst; returns whether the line was written."""
        now = self._monotonic()
        with self._lock:
            window = self._windows.get(key)
            suppressed = 0
            if window is None or now - window[0] >= self._interval_s:
                suppressed = int(window[2]) if window is not None else 0
                window = [now, 0, 0]
                self._windows[key] = window
            if window[1] >= self._burst:
                window[2] += 1
                return False
            window[1] += 1
        if suppressed:
            self._logger.log(level, "%s: %d similar messages suppressed in the last window",
                             key, suppressed)
        self._logger.log(level, msg, *args)
        return True
