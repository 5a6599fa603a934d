"""A microcontroller board of a ``CabinetSim`` that sends its readings as lines on a pty.

Speaks ``docs/serial-line-protocol.md`` with the agent's own formatter: every ``period_s`` one line
per reading (``$power.3,19.8*XX``). Faults (``DeviceFault``): DEAD sends nothing; GARBAGE sends
every other line with a broken checksum, cuts some short and adds line noise; STUCK repeats the
values of the moment it got stuck. If the agent's side of the line runs at another baud rate, it
gets noise, as it would from a real UART. ``unplug()``/``replug(link)`` as for the RTU server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

from cabinet_agent.line_profile import LineProfile
from cabinet_agent.line_protocol import format_line, format_value

from .cabinet import CabinetSim, DeviceFault
from .device_image import device_values
from .loop_thread import on_loop
from .virtual_serial import VirtualSerialPort

__all__ = ["LineBoardServer"]

log = logging.getLogger(__name__)


class LineBoardServer:
    def __init__(self, sim: CabinetSim, device: str, link: Path, *,
                 period_s: float | None = None, seed: int = 0) -> None:
        profile = sim.cabinet.profiles[device]
        if not isinstance(profile, LineProfile):
            raise ValueError(f"{device} is not a line board (profile {profile.name})")
        self.sim = sim
        self.device = device
        self.profile = profile
        self.bus = sim.cabinet.model.devices[device].bus
        self.period_s = period_s if period_s is not None else profile.period_s
        self.port = VirtualSerialPort(link)
        self.sent: Counter[str] = Counter()  # lines: "good", "bad_checksum", "cut"; "noise" bytes
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def link(self) -> Path:
        return self.port.link

    async def start(self) -> Path:
        self._loop = asyncio.get_running_loop()
        path = self.port.plug()
        self._task = asyncio.create_task(self._run(), name=f"line-board-{self.device}")
        return path

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.port.unplug()

    def unplug(self) -> None:
        self.port.unplug()

    def replug(self, link: Path | None = None) -> Path:
        self.port.unplug()
        return self.port.plug(link)

    def unplug_threadsafe(self) -> None:
        on_loop(self._loop, self.unplug)

    def replug_threadsafe(self, link: Path | None = None) -> Path:
        return on_loop(self._loop, self.replug, link)

    def status(self) -> dict[str, Any]:
        return {"kind": "line", "bus": self.bus, "device": self.device, "link": str(self.link),
                "node": self.port.node, "plugged": self.port.plugged,
                "baudrate": self.profile.serial.baudrate, "line_baudrate": self.port.line_baud(),
                "period_s": self.period_s, "sent": dict(self.sent)}

    def lines(self) -> list[bytes]:
        """The lines of one period, as the board would send them now."""
        values = device_values(self.sim.cabinet, self.sim.device_truth(self.device))[self.device]
        out: list[bytes] = []
        for point in self.profile.points:
            for channel, value in enumerate(values[point.name]):
                text = format_value(value, point.decimals, point.scale)
                out.append(format_line(point.name, text, channel if point.count > 1 else None))
        return out

    def _period(self) -> bytes:
        fault = self.sim.device_fault(self.device)
        if fault is DeviceFault.DEAD:
            return b""
        lines = self.lines()
        if fault is DeviceFault.GARBAGE:
            lines = [self._damage(line) if i % 2 else line for i, line in enumerate(lines)]
        self.sent["good"] += len(lines) - (len(lines) // 2 if fault is DeviceFault.GARBAGE else 0)
        data = b"".join(lines)
        baud = self.port.line_baud()
        if baud is not None and baud != self.profile.serial.baudrate:
            # The agent's UART samples at the wrong rate: what arrives is noise.
            self.sent["noise"] += len(data)
            return bytes(self._rng.randrange(256) for _ in range(len(data)))
        return data

    def _damage(self, line: bytes) -> bytes:
        if self._rng.random() < 0.5:
            self.sent["bad_checksum"] += 1
            star = line.rindex(b"*")
            wrong = b"00" if line[star + 1:star + 3] != b"00" else b"FF"
            return line[:star + 1] + wrong + b"\r\n"
        self.sent["cut"] += 1
        return line[: len(line) // 2] + bytes([0xFF, 0x00]) + b"\r\n"

    async def _run(self) -> None:
        while True:
            if self.port.plugged:
                data = self._period()
                if data:
                    self.port.write(data)
            await asyncio.sleep(self.period_s)
