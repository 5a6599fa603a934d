"""Finding a USB serial adapter again after it dropped out, and the timing of a serial line.

A USB adapter that drops out comes back as another ``/dev/ttyUSBn`` (field-lessons.md; optolink
-splitter#236). A port is therefore configured as a ``/dev/serial/by-id/…`` link, which udev points
at whatever node the adapter gets, or as a glob that must match exactly one device. It is resolved
again on every (re)open, never cached.
"""

from __future__ import annotations

import glob
import os

from ..errors import BusUnavailable

__all__ = ["char_time_s", "frame_gap_s", "is_pattern", "resolve_port", "rtu_wire_time_s"]

_GLOB_CHARS = frozenset("*?[")


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
