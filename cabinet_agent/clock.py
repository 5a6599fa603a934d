"""Is the system clock synchronised? A Raspberry Pi has no RTC and may boot with a wrong time."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from datetime import UTC, datetime

__all__ = ["ClockStatus", "utcnow"]

_TIME_ERROR = 5  # adjtimex(2): returned while the kernel's STA_UNSYNC flag is set
_TIMESYNCD_FLAG = "/run/systemd/timesync/synchronized"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ClockStatus:
    """Asks the kernel (adjtimex, read-only) and systemd-timesyncd; cached for ``ttl_s``."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self._ttl = ttl_s
        self._checked_at = -1e18
        self._synced = False
        libc_name = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(libc_name, use_errno=True) if libc_name else None

    def _query(self) -> bool:
        if os.path.exists(_TIMESYNCD_FLAG):
            return True
        if self._libc is None:
            return False
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        try:
            state = int(self._libc.adjtimex(buf))
        except (OSError, AttributeError):
            return False
        return state not in (-1, _TIME_ERROR)

    def synced(self, monotonic_now: float) -> bool:
        if monotonic_now - self._checked_at >= self._ttl:
            self._synced = self._query()
            self._checked_at = monotonic_now
        return self._synced
