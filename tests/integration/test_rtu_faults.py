"""Field faults on a simulated RS-485 bus (pty), read by the agent's poller.

A dead slave does not slow the others down; garbled replies, stuck values, a slave that lost its
address; the USB adapter pulled out and put back, under the same by-id link or as another ttyUSB.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.config import RtuBus
from cabinet_agent.poller import CabinetReading, Poller
from cabinet_agent.schedule import ticks
from cabinet_agent.sources import Readings, SourceSet
from cabinet_agent.sources.modbus_rtu import ModbusRtuBus
from simulators.cabinet import CabinetSim
from tests.support.serial_sim import DATA, rtu_slaves

pytestmark = pytest.mark.integration

BAUD = 19200
TURNAROUND_S = 0.004  # a Garo meter (hardware.md §3)


@pytest.fixture(scope="module")
def three_meters() -> LoadedCabinet:
    return load_cabinet_model(str(DATA / "models" / "three-meters.toml"))


def _sim(cabinet: LoadedCabinet) -> CabinetSim:
    sim = CabinetSim(cabinet, start=datetime(2026, 11, 30, 8), seed=3)
    sim.advance(300)
    return sim


def _bus(port: Path | str, **overrides: object) -> ModbusRtuBus:
    config = {"transport": "rtu", "port": str(port), "baudrate": BAUD, "timeout_s": 0.03,
              "retries": 1, **overrides}
    return ModbusRtuBus("main", RtuBus.model_validate(config))


class Timed:
    """Wraps a device source and notes when each successful read finished."""

    def __init__(self, source: object, clock: Callable[[], float]) -> None:
        self.source = source
        self.name: str = source.name  # type: ignore[attr-defined]
        self.done: list[float] = []
        self._clock = clock

    async def read(self) -> Readings:
        values: Readings = await self.source.read()  # type: ignore[attr-defined]
        self.done.append(self._clock())
        return values


def _poller(cabinet: LoadedCabinet, bus: ModbusRtuBus) -> tuple[Poller, dict[str, Timed]]:
    timed = {name: Timed(bus.device(name, cabinet.profiles[name], spec.address,
                                    {"power"}, None), time.monotonic)
             for name, spec in cabinet.model.devices.items()}
    return Poller(cabinet, SourceSet(list(timed.values()), {"main": bus})), timed


async def _run(poller: Poller, interval_s: float, polls: int) -> tuple[list[CabinetReading], list[float]]:
    readings, starts = [], []
    async for started in ticks(interval_s):
        readings.append(await poller.poll())
        starts.append(started)
        if len(readings) == polls:
            return readings, starts
    raise AssertionError("unreachable")


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


def _offsets(done: list[float], starts: list[float]) -> list[float]:
    """How long after its poll started each read finished."""
    return [d - max(s for s in starts if s <= d) for d in done]


def test_a_dead_slave_leaves_the_others_their_poll_rate(three_meters: LoadedCabinet,
                                                        tmp_path: Path) -> None:
    sim = _sim(three_meters)
    interval, polls = 0.25, 10
    with rtu_slaves(sim, tmp_path / "rtu", baudrate=BAUD, turnaround_s=TURNAROUND_S):
        poller, timed = _poller(three_meters, _bus(tmp_path / "rtu"))

        async def both_phases() -> tuple[list[CabinetReading], list[float], list[CabinetReading],
                                         list[float], dict[str, list[float]]]:
            alive, alive_starts = await _run(poller, interval, polls)
            before = {name: list(t.done) for name, t in timed.items()}
            for t in timed.values():
                t.done.clear()
            sim.set_device_fault("meter_b", "dead")
            dead, dead_starts = await _run(poller, interval, polls)
            await poller.close()
            return alive, alive_starts, dead, dead_starts, before

        alive, alive_starts, dead, dead_starts, before = asyncio.run(both_phases())

    for name in ("meter_a", "meter_c"):
        rate_alive, rate_dead = _rate(before[name]), _rate(timed[name].done)
        assert len(timed[name].done) == polls
        assert rate_dead == pytest.approx(rate_alive, rel=0.05), name
        assert rate_alive == pytest.approx(1 / interval, rel=0.05)
    # Within a cycle: the first time, the dead slave costs the others its own timeout (two
    # attempts); once known as failing it queues behind the live ones and costs them nothing.
    live = ("meter_a", "meter_c")
    slowest_alive = max(max(_offsets(before[n], alive_starts)) for n in live)
    offsets = {n: _offsets(timed[n].done, dead_starts) for n in live}
    own_timeout = 2 * (0.03 + 0.028)  # retries=1: 2 × (timeout_s + wire time of the request)
    assert max(o[0] for o in offsets.values()) <= slowest_alive + own_timeout + 0.01
    assert max(max(o[1:]) for o in offsets.values()) <= slowest_alive + 0.01
    assert all(r.slot_power[8:16] == (None,) * 8 for r in dead)  # unknown, never 0 or stale
    assert all(p is not None for r in dead for p in (*r.slot_power[:8], *r.slot_power[16:]))
    health = {d.name: d for d in dead[-1].devices}
    assert not health["meter_b"].ok and "no reply" in (health["meter_b"].error or "")
    assert health["meter_a"].ok and health["meter_c"].ok
    assert all(r.slot_power[8:16] != (None,) * 8 for r in alive)


def test_garbled_replies_and_a_lost_address_are_faults_not_values(three_meters: LoadedCabinet,
                                                                  tmp_path: Path) -> None:
    sim = _sim(three_meters)
    with rtu_slaves(sim, tmp_path / "rtu", baudrate=BAUD):
        poller, _ = _poller(three_meters, _bus(tmp_path / "rtu"))

        async def polls() -> tuple[CabinetReading, CabinetReading]:
            sim.set_device_fault("meter_b", "garbage")
            garbled = await poller.poll()
            sim.set_device_fault("meter_b", "none")
            # meter_c lost its address: it answers at 1 too, and the two replies collide.
            sim.set_device_fault("meter_c", "address-reset")
            collided = await poller.poll()
            await poller.close()
            return garbled, collided

        garbled, collided = asyncio.run(polls())
    error = {d.name: d.error for d in garbled.devices}
    assert "garbled reply" in (error["meter_b"] or "") and garbled.slot_power[8:16] == (None,) * 8
    assert error["meter_a"] is None and None not in garbled.slot_power[:8]
    error = {d.name: d.error for d in collided.devices}
    assert "garbled reply" in (error["meter_a"] or "")
    assert "no reply" in (error["meter_c"] or "")
    assert collided.slot_power[:8] == (None,) * 8 and collided.slot_power[16:] == (None,) * 8


def test_a_stuck_slave_keeps_answering_its_old_values(three_meters: LoadedCabinet,
                                                      tmp_path: Path) -> None:
    sim = _sim(three_meters)
    with rtu_slaves(sim, tmp_path / "rtu", baudrate=BAUD):
        poller, _ = _poller(three_meters, _bus(tmp_path / "rtu"))

        async def polls() -> tuple[CabinetReading, CabinetReading]:
            sim.set_device_fault("meter_a", "stuck")
            first = await poller.poll()
            sim.advance(120)  # noise and charging move every channel
            second = await poller.poll()
            await poller.close()
            return first, second

        first, second = asyncio.run(polls())
    assert first.slot_power[:8] == second.slot_power[:8]  # frozen, with no error: hardware.md §4
    assert first.slot_power[8:] != second.slot_power[8:]


async def _poll_until(poller: Poller, check: Callable[[CabinetReading], bool], timeout: float,
                      interval: float = 0.05) -> CabinetReading:
    deadline = time.monotonic() + timeout
    async for _ in ticks(interval):
        reading = await poller.poll()
        if check(reading):
            return reading
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {reading.devices}")
    raise AssertionError("unreachable")


async def _poll_for(poller: Poller, seconds: float, interval: float = 0.05) -> list[CabinetReading]:
    end = time.monotonic() + seconds
    readings = []
    async for _ in ticks(interval):
        readings.append(await poller.poll())
        if time.monotonic() >= end:
            return readings
    raise AssertionError("unreachable")


def _all_ok(reading: CabinetReading) -> bool:
    return all(d.ok for d in reading.devices) and None not in reading.slot_power


def _adapter_gone(reading: CabinetReading) -> bool:
    return all(not d.ok and "bus main" in (d.error or "") for d in reading.devices)


@pytest.mark.parametrize(("first", "second", "port"), [
    ("by-id/usb-ladewache-if00-port0", None, "by-id/usb-ladewache-if00-port0"),
    ("ttyUSB0", "ttyUSB1", "ttyUSB*"),  # back under another name, found by the glob
], ids=["same-by-id-link", "new-name-by-glob"])
def test_an_adapter_pulled_out_and_back_recovers_within_one_backoff_period(
        three_meters: LoadedCabinet, tmp_path: Path, first: str, second: str | None,
        port: str) -> None:
    sim = _sim(three_meters)
    dev = tmp_path / "dev"
    reopen_min, reopen_max = 0.1, 0.4
    bus = _bus(dev / port, reopen_min_s=reopen_min, reopen_max_s=reopen_max)
    with rtu_slaves(sim, dev / first, baudrate=BAUD) as (loop, server):
        poller, _ = _poller(three_meters, bus)

        async def scenario() -> tuple[CabinetReading, float, str | None, str | None]:
            await _poll_until(poller, _all_ok, 5)
            node_before = bus.node
            loop.call(server.unplug)
            gone = await _poll_until(poller, _adapter_gone, 5)
            # Away long enough (polling on, as the agent does) for the reopen back-off to reach
            # its longest delay.
            away = await _poll_for(poller, 3 * reopen_max)
            assert all(_adapter_gone(r) for r in away)
            loop.call(server.replug, dev / second if second else None)
            back_at = time.monotonic()
            await _poll_until(poller, _all_ok, 5, interval=0.02)
            recovered = time.monotonic() - back_at
            await poller.close()
            return gone, recovered, node_before, server.port.node

        gone, recovered, node_before, node_after = asyncio.run(scenario())
    assert gone.slot_power == (None,) * 24
    # One back-off period (at most reopen_max_s, jitter included) plus one poll's work.
    assert recovered <= reopen_max + 0.15, f"recovered after {recovered:.3f} s"
    print(f"\nadapter back ({port}): recovered after {recovered * 1000:.0f} ms "
          f"(back-off at most {reopen_max * 1000:.0f} ms); {node_before} -> {node_after}")


def test_the_agent_starts_without_the_adapter_and_finds_it_later(three_meters: LoadedCabinet,
                                                                 tmp_path: Path) -> None:
    sim = _sim(three_meters)
    link = tmp_path / "by-id" / "usb-late"
    bus = _bus(link, reopen_min_s=0.05, reopen_max_s=0.2)
    poller, _ = _poller(three_meters, bus)

    async def before() -> CabinetReading:
        return await poller.poll()

    reading = asyncio.run(before())
    assert reading.slot_power == (None,) * 24 and _adapter_gone(reading)
    assert "not there" in (reading.devices[0].error or "")
    with rtu_slaves(sim, link, baudrate=BAUD):
        async def after() -> CabinetReading:
            try:
                return await _poll_until(poller, _all_ok, 5)
            finally:
                await poller.close()

        reading = asyncio.run(after())
    assert statistics.mean(p for p in reading.slot_power if p is not None) > 0
