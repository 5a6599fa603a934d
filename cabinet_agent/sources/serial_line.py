"""Microcontroller boards that send one reading per line (``docs/serial-line-protocol.md``).

The board talks by itself, so the port is read as bytes arrive (``loop.add_reader``, no thread) and
every reading is stamped with its arrival time. A poll returns what is fresh: a reading older than
the profile's ``max_age_s`` is unknown, never the last value. Lines that fail the checksum or the
syntax are dropped and counted (``counters()``), never raised.

A vanished adapter is handled as on an RTU bus: close, then reopen on a back-off schedule, resolving
the configured port (by-id link or glob) again each time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import serial

from ..common.backoff import Backoff
from ..common.errors import BusUnavailable, ConfigError, StaleData
from ..config import DeviceOptions, LineBus
from ..line_profile import LineProfile
from ..line_protocol import LineDecoder, LineReading
from ..registers import AnyProfile, Value
from .base import TRANSPORTS, DeviceSource, Readings
from .serial_port import resolve_port

__all__ = ["LineBoard", "SerialLineBus"]

log = logging.getLogger(__name__)

REJECTION_LOG_INTERVAL_S = 60.0  # a noisy line is logged once a minute, not once a line
_READ_CHUNK = 4096


class LineBoard:
    """The ``DeviceSource`` of a line board: the freshest value of every polled point."""

    def __init__(self, name: str, bus: SerialLineBus, profile: LineProfile, points: set[str],
                 monotonic: Callable[[], float]) -> None:
        self.name = name
        self.profile = profile
        self._bus = bus
        self._points = [p for p in profile.points if p.name in points]
        self._monotonic = monotonic
        self.decoder = LineDecoder(profile)
        self._latest: dict[tuple[str, int | None], tuple[Value, float]] = {}
        self._last_valid = -1.0
        self._logged_rejections = 0
        self._logged_at = -REJECTION_LOG_INTERVAL_S

    def feed(self, data: bytes) -> None:
        now = self._monotonic()
        for reading in self.decoder.feed(data):
            self._store(reading, now)
        self._log_rejections(now)

    def _store(self, reading: LineReading, now: float) -> None:
        self._latest[(reading.point, reading.channel)] = (reading.value, now)
        self._last_valid = now

    def port_closed(self) -> None:
        self.decoder.reset()
        self._latest.clear()  # what came before the gap is not a reading of now

    def counters(self) -> dict[str, int]:
        """Lines accepted and rejected (by reason) since start."""
        return {"accepted": self.decoder.accepted,
                **{f"rejected_{reason.value}": n for reason, n in self.decoder.rejected.items()}}

    def _log_rejections(self, now: float) -> None:
        total = self.decoder.rejected_total
        if total > self._logged_rejections and now - self._logged_at >= REJECTION_LOG_INTERVAL_S:
            log.warning("device %s: %d line(s) rejected so far, last: %s", self.name, total,
                        self.decoder.last_rejection)
            self._logged_rejections, self._logged_at = total, now

    async def read(self) -> Readings:
        opened_at = self._bus.ensure_open()
        now = self._monotonic()
        max_age = self.profile.max_age_s

        def fresh(key: tuple[str, int | None]) -> Value:
            value, at = self._latest.get(key, (None, -1e18))
            return value if now - at <= max_age else None

        if now - self._last_valid > max_age and now - opened_at > max_age:
            rejected = self.decoder.rejected_total
            detail = f"; {rejected} line(s) rejected, last: {self.decoder.last_rejection}" \
                if rejected else ""
            raise StaleData(f"no valid line for over {max_age:g} s{detail}")
        values: Readings = {}
        for point in self._points:
            if point.count > 1:
                values[point.name] = [fresh((point.name, i)) for i in range(point.count)]
            else:
                values[point.name] = fresh((point.name, None))
        return values


class SerialLineBus:
    """One serial port with one board on it."""

    def __init__(self, name: str, config: LineBus, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._config = config
        self._monotonic = monotonic
        self._board: LineBoard | None = None
        self._serial: serial.Serial | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opened_at = 0.0
        self._backoff = Backoff(config.reopen_min_s, config.reopen_max_s)
        self._reopen_at = 0.0
        self._down: str | None = None
        self.node: str | None = None

    def device(self, name: str, profile: AnyProfile, address: int | None, points: set[str],
               options: DeviceOptions | None) -> DeviceSource:
        if not isinstance(profile, LineProfile):
            raise ConfigError(f"device {name}: profile {profile.name} is a Modbus device; a bus "
                              f"with transport = \"line\" carries one line board")
        if self._board is not None:
            raise ConfigError(f"bus {self.name}: carries {self._board.name} already; a serial line "
                              f"has one board")
        if options is not None and (options.timeout_s is not None or options.retries is not None):
            raise ConfigError(f"devices.{name}: a line board is not asked, so it takes no timeout_s "
                              f"or retries (its profile's max_age_s says when it counts as silent)")
        self._board = LineBoard(name, self, profile, points, self._monotonic)
        return self._board

    def ensure_open(self) -> float:
        """Open the port if it is closed and due; returns when it was opened. Raises BusUnavailable."""
        if self._serial is not None:
            return self._opened_at
        now = self._monotonic()
        if now < self._reopen_at:
            raise BusUnavailable(f"bus {self.name}: {self._down}; next attempt in "
                                 f"{self._reopen_at - now:.1f} s")
        cfg = self._config
        try:
            node = resolve_port(cfg.port)
            port = serial.Serial(node, baudrate=cfg.baudrate, bytesize=cfg.bytesize,
                                 parity=cfg.parity, stopbits=cfg.stopbits, timeout=0,
                                 exclusive=True)
        except (BusUnavailable, serial.SerialException, OSError, ValueError) as exc:
            self._down = str(exc)
            self._reopen_at = self._monotonic() + self._backoff.next_delay()
            raise BusUnavailable(f"bus {self.name}: {exc}") from None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(port.fileno(), self._readable)
        self._serial, self.node, self._down = port, node, None
        self._opened_at = self._monotonic()
        self._backoff.reset()
        log.info("bus %s: reading lines from %s (port %s)", self.name, node, cfg.port)
        return self._opened_at

    def _readable(self) -> None:
        port = self._serial
        if port is None:
            return
        try:
            data = port.read(_READ_CHUNK)
        except (serial.SerialException, OSError) as exc:
            self._drop(f"adapter gone: {exc}")
            return
        if data and self._board is not None:
            self._board.feed(data)

    def _drop(self, reason: str) -> None:
        self._close_port()
        log.warning("bus %s: %s (%s)", self.name, reason, self.node or self._config.port)
        self._down = reason
        self._reopen_at = self._monotonic()

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            if self._loop is not None:
                self._loop.remove_reader(port.fileno())
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:
                log.debug("bus %s: closing %s: %s", self.name, self.node, exc)
        if self._board is not None:
            self._board.port_closed()

    async def close(self) -> None:
        self._close_port()


TRANSPORTS.register("line", SerialLineBus)
