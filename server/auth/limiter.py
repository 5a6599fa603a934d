"""Login rate limiting per (user name, client address) and per client address; never per user
name alone.

A limit on the user name alone lets anyone anywhere lock a teacher out by typing wrong passwords
for her name (OWASP, Authentication Cheat Sheet: account lockout as denial of service). So:

* per (user, address): ``per_pair`` failures within ``window_s``, then a pause for that pair only.
  The same user from another address is not affected;
* per address: ``per_address`` failures (any names) within ``window_s``, against one address
  trying many names (password spraying). A success does not reset it, so an attacker with an
  account of their own cannot wipe their tally. It is set high enough for a school behind one
  NAT address;
* per user, over all addresses: counted up to ``user_alarm``, never blocking (``failed`` returns
  it, the caller logs it). Many addresses guessing one password are met by long passwords and an
  admin reading the log, not by locking the owner out.

An attempt counts as a failure from the moment it is let through (``acquire``) until it is known
to have succeeded, so parallel requests cannot all pass the check before the first failure is
recorded. Memory is bounded: each key keeps at most its limit of timestamps, keys expire a window
after their last failure, and each table keeps at most ``max_keys`` (the least recently failed go
first). IPv6 clients are counted per /64, the block one household or host usually has.

Pure apart from the monotonic clock, which is passed in. Thread-safe: called from the event loop
and from request threads.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

__all__ = ["LoginLimiter", "address_key"]

MAX_NAME: Final = 200  # a key never holds more of a typed user name than this


def address_key(host: str | None) -> str:
    """The address a client is counted under: IPv4 as is, IPv6 by its /64 (an IPv4-mapped IPv6
    address as the IPv4 address), anything else (no address known) as one shared key."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return "?"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _name_key(name: str) -> str:
    return name.strip().lower()[:MAX_NAME]


class _Window:
    """Failure times per key within a sliding window; at most ``limit`` per key, ``max_keys`` keys."""

    def __init__(self, limit: int, window_s: float, max_keys: int) -> None:
        self.limit = limit
        self._window = window_s
        self._max_keys = max_keys
        self._times: OrderedDict[str, deque[float]] = OrderedDict()  # least recently failed first

    def _expire(self, now: float) -> None:
        while self._times:
            key, times = next(iter(self._times.items()))
            if times and now - times[-1] < self._window:
                return
            del self._times[key]

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may fail again; 0 = now."""
        times = self._times.get(key)
        if times is None:
            return 0.0
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) < self.limit:
            return 0.0
        return self._window - (now - times[0])

    def add(self, key: str, now: float) -> int:
        """Record a failure; returns the failures of ``key`` within the window."""
        self._expire(now)
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = deque(maxlen=self.limit)
        else:
            self._times.move_to_end(key)
        while times and now - times[0] >= self._window:
            times.popleft()
        times.append(now)
        while len(self._times) > self._max_keys:
            self._times.popitem(last=False)
        return len(times)

    def take_back(self, key: str) -> None:
        """Undo the latest ``add`` of ``key`` (an attempt that turned out to succeed)."""
        times = self._times.get(key)
        if times:
            times.pop()

    def forget(self, key: str) -> None:
        self._times.pop(key, None)

    def __len__(self) -> int:
        return len(self._times)


class LoginLimiter:
    def __init__(self, per_pair: int = 5, per_address: int = 30, window_s: float = 300.0,
                 max_keys: int = 10_000, user_alarm: int = 20,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if min(per_pair, per_address, max_keys, user_alarm) < 1 or window_s <= 0:
            raise ValueError("login limits must be positive")
        self._now = monotonic
        self._lock = threading.Lock()
        self._pairs = _Window(per_pair, window_s, max_keys)
        self._addresses = _Window(per_address, window_s, max_keys)
        self._users = _Window(user_alarm, window_s, max_keys)  # counted, never blocking

    def acquire(self, name: str, address: str) -> float:
        """0: go ahead (the attempt counts as a failure until ``succeeded``); else the seconds
        to wait before this user may try again from this address."""
        pair, now = (_name_key(name), address), self._now()
        with self._lock:
            wait = max(self._pairs.wait(repr(pair), now), self._addresses.wait(address, now))
            if wait > 0:
                return wait
            self._pairs.add(repr(pair), now)
            self._addresses.add(address, now)
            return 0.0

    def succeeded(self, name: str, address: str) -> None:
        """The attempt let through by ``acquire`` succeeded: forget this pair's failures and the
        attempt; earlier failures of the address stay."""
        with self._lock:
            self._pairs.forget(repr((_name_key(name), address)))
            self._addresses.take_back(address)

    def cancel(self, name: str, address: str) -> None:
        """The attempt let through by ``acquire`` was not tried after all: it does not count."""
        with self._lock:
            self._pairs.take_back(repr((_name_key(name), address)))
            self._addresses.take_back(address)

    def failed(self, name: str) -> int:
        """The attempt let through by ``acquire`` failed (it is already counted against the pair
        and the address). Returns the user's failures from all addresses within the window, at most
        ``user_alarm``."""
        with self._lock:
            return self._users.add(_name_key(name), self._now())

    def keys(self) -> int:
        """How many keys are kept (bounded by 3 × ``max_keys``)."""
        with self._lock:
            return len(self._pairs) + len(self._addresses) + len(self._users)
