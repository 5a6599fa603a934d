"""The line protocol of microcontroller boards (``docs/serial-line-protocol.md``), pure: no I/O.

One reading per line, NMEA style::

    $power.3,12.5*2C\r\n

``$``, a key (``name`` or ``name.N`` for channel N), a comma, a value (a decimal number, ``0``/``1``
for a contact, ``nan`` or nothing for "unknown"), ``*`` and the XOR of every byte between ``$`` and
``*`` as two hex digits. ``LineDecoder`` turns a byte stream into readings of a ``LineProfile``;
every line it cannot use is counted by reason and dropped, nothing raises.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from .line_profile import LineProfile

__all__ = [
    "MAX_LINE_BYTES",
    "LineDecoder",
    "LineReading",
    "LineRejected",
    "Rejected",
    "checksum",
    "format_line",
    "format_value",
    "parse_line",
]

MAX_LINE_BYTES = 82  # NMEA 0183's limit, "$" to "\n" inclusive; longer lines are garbage

_BODY = re.compile(rb"(?P<key>[a-z][a-z0-9_]{0,31})(?:\.(?P<channel>0|[1-9][0-9]{0,2}))?,"
                   rb"(?P<value>[^,]*)")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")


class Rejected(StrEnum):
    """Why a line was dropped. Each reason has its own counter."""

    TOO_LONG = "too_long"  # no line end within MAX_LINE_BYTES
    NOT_ASCII = "not_ascii"  # a byte outside printable ASCII: line noise, wrong baud rate
    NO_START = "no_start"  # does not begin with "$": usually the tail of a cut line
    NO_CHECKSUM = "no_checksum"  # no "*XX" at the end
    BAD_CHECKSUM = "bad_checksum"
    SYNTAX = "syntax"  # not key,value
    UNKNOWN_KEY = "unknown_key"  # the profile has no such point
    BAD_CHANNEL = "bad_channel"  # channel missing, superfluous, or out of range
    BAD_VALUE = "bad_value"  # not a number, or not 0/1 for a contact
    CUT = "cut"  # the port closed in the middle of a line


class LineRejected(ValueError):
    def __init__(self, reason: Rejected, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LineReading:
    point: str
    channel: int | None
    value: float | bool | None  # None: the board says it has no reading


def checksum(body: bytes) -> int:
    """XOR of every byte of ``body`` (the bytes between ``$`` and ``*``)."""
    result = 0
    for byte in body:
        result ^= byte
    return result


def format_line(key: str, value: str, channel: int | None = None) -> bytes:
    """One complete line, ``$key[.channel],value*XX\\r\\n``."""
    body = f"{key}.{channel},{value}" if channel is not None else f"{key},{value}"
    raw = body.encode("ascii")
    return b"$" + raw + b"*" + f"{checksum(raw):02X}".encode() + b"\r\n"


def format_value(value: float | bool | None, decimals: int = 1, scale: float = 1.0) -> str:
    """How a board writes a value: ``nan`` for unknown, ``0``/``1`` for a contact."""
    if value is None:
        return "nan"
    if isinstance(value, bool):
        return "1" if value else "0"
    return f"{value / scale:.{decimals}f}"


def parse_line(line: bytes) -> tuple[str, int | None, str]:
    """``(key, channel, value text)`` of one line without its ``\\n``; raises LineRejected."""
    if len(line) + 1 > MAX_LINE_BYTES:
        raise LineRejected(Rejected.TOO_LONG, f"{len(line) + 1} bytes")
    if line.endswith(b"\r"):
        line = line[:-1]
    if any(byte < 0x20 or byte > 0x7E for byte in line):
        raise LineRejected(Rejected.NOT_ASCII)
    if not line.startswith(b"$"):
        raise LineRejected(Rejected.NO_START)
    star = line.rfind(b"*")
    if star < 0 or len(line) - star != 3:
        raise LineRejected(Rejected.NO_CHECKSUM)
    body, sent = line[1:star], line[star + 1:]
    try:
        expected = int(sent, 16)
    except ValueError:
        raise LineRejected(Rejected.NO_CHECKSUM, f"{sent!r} is not hex") from None
    if checksum(body) != expected:
        raise LineRejected(Rejected.BAD_CHECKSUM, f"sent {expected:02X}, line has {checksum(body):02X}")
    match = _BODY.fullmatch(body)
    if match is None:
        raise LineRejected(Rejected.SYNTAX, body.decode("ascii"))
    channel = int(match["channel"]) if match["channel"] is not None else None
    return match["key"].decode("ascii"), channel, match["value"].decode("ascii")


def _interpret(profile: LineProfile, key: str, channel: int | None, text: str) -> LineReading:
    try:
        point = profile.point(key)
    except KeyError:
        raise LineRejected(Rejected.UNKNOWN_KEY, key) from None
    if point.count > 1:
        if channel is None or channel >= point.count:
            raise LineRejected(Rejected.BAD_CHANNEL, f"{key} has channels 0..{point.count - 1}")
    elif channel is not None:
        raise LineRejected(Rejected.BAD_CHANNEL, f"{key} has no channels")
    if text == "" or text.lower() == "nan":
        return LineReading(key, channel, None)
    if point.is_bool:
        if text not in ("0", "1"):
            raise LineRejected(Rejected.BAD_VALUE, f"{key} takes 0 or 1, not {text!r}")
        return LineReading(key, channel, text == "1")
    if not _NUMBER.fullmatch(text):
        raise LineRejected(Rejected.BAD_VALUE, f"{key}: {text!r} is not a number")
    return LineReading(key, channel, round(float(text) * point.scale, 6))


@dataclass
class LineDecoder:
    """Bytes in, readings out. Lines may arrive in any pieces; a line that does not fit is dropped
    and counted in ``rejected``. Empty lines are ignored (some boards send them as keep-alive)."""

    profile: LineProfile
    accepted: int = 0
    rejected: Counter[Rejected] = field(default_factory=Counter)
    last_rejection: str | None = None
    _pending: bytearray = field(default_factory=bytearray, repr=False)
    _discarding: bool = False  # inside an over-long line: drop everything up to its end

    def feed(self, data: bytes) -> list[LineReading]:
        readings: list[LineReading] = []
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if not self._discarding:
                self._pending += piece
                if len(self._pending) + 1 > MAX_LINE_BYTES:
                    self._reject(LineRejected(Rejected.TOO_LONG, f"over {MAX_LINE_BYTES} bytes"))
                    self._pending.clear()
                    self._discarding = True
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            else:
                line = bytes(self._pending)
                self._pending.clear()
                reading = self._line(line)
                if reading is not None:
                    readings.append(reading)
            start = end + 1
        return readings

    def reset(self) -> None:
        """The port closed: a line in the middle of arriving is lost (and counted)."""
        if self._pending.strip():
            self._reject(LineRejected(Rejected.CUT, f"{len(self._pending)} bytes"))
        self._pending.clear()
        self._discarding = False

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def _line(self, line: bytes) -> LineReading | None:
        if line in (b"", b"\r"):
            return None
        try:
            reading = _interpret(self.profile, *parse_line(line))
        except LineRejected as exc:
            self._reject(exc)
            return None
        self.accepted += 1
        return reading

    def _reject(self, exc: LineRejected) -> None:
        self.rejected[exc.reason] += 1
        self.last_rejection = str(exc)
