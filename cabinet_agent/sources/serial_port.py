"""Finding a USB serial adapter again after it dropped out, and the timing of a serial line.

A USB adapter that drops out comes back as another ``/dev/ttyUSBn`` (field-lessons.md; optolink
-splitter#236). A port is therefore configured as a ``/dev/serial/by-id/…`` link, which udev points
at whatever node the adapter gets, or as a glob that must match exactly one device. It is resolved
again on every (re)open, never cached.
"""

from __future__ import annotations

import asyncio
import glob
import os
import time
from collections.abc import Callable

from ..common.errors import BusUnavailable

__all__ = [
    "LOOP_TIMER_LATENESS_S",
    "SilentInterval",
    "char_time_s",
    "frame_gap_s",
    "is_pattern",
    "resolve_port",
    "rtu_wire_time_s",
    "sleep_until",
]

_GLOB_CHARS = frozenset("*?[")
# How late an asyncio timer can fire on an idle machine (Python 3.11, epoll): selectors rounds the
# wait up to whole milliseconds, as ceil(ms) * 1e-3, a float a hair above n ms for some n (9, 13,
# 18, 26, ...), which select.epoll rounds up once more. So a timer is up to 2 ms late.
LOOP_TIMER_LATENESS_S = 0.002
# time.sleep (clock_nanosleep) wakes up to the kernel's timer slack (50 us) and a wake-up late; the
# last 0.1 ms of a wire wait are spun instead: at a few requests a second, a few hundred
# microseconds of CPU a second.
_SPIN_S = 0.0001


def is_pattern(port: str) -> bool:
    return any(c in _GLOB_CHARS for c in port)


def resolve_port(port: str) -> str:
    """The device node behind ``port`` (a path, a symlink such as by-id, or a glob) right now.

    Raises BusUnavailable when nothing (or, for a glob, more than one thing) is there.
    """
    if is_pattern(port):
        matches = sorted(glob.glob(port))
        if not matches:
            raise BusUnavailable(f"no serial device matches {port}")
        nodes = sorted({os.path.realpath(m) for m in matches})
        if len(nodes) > 1:
            # Two adapters match: guessing could talk to the wrong bus, so refuse.
            raise BusUnavailable(f"{port} matches {len(nodes)} devices ({', '.join(nodes)}); "
                                 f"use a /dev/serial/by-id/ path")
        return nodes[0]
    node = os.path.realpath(port)
    if not os.path.exists(node):
        raise BusUnavailable(f"serial device {port} is not there (adapter unplugged?)")
    return node


def char_time_s(baudrate: int, bits_per_char: int) -> float:
    return bits_per_char / baudrate


def frame_gap_s(baudrate: int, bits_per_char: int) -> float:
    """Modbus RTU's silent interval t3.5: 3.5 characters, fixed 1.75 ms above 19200 baud."""
    if baudrate > 19200:
        return 0.00175
    return 3.5 * char_time_s(baudrate, bits_per_char)


def rtu_wire_time_s(request_bytes: int, reply_bytes: int, baudrate: int, bits_per_char: int) -> float:
    """One transaction on the wire: request, t3.5, reply, t3.5 (hardware.md §3)."""
    return ((request_bytes + reply_bytes) * char_time_s(baudrate, bits_per_char)
            + 2 * frame_gap_s(baudrate, bits_per_char))


class SilentInterval:
    """The bus's t3.5 after its last frame, waited out exactly: the next frame starts neither
    inside it nor ~1-2 ms after it, where an asyncio timer alone would let it start
    (``LOOP_TIMER_LATENESS_S``), which is most of a gap.

    ``frame_ended(at)`` starts it. ``approach()`` lets the event loop sleep all but the last 2 ms;
    ``wait_out()``, called the moment before the next frame is written, waits out the rest
    (``sleep_until``). That blocks the loop for at most those 2 ms, on the bus's own schedule: its
    next request waits for them anyway. An interval already over (decoding the reply took the time)
    costs nothing.
    """

    def __init__(self, gap_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.gap_s = gap_s
        self._clock = clock
        self._until = 0.0

    @property
    def until(self) -> float:
        return self._until

    def frame_ended(self, at: float) -> None:
        self._until = at + self.gap_s

    async def approach(self) -> None:
        early = self._until - self._clock() - LOOP_TIMER_LATENESS_S
        if early > 0:
            await asyncio.sleep(early)

    def wait_out(self) -> None:
        sleep_until(self._until, self._clock)


def sleep_until(deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
    """Block until ``clock()`` reaches ``deadline``, to within a few microseconds: ``time.sleep``
    until 0.1 ms before it, then spin. For waits of a few milliseconds at most."""
    rest = deadline - clock() - _SPIN_S
    if rest > 0:
        time.sleep(rest)
    while clock() < deadline:
        pass
