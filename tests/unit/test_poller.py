"""The poller over fake device sources: unknown is None, never 0 or stale; back-off; health."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cabinet_agent.cabinet_model import LoadedCabinet, load_cabinet_model
from cabinet_agent.common.errors import BusUnavailable, NoReply, SourceError, StaleData
from cabinet_agent.common.protocol import DoorState, MainsState
from cabinet_agent.poller import Poller
from cabinet_agent.sources import Readings, SourceSet

Behaviour = Callable[[], Readings]


class FakeSource:
    """A device whose answer the test sets; ``lock`` stands in for a shared bus."""

    def __init__(self, name: str, answer: Behaviour, lock: asyncio.Lock | None = None,
                 log: list[str] | None = None) -> None:
        self.name = name
        self.answer = answer
        self.calls = 0
        self._lock = lock
        self._log = log

    async def read(self) -> Readings:
        self.calls += 1
        if self._lock is None:
            return self.answer()
        async with self._lock:
            if self._log is not None:
                self._log.append(self.name)
            await asyncio.sleep(0)
            return self.answer()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fail(exc: SourceError) -> Behaviour:
    def answer() -> Readings:
        raise exc
    return answer


@pytest.fixture
def cabinet() -> LoadedCabinet:
    return load_cabinet_model("ladewache-8")


def _good() -> dict[str, Behaviour]:
    return {
        "meter": lambda: {"power": [float(i) for i in range(16)]},
        "io": lambda: {"input": [True, True, False, False, False, False, False, False]},
        "climate": lambda: {"temperature": 24.5},
    }


def _poller(cabinet: LoadedCabinet, answers: dict[str, Behaviour], clock: Clock) -> \
        tuple[Poller, dict[str, FakeSource]]:
    sources = {name: FakeSource(name, answer) for name, answer in answers.items()}
    return Poller(cabinet, SourceSet(list(sources.values())), monotonic=clock), sources


def test_a_healthy_cabinet_reads_through(cabinet: LoadedCabinet) -> None:
    poller, _ = _poller(cabinet, _good(), Clock())
    reading = asyncio.run(poller.poll())
    assert reading.slot_power == tuple(float(i) for i in range(8))
    assert (reading.door, reading.mains, reading.temperature_c) == \
        (DoorState.OPEN, MainsState.ON, 24.5)
    assert all(d.ok and d.error is None for d in reading.devices)


def test_a_failing_device_is_unknown_never_zero_or_stale_and_backs_off(
        cabinet: LoadedCabinet) -> None:
    clock = Clock()
    answers = _good()
    poller, sources = _poller(cabinet, answers, clock)
    asyncio.run(poller.poll())
    sources["meter"].answer = _fail(NoReply("unit 1: no reply within 130 ms"))
    reading = asyncio.run(poller.poll())
    assert reading.slot_power == (None,) * 8  # not 0, not the values of the last poll
    assert reading.door is DoorState.OPEN and reading.temperature_c == 24.5  # others unaffected
    health = {d.name: d for d in reading.devices}
    assert not health["meter"].ok and health["meter"].error == "unit 1: no reply within 130 ms"
    calls = sources["meter"].calls
    clock.now += 0.5  # within the 1 s back-off: the device is not asked, and stays unknown
    reading = asyncio.run(poller.poll())
    assert sources["meter"].calls == calls and reading.slot_power == (None,) * 8
    assert not {d.name: d for d in reading.devices}["meter"].ok
    clock.now += 0.6
    asyncio.run(poller.poll())
    assert sources["meter"].calls == calls + 1  # asked again, fails again: now 2 s
    clock.now += 1.5
    asyncio.run(poller.poll())
    assert sources["meter"].calls == calls + 1
    sources["meter"].answer = answers["meter"]
    clock.now += 0.6
    reading = asyncio.run(poller.poll())
    assert reading.slot_power == tuple(float(i) for i in range(8))
    assert all(d.ok for d in reading.devices)


@pytest.mark.parametrize("error", [BusUnavailable("bus main: adapter gone"),
                                   StaleData("no valid line for over 3.5 s")])
def test_bus_and_stale_errors_are_asked_again_every_cycle(cabinet: LoadedCabinet,
                                                          error: SourceError) -> None:
    clock = Clock()
    poller, sources = _poller(cabinet, {**_good(), "climate": _fail(error)}, clock)
    for _ in range(3):
        reading = asyncio.run(poller.poll())
        clock.now += 0.1
    assert sources["climate"].calls == 3  # no device back-off: the bus keeps its own schedule
    assert reading.temperature_c is None
    assert {d.name: d.error for d in reading.devices}["climate"] == str(error)


def test_failing_devices_queue_behind_healthy_ones_on_a_bus(cabinet: LoadedCabinet) -> None:
    clock, lock, order = Clock(), asyncio.Lock(), list[str]()
    good = _good()
    sources = [FakeSource("meter", _fail(NoReply("x")), lock, order),
               FakeSource("io", good["io"], lock, order),
               FakeSource("climate", good["climate"], lock, order)]
    poller = Poller(cabinet, SourceSet(sources), monotonic=clock)  # type: ignore[arg-type]

    async def two_polls() -> None:
        await poller.poll()
        clock.now += 10  # past the back-off
        order.clear()
        await poller.poll()

    asyncio.run(two_polls())
    assert order == ["io", "climate", "meter"]


def test_long_errors_fit_the_protocol(cabinet: LoadedCabinet) -> None:
    poller, _ = _poller(cabinet, {**_good(), "io": _fail(SourceError("x" * 500))}, Clock())
    reading = asyncio.run(poller.poll())
    error = {d.name: d.error for d in reading.devices}["io"]
    assert error is not None and len(error) == 200 and error.endswith("...")
    assert reading.door is DoorState.UNKNOWN and reading.mains is MainsState.UNKNOWN


def test_an_unexpected_error_in_one_source_is_that_device_s_fault(cabinet: LoadedCabinet) -> None:
    def broken() -> Readings:
        raise KeyError("bug")

    poller, _ = _poller(cabinet, {**_good(), "climate": broken}, Clock())
    reading = asyncio.run(poller.poll())
    assert reading.temperature_c is None and reading.slot_power[0] == 0.0
    assert {d.name: d.error for d in reading.devices}["climate"] == "internal error: KeyError: 'bug'"
