"""A line-protocol board (simulated on a pty) read by the agent's serial-line source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import pytest

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.common.errors import BusUnavailable, StaleData
from cabinet_agent.config import LineBus
from cabinet_agent.line_profile import LineProfile
from cabinet_agent.sources import Readings
from cabinet_agent.sources.serial_line import LineBoard, SerialLineBus
from simulators.cabinet import CabinetSim
from simulators.device_image import device_values
from tests.support.serial_sim import DATA, line_board

pytestmark = pytest.mark.integration

T = TypeVar("T")


def _source(cabinet: LoadedCabinet, port: Path | str) -> tuple[SerialLineBus, LineBoard]:
    profile = cabinet.profiles["board"]
    assert isinstance(profile, LineProfile)
    bus = SerialLineBus("board", LineBus(transport="line", port=str(port), reopen_min_s=0.05,
                                         reopen_max_s=0.1))
    board = bus.device("board", profile, None, {p.name for p in profile.points}, None)
    assert isinstance(board, LineBoard)
    return bus, board


async def _until(read: Callable[[], Awaitable[T]], check: Callable[[T], bool], timeout: float = 5,
                 interval: float = 0.02) -> T:
    """Read until ``check`` holds; errors count as 'not yet'."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await read()
            if check(value):
                return value
        except (BusUnavailable, StaleData):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(interval)  # a poll interval, not a wait for start-up


async def _fails(read: Callable[[], Awaitable[Readings]], error: type[Exception],
                 timeout: float = 5) -> Exception:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await read()
        except error as exc:
            return exc
        if time.monotonic() > deadline:
            raise AssertionError(f"no {error.__name__} within {timeout} s")
        await asyncio.sleep(0.02)


def _expected(cabinet: LoadedCabinet, sim: CabinetSim) -> Readings:
    profile = cabinet.profiles["board"]
    assert isinstance(profile, LineProfile)
    served = device_values(cabinet, sim.truth())["board"]
    out: Readings = {}
    for point in profile.points:
        values = [v if v is None or isinstance(v, bool) else round(float(v), point.decimals)
                  for v in served[point.name]]
        out[point.name] = values if point.count > 1 else values[0]
    return out


def test_the_shipped_board_reads_exactly_what_it_sends(tmp_path: Path) -> None:
    cabinet = load_cabinet_model("ladewache-16-line")
    sim = CabinetSim(cabinet, start=datetime(2026, 11, 30, 9), seed=4, fill=0.75)
    sim.advance(300)
    sim.set_door(True)
    link = tmp_path / "by-id" / "usb-board"
    with line_board(sim, "board", link):
        bus, board = _source(cabinet, link)

        async def read() -> Readings:
            try:
                return await _until(board.read, lambda v: None not in v["power"])  # type: ignore[operator]
            finally:
                await bus.close()

        values = asyncio.run(read())
    expected = _expected(cabinet, sim)
    assert values == expected
    assert values["door"] is True and values["mains"] is True
    assert board.counters()["accepted"] >= 20


def test_garbage_is_counted_silence_is_unknown_and_unplugging_is_survived(tmp_path: Path) -> None:
    cabinet = load_cabinet_model(str(DATA / "models" / "fast-line.toml"))
    sim = CabinetSim(cabinet, start=datetime(2026, 11, 30, 9), seed=4)
    sim.advance(60)
    dev = tmp_path / "dev"
    with line_board(sim, "board", dev / "ttyACM0") as (loop, server):
        bus, board = _source(cabinet, dev / "ttyACM*")

        async def scenario() -> tuple[Readings, dict[str, int], Exception, Exception, Readings]:
            try:
                await _until(board.read, lambda v: v["temperature"] is not None)
                sim.set_device_fault("board", "garbage")
                garbled = await _until(board.read, lambda v: board.decoder.rejected_total >= 10)
                counters = board.counters()
                sim.set_device_fault("board", "dead")
                silent = await _fails(board.read, StaleData)
                sim.set_device_fault("board", "none")
                await _until(board.read, lambda v: None not in v["power"])  # type: ignore[operator]
                loop.call(server.unplug)
                gone = await _fails(board.read, BusUnavailable)
                loop.call(server.replug, dev / "ttyACM1")  # back as another node, glob finds it
                back = await _until(board.read, lambda v: None not in v["power"])  # type: ignore[operator]
                return garbled, counters, silent, gone, back
            finally:
                await bus.close()

        garbled, counters, silent, gone, back = asyncio.run(scenario())
    # The board's even lines stay good: those points are read, the others go unknown with age.
    assert garbled["power"] is not None
    assert counters["rejected_bad_checksum"] + counters.get("rejected_no_checksum", 0) \
        + counters.get("rejected_not_ascii", 0) > 0
    assert "no valid line for over 0.3 s" in str(silent)
    assert "ttyACM*" in str(gone) or "adapter" in str(gone)
    assert back["temperature"] == pytest.approx(sim.truth().temperature_c, abs=0.05)
    assert bus.node is not None and bus.node.startswith("/dev/pts/")
