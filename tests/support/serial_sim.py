"""Simulated serial lines in this process: RTU slaves and line boards on ptys, on their own loop."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulators.cabinet import CabinetSim
from simulators.line_board import LineBoardServer
from simulators.loop_thread import LoopThread
from simulators.rtu_server import CabinetRtuServer

DATA = Path(__file__).resolve().parents[1] / "data"


@contextmanager
def rtu_slaves(sim: CabinetSim, link: Path, *, baudrate: int = 19200, bits_per_char: int = 11,
               turnaround_s: float = 0.0) -> Iterator[tuple[LoopThread, CabinetRtuServer]]:
    """The cabinet's Modbus devices as RTU slaves behind ``link``."""
    with LoopThread("rtu-sim") as loop:
        server = CabinetRtuServer(sim, link, baudrate=baudrate, bits_per_char=bits_per_char,
                                  turnaround_s=turnaround_s)
        loop.run(server.start())
        try:
            yield loop, server
        finally:
            loop.run(server.stop())


@contextmanager
def line_board(sim: CabinetSim, device: str, link: Path,
               period_s: float = 0.05) -> Iterator[tuple[LoopThread, LineBoardServer]]:
    with LoopThread("line-sim") as loop:
        server = LineBoardServer(sim, device, link, period_s=period_s)
        loop.run(server.start())
        try:
            yield loop, server
        finally:
            loop.run(server.stop())
