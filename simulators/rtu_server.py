"""Modbus RTU slaves of a ``CabinetSim`` on a virtual serial port (pty), paced like a real wire.

A pty carries bytes at once, so the server keeps the wire's clock itself: a reply leaves when the
request, the silent interval t3.5, the slave's turnaround and the reply itself would have passed
at the configured baud rate (``RtuTiming``), and the bus stays busy for t3.5 after it. Requests
that arrive while the simulated bus is busy wait their turn, as they would behind a real one (and
are counted: a master that keeps t3.5 never sends one). A reply leaves on time, not on asyncio's
next millisecond or the one after: the loop's timer fires 2 ms early, ``time.sleep`` and a spin of
0.1 ms wait out the rest, so the simulator's own lateness is not charged to the agent it serves.

Faults per device (``DeviceFault``): DEAD never answers; GARBAGE answers with a broken CRC; STUCK
answers from a frozen state; ADDRESS_RESET answers at unit 1 (colliding with a device there).
``unplug()`` closes the pty like a USB adapter pulled out; ``replug(link)`` brings it back,
possibly under another path. When the agent's side of the line runs at another baud rate than the
simulated slaves, they hear noise and stay silent, which is what ``cabinet-agent scan`` relies on.

Everything here runs on the event loop's thread; the ``*_threadsafe`` methods are for others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from cabinet_agent.sources.serial_port import LOOP_TIMER_LATENESS_S, sleep_until

from .cabinet import CabinetSim, DeviceFault
from .loop_thread import on_loop
from .rtu_frames import (
    Request,
    RtuTiming,
    collide,
    corrupt,
    exception_reply,
    read_reply,
    split_request,
    write_reply,
)
from .slaves import SlaveSet
from .virtual_serial import VirtualSerialPort

__all__ = ["CabinetRtuServer"]

log = logging.getLogger(__name__)


class CabinetRtuServer:
    def __init__(self, sim: CabinetSim, link: Path, *, bus: str = "main", baudrate: int = 19200,
                 bits_per_char: int = 11, turnaround_s: float = 0.0) -> None:
        self.sim = sim
        self.bus = bus
        self.slaves = SlaveSet(sim, bus)
        self.timing = RtuTiming(baudrate, bits_per_char, turnaround_s)
        self.port = VirtualSerialPort(link)
        self.requests: Counter[int] = Counter()  # per unit, heard at the right baud rate
        self.replies: Counter[int] = Counter()
        self.ignored = 0  # heard at the wrong baud rate
        self.early = 0  # requests that began before t3.5 after the last frame had passed
        self.noise_bytes = 0  # bytes that started no valid frame
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        self._last_byte_at = 0.0
        self._bus_free_at = 0.0
        self._pending: set[asyncio.TimerHandle] = set()

    @property
    def link(self) -> Path:
        return self.port.link

    async def start(self) -> Path:
        self._loop = asyncio.get_running_loop()
        return self._plug(None)

    def _plug(self, link: Path | None) -> Path:
        assert self._loop is not None
        path = self.port.plug(link)
        assert self.port.master_fd is not None
        self._loop.add_reader(self.port.master_fd, self._readable)
        self._buffer.clear()
        log.info("RTU bus %s on %s -> %s at %d baud", self.bus, path, self.port.node,
                 self.timing.baudrate)
        return path

    def unplug(self) -> None:
        if not self.port.plugged:
            return
        assert self._loop is not None and self.port.master_fd is not None
        self._loop.remove_reader(self.port.master_fd)
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        self.port.unplug()
        log.info("RTU bus %s unplugged", self.bus)

    def replug(self, link: Path | None = None) -> Path:
        self.unplug()
        return self._plug(link)

    async def stop(self) -> None:
        self.unplug()

    def unplug_threadsafe(self) -> None:
        on_loop(self._loop, self.unplug)

    def replug_threadsafe(self, link: Path | None = None) -> Path:
        return on_loop(self._loop, self.replug, link)

    def status(self) -> dict[str, Any]:
        return {
            "kind": "rtu", "bus": self.bus, "link": str(self.link), "node": self.port.node,
            "plugged": self.port.plugged, "baudrate": self.timing.baudrate,
            "line_baudrate": self.port.line_baud(),
            "requests": {str(u): n for u, n in sorted(self.requests.items())},
            "replies": {str(u): n for u, n in sorted(self.replies.items())},
            "ignored_wrong_baud": self.ignored, "noise_bytes": self.noise_bytes,
            "early_requests": self.early,
        }

    # -- the wire --------------------------------------------------------------------------------

    def _readable(self) -> None:
        data = self.port.read()
        now = self._now()
        if not data:
            return
        # A frame's bytes follow each other closely; after t3.5 of silence, leftovers are noise.
        if self._buffer and now - self._last_byte_at > self.timing.gap_s:
            self.noise_bytes += len(self._buffer)
            self._buffer.clear()
        self._last_byte_at = now
        self._buffer += data
        while self._buffer:
            used, request = split_request(bytes(self._buffer))
            if used == 0:
                break
            frame = bytes(self._buffer[:used])
            del self._buffer[:used]
            if request is None:
                self.noise_bytes += used
                continue
            self._on_request(request.unit, request, frame, now)

    def _on_request(self, unit: int, request: Request, frame: bytes, received_at: float) -> None:
        line_baud = self.port.line_baud()
        early = received_at < self._bus_free_at
        start = max(received_at, self._bus_free_at)
        heard_until = start + self.timing.frame_s(request.size) + self.timing.gap_s
        if line_baud is not None and line_baud != self.timing.baudrate:
            self.ignored += 1  # at the wrong baud rate the slaves hear noise
            self._bus_free_at = heard_until
            return
        self.requests[unit] += 1
        self.early += early
        reply = self._reply(unit, request, frame)
        if reply is None:
            self._bus_free_at = heard_until
            return
        self.replies[unit] += 1
        reply_at = heard_until + self.timing.turnaround_s + self.timing.frame_s(len(reply))
        self._bus_free_at = reply_at + self.timing.gap_s
        self._send_at(reply_at, reply)

    def _send_at(self, when: float, reply: bytes) -> None:
        assert self._loop is not None
        handle: asyncio.TimerHandle

        def send() -> None:
            self._pending.discard(handle)
            sleep_until(when, self._now)  # at most 2 ms, which the bus waits for this reply anyway
            self.port.write(reply)

        handle = self._loop.call_at(when - LOOP_TIMER_LATENESS_S, send)
        self._pending.add(handle)

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()  # time.monotonic, the clock call_at schedules on

    def _reply(self, unit: int, request: Request, frame: bytes) -> bytes | None:
        if unit == 0:
            return None  # broadcast: nobody answers
        names = self.slaves.answering(unit)
        if not names:
            return None
        frames = [self._answer(name, unit, request, frame) for name in names]
        if len(frames) > 1:
            return collide(frames)
        if self.slaves.fault(names[0]) is DeviceFault.GARBAGE:
            return corrupt(frames[0])
        return frames[0]

    def _answer(self, name: str, unit: int, request: Request, frame: bytes) -> bytes:
        if request.is_write:
            code = self.slaves.write(name, request.function, request.address, list(request.values))
            if code is not None:
                return exception_reply(unit, request.function, code)
            return write_reply(request, frame)
        raw = self.slaves.read(name, request.function, request.address, request.count)
        if isinstance(raw, int):
            return exception_reply(unit, request.function, raw)
        return read_reply(unit, request.function, raw)
