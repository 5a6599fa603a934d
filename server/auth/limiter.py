"""Login rate limiting: a few failures per client address and per user name, then a pause.

Both keys count, so that one address cannot try many names and many addresses cannot try one
name quickly. Pure apart from the monotonic clock, which is passed in.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginLimiter"]


class LoginLimiter:
    def __init__(self, max_failures: int = 5, window_s: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._max = max_failures
        self._window = window_s
        self._now = monotonic
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed for all ``keys``; 0 = allowed now."""
        now = self._now()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if len(times) >= self._max:
                    wait = max(wait, self._window - (now - times[0]))
        return wait

    def failed(self, *keys: str) -> None:
        now = self._now()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # bounded: forget the quiet keys
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
