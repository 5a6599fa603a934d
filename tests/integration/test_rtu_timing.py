"""Timing on the simulated RS-485 wire.

The simulator answers no earlier than the wire would let it, and counts a master that starts a
request inside the silent interval t3.5 after a frame; the agent, which counts t3.5 from the last
byte of each reply (not from when it finished decoding it), never does.
"""

from __future__ import annotations

import asyncio
import os
import select
import termios
import time
from datetime import datetime
from pathlib import Path

import pytest

from cabinet_agent.cabinet_model import load_cabinet_model
from cabinet_agent.config import AgentSettings
from cabinet_agent.poller import Poller
from cabinet_agent.sources import open_sources
from simulators.cabinet import CabinetSim
from simulators.rtu_frames import RtuTiming, crc_ok, with_crc
from tests.support.serial_sim import DATA, rtu_slaves

pytestmark = pytest.mark.integration


def _open_raw(link: Path, speed: int) -> int:
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ECHO | termios.ICANON)
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


def _reply(fd: int, timeout: float = 5.0) -> bytes:
    """Wait (on the port, not a clock) until a whole frame has come in."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while not (len(data) >= 5 and crc_ok(bytes(data))):
        readable, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not readable:
            raise AssertionError(f"no whole reply within {timeout} s; got {data.hex(' ')}")
        data += os.read(fd, 256)
    return bytes(data)


def test_a_reply_waits_for_the_wire_and_a_request_into_the_gap_is_counted(tmp_path: Path) -> None:
    sim = CabinetSim(load_cabinet_model("ladewache-8"), start=datetime(2026, 11, 30, 7), seed=1)
    sim.advance(60)
    link = tmp_path / "rtu"
    timing = RtuTiming(1200, 11)  # slow: t3.5 is 32 ms, so "at once" is always inside it
    with rtu_slaves(sim, link, baudrate=timing.baudrate) as (_, server):
        fd = _open_raw(link, termios.B1200)
        try:
            request = with_crc(bytes.fromhex("02 02 00 00 00 08"))  # the IO module's 8 inputs
            sent = time.monotonic()
            os.write(fd, request)  # onto an idle bus
            reply = _reply(fd)
            took = time.monotonic() - sent
            assert reply[:3] == bytes.fromhex("02 02 01")
            assert took >= timing.frame_s(len(request)) + timing.gap_s + timing.frame_s(len(reply))
            assert server.status()["early_requests"] == 0
            os.write(fd, request)  # straight after the reply: into its silent interval
            _reply(fd)  # answered all the same, once the bus is free again
        finally:
            os.close(fd)
    assert server.status()["early_requests"] == 1
    assert server.replies == {2: 2}


@pytest.mark.parametrize("baud", [19200, 115200])
def test_the_agent_keeps_t35_after_every_reply(tmp_path: Path, baud: int) -> None:
    cabinet = load_cabinet_model(str(DATA / "models" / "three-meters.toml"))
    sim = CabinetSim(cabinet, start=datetime(2026, 11, 30, 8), seed=3)
    sim.advance(300)
    link = tmp_path / "rtu"
    with rtu_slaves(sim, link, baudrate=baud, bits_per_char=11) as (_, server):
        settings = AgentSettings.model_validate({
            "cabinet": {"site": "t", "id": "timing", "model": str(DATA / "models" / "three-meters.toml")},
            # 8N2: 11 bits a character like the simulated wire (a pty takes no parity)
            "buses": {"main": {"transport": "rtu", "port": str(link), "baudrate": baud,
                               "stopbits": 2}}})
        poller = Poller(cabinet, open_sources(settings, cabinet))

        async def polls(n: int) -> list[bool]:
            try:
                return [all(d.ok for d in (await poller.poll()).devices) for _ in range(n)]
            finally:
                await poller.close()

        healthy = asyncio.run(polls(15))
        status = server.status()
    assert all(healthy)
    assert sum(status["requests"].values()) == 15 * 3  # one block per meter and cycle
    assert status["early_requests"] == 0
