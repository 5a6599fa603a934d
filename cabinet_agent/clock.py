"""Is the system clock synchronised? A Raspberry Pi has no RTC and may boot with a wrong time.

systemd-timesyncd's flag file answers without any library; only without it is the kernel asked
(adjtimex through ctypes, loaded then: ctypes costs the agent ~0.4 MB of RSS it need not carry).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

__all__ = ["ClockStatus", "utcnow"]

_TIME_ERROR = 5  # adjtimex(2): returned while the kernel's STA_UNSYNC flag is set
_TIMESYNCD_FLAG = "/run/systemd/timesync/synchronized"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ClockStatus:
    """Asks the kernel (adjtimex, read-only) and systemd-timesyncd; cached for ``ttl_s``.
    ``trusted``: the installer says the clock is right (``[clock] trust_system_clock``); asks
    nobody."""

    def __init__(self, ttl_s: float = 60.0, trusted: bool = False) -> None:
        self._trusted = trusted
        self._ttl = ttl_s
        self._checked_at = -1e18
        self._synced = False

    def _query(self) -> bool:
        if os.path.exists(_TIMESYNCD_FLAG):
            return True
        return _adjtimex_synced()

    def synced(self, monotonic_now: float) -> bool:
        if self._trusted:
            return True
        if monotonic_now - self._checked_at >= self._ttl:
            self._synced = self._query()
            self._checked_at = monotonic_now
        return self._synced


_libc: Any = None


def _adjtimex_synced() -> bool:
    """The kernel's view (adjtimex(2), read only): False while STA_UNSYNC is set, or if unknown."""
    global _libc
    import ctypes  # only here, see the module docstring

    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)  # the symbols already loaded: libc's
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = int(_libc.adjtimex(buf))
    except (OSError, AttributeError):
        return False
    return state not in (-1, _TIME_ERROR)
