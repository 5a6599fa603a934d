"""systemd's notify protocol, spoken directly: READY, STOPPING, WATCHDOG over a datagram socket.

No dependency: the protocol is one ``KEY=VALUE`` datagram to the socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for a Linux abstract socket). Outside systemd the
variable is unset and every call does nothing.

The watchdog ping is rate-limited to a quarter of ``$WATCHDOG_USEC`` and must be called from the
poll loop itself: a loop that hangs stops pinging and systemd restarts the service
(``WatchdogSec=`` in deploy/systemd/cabinet-agent.service).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

__all__ = ["SdNotifier"]

log = logging.getLogger(__name__)


def _address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()  # abstract namespace: a leading NUL byte, no file
    if raw.startswith("/"):
        return raw
    return None  # vsock and other addresses are not used on a Pi


def _watchdog_s(environ: Mapping[str, str]) -> float | None:
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):  # meant for another process (e.g. a wrapper)
        return None
    return int(usec) / 1_000_000


class SdNotifier:
    """Sends notify messages to systemd; every method is a no-op when not under systemd."""

    def __init__(self, address: str | bytes | None, watchdog_s: float | None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._address = address
        self.watchdog_s = watchdog_s if address is not None else None
        self._monotonic = monotonic
        self._last_ping: float | None = None
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SdNotifier:
        env = os.environ if environ is None else environ
        return cls(_address(env.get("NOTIFY_SOCKET", "")), _watchdog_s(env))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` as one datagram; False (logged once) when it cannot be delivered."""
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            if not self._warned:  # systemd gone or the socket not ours: say so once, run on
                log.warning("sd_notify to %r failed: %s", self._address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """Ping the watchdog, at most every quarter of its period; call it from the poll loop."""
        if self.watchdog_s is None:
            return False
        now = self._monotonic()
        if self._last_ping is not None and now - self._last_ping < self.watchdog_s / 4:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")
