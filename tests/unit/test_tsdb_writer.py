"""The TSDB writer's one buffer with the journal: typed messages built into the same lines as
``message_lines``, what is durable on disk when, restarts, the memory bound, SIGKILL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cabinet_agent.common.protocol import (
    DeviceHealth,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    PointReading,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
)
from server.config import TsdbSettings
from server.errors import TsdbError
from server.fleet import SlotView
from server.tsdb.influx import InfluxSink
from server.tsdb.lines import message_lines, typed_lines
from server.tsdb.spill import Journal

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ENV = {"v": 1, "site": "gs", "cabinet": "c1", "boot_id": "a" * 32, "ts": T0, "clock_synced": True}
STATES = list(SlotState)


def _telemetry(seq: int, slots: int = 4, **overrides: object) -> TelemetryMessage:
    values: dict[str, object] = {
        "power_w": [10.5 + n for n in range(slots)], "states": [STATES[n % 6] for n in range(slots)],
        "temperature_c": 21.5, "door": DoorState.CLOSED, "mains": MainsState.ON,
        "devices": [DeviceHealth(name="meter", ok=True)]}
    return TelemetryMessage(**{**ENV, "seq": seq, **values, **overrides})  # type: ignore[arg-type]


def _views(tags: dict[int, str | None], numbers: list[int]) -> tuple[SlotView, ...]:
    return tuple(SlotView(n, tags.get(n)) for n in numbers)


def _keys(views: tuple[SlotView, ...]) -> dict[int, str]:
    return {v.slot: v.asset_tag for v in views if v.asset_tag}


# -- typed lines: the same as message_lines ------------------------------------------------------
powers = st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)), max_size=8)
tag_text = st.one_of(st.none(), st.text(st.characters(codec="utf-8"), max_size=8))


@settings(max_examples=150, deadline=None)
@given(states=st.lists(st.sampled_from(STATES), max_size=8), power=powers,
       tags=st.dictionaries(st.integers(1, 10), tag_text, max_size=10),
       numbers=st.lists(st.integers(1, 10), unique=True, max_size=10).map(sorted),
       synced=st.booleans(), with_points=st.booleans())
def test_telemetry_is_built_into_the_lines_message_lines_gives(
        states: list[SlotState], power: list[float | None], tags: dict[int, str | None],
        numbers: list[int], synced: bool, with_points: bool) -> None:
    points = [PointReading(device="meter", point="energy", value=12.5, unit="kWh")] \
        if with_points else None
    message = TelemetryMessage(**{**ENV, "seq": 1, "clock_synced": synced}, power_w=power,
                               states=states, temperature_c=None, door=DoorState.OPEN,
                               mains=MainsState.UNKNOWN, devices=[], points=points)
    when = T0 + timedelta(seconds=3)
    views = _views(tags, numbers)
    assert typed_lines([(message, views, when)]) == message_lines(message, _keys(views), when)


@settings(max_examples=100, deadline=None)
@given(slots=st.lists(st.tuples(st.integers(1, 12), st.sampled_from(STATES),
                                st.one_of(st.none(), st.floats(0, 50))),
                      unique_by=lambda s: s[0], max_size=8),
       tags=st.dictionaries(st.integers(1, 12), tag_text, max_size=12),
       numbers=st.lists(st.integers(1, 12), unique=True, max_size=12).map(sorted))
def test_a_state_is_built_into_the_lines_message_lines_gives(
        slots: list[tuple[int, SlotState, float | None]], tags: dict[int, str | None],
        numbers: list[int]) -> None:
    message = StateMessage(**ENV, seq=2, slots=[
        SlotSnapshot(slot=n, state=s, power_w=p, since=T0) for n, s, p in slots],
        door=DoorState.CLOSED, temperature_c=20.0, mains=MainsState.ON, devices=[])
    views = _views(tags, numbers)
    assert typed_lines([(message, views, T0)]) == message_lines(message, _keys(views), T0)


def test_many_messages_of_many_cabinets_keep_their_order() -> None:
    items = []
    for n in range(30):
        message = _telemetry(n, slots=1 + n % 5).model_copy(update={"cabinet": f"c{n % 3}"})
        items.append((message, _views({1: f"T-{n}"}, [1, 2, 3, 4, 5]), T0))
    items.append((StatusMessage(**ENV, seq=99, status="online"), (), T0))  # no lines
    assert typed_lines(items) == [line for m, v, w in items for line in message_lines(m, _keys(v), w)]


# -- the writer -----------------------------------------------------------------------------------
class Tsdb:
    """A batch writer: fails (retryable) while ``down``; records what it took."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.batches: list[list[str]] = []

    def __call__(self, batch: list[str]) -> None:
        with self.lock:
            if self.down:
                raise TsdbError("connection refused")
            self.batches.append(list(batch))

    @property
    def lines(self) -> list[str]:
        with self.lock:
            return [line for batch in self.batches for line in batch]


@pytest.fixture
def tsdb() -> Tsdb:
    return Tsdb()


@pytest.fixture
def make(tsdb: Tsdb, tmp_path: Path) -> Iterator[object]:
    sinks: list[InfluxSink] = []

    def make(journal: bool = True, **overrides: object) -> InfluxSink:
        values: dict[str, object] = {"url": "http://127.0.0.1:1", "batch_size": 50,
                                     "flush_interval_s": 30.0, "max_buffer_points": 1000}
        sink = InfluxSink(TsdbSettings(**{**values, **overrides}), tsdb,  # type: ignore[arg-type]
                          journal=Journal(tmp_path / "j") if journal else None,
                          backoff_initial_s=0.01, backoff_max_s=0.05)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(1)


def _journaled(directory: Path) -> list[str]:
    return [line for path in sorted(directory.glob("*.lp"))
            for line in path.read_text().splitlines()]


def _views_of(n: int) -> tuple[SlotView, ...]:
    return tuple(SlotView(k + 1, f"IPAD-{k + 1}") for k in range(n))


def test_a_durable_message_is_on_disk_when_write_message_returns(make: object,
                                                                  tmp_path: Path) -> None:
    sink = make()  # type: ignore[operator]
    first, second = _telemetry(1), _telemetry(2)
    sink.write_message(first, _views_of(4), T0, durable=False)
    assert _journaled(tmp_path / "j") == []  # QoS 0: with its batch
    sink.write_message(second, _views_of(4), T0, durable=True)
    expected = typed_lines([(first, _views_of(4), T0), (second, _views_of(4), T0)])
    assert _journaled(tmp_path / "j") == expected  # both, in order, before the ack
    assert sink.stats().buffered == len(expected)


def test_lines_of_typed_messages_and_plain_lines_go_out_in_order(make: object, tsdb: Tsdb) -> None:
    sink = make()  # type: ignore[operator]
    messages = [_telemetry(n, slots=8) for n in range(20)]
    for n, message in enumerate(messages):
        sink.write_message(message, _views_of(8), T0, durable=n % 7 == 0)
        if n == 10:
            sink.write(["event,site=gs,cabinet=c1 seq=1i 1"])
    assert sink.flush(5)
    built = [typed_lines([(m, _views_of(8), T0)]) for m in messages]
    expected = [line for lines in built[:11] for line in lines] + \
        ["event,site=gs,cabinet=c1 seq=1i 1"] + [line for lines in built[11:] for line in lines]
    assert tsdb.lines == expected
    assert all(len(batch) <= 50 for batch in tsdb.batches)
    stats = sink.stats()
    assert (stats.written, stats.dropped, stats.buffered) == (len(expected), 0, 0)


def test_after_a_sigkill_what_was_durable_is_written_at_the_next_start(
        make: object, tsdb: Tsdb, tmp_path: Path) -> None:
    tsdb.down = True
    killed = make()  # type: ignore[operator]
    killed.write_message(_telemetry(1), _views_of(4), T0, durable=True)
    killed.write(["event,site=gs,cabinet=c1 seq=1i 1"])
    # no close: as after a SIGKILL, only the journal on disk is left
    tsdb.down = False
    again = make()  # type: ignore[operator]
    assert again.flush(5)
    assert tsdb.lines == [*typed_lines([(_telemetry(1), _views_of(4), T0)]),
                          "event,site=gs,cabinet=c1 seq=1i 1"]


def test_beyond_the_memory_bound_lines_wait_on_disk_and_none_is_lost(
        make: object, tsdb: Tsdb) -> None:
    tsdb.down = True
    sink = make(max_buffer_points=100)  # type: ignore[operator]
    written = [f"m,n={n} v={n}i {n}" for n in range(1000)]
    for n in range(0, 1000, 10):
        sink.write(written[n:n + 10])
    assert sink.stats().buffered == 1000 and sink.stats().dropped == 0
    tsdb.down = False
    assert sink.flush(10)
    assert tsdb.lines == written  # read back from the journal, in order, once
    assert sink.stats().written == 1000


def test_without_a_journal_the_memory_bound_drops_the_oldest(make: object, tsdb: Tsdb) -> None:
    tsdb.down = True
    sink = make(journal=False, max_buffer_points=100, batch_size=20)  # type: ignore[operator]
    for n in range(30):
        sink.write_message(_telemetry(n), _views_of(4), T0, durable=False)  # 5 lines each
    assert sink.stats().buffered <= 100
    tsdb.down = False
    assert sink.flush(5)
    stats = sink.stats()
    assert stats.written + stats.dropped == 150 and stats.dropped >= 50
    assert tsdb.lines[-5:] == typed_lines([(_telemetry(29), _views_of(4), T0)])


def test_a_message_whose_lines_cannot_be_built_costs_only_its_own(make: object,
                                                                   tsdb: Tsdb) -> None:
    sink = make()  # type: ignore[operator]
    bad = _telemetry(1).model_copy(update={"states": ["not a state"]})  # a bug upstream
    sink.write_message(_telemetry(2), _views_of(4), T0, durable=False)
    sink.write_message(bad, _views_of(4), T0, durable=False)
    sink.write_message(_telemetry(3), _views_of(4), T0, durable=False)
    assert sink.flush(5)
    assert tsdb.lines == typed_lines([(_telemetry(2), _views_of(4), T0),
                                      (_telemetry(3), _views_of(4), T0)])
    assert sink.stats().dropped == 2  # the bad one's estimated lines: its slot and cabinet line


def test_an_event_between_messages_is_journaled_with_them(make: object, tmp_path: Path) -> None:
    sink = make()  # type: ignore[operator]
    sink.write_message(_telemetry(1), _views_of(2), T0, durable=False)
    event = EventMessage(**ENV, seq=2, event=EventKind.DOOR_CHANGED, old="closed", new="open")
    sink.write_message(event, (), T0, durable=True)  # an event makes no lines of its own here
    assert _journaled(tmp_path / "j") == typed_lines([(_telemetry(1), _views_of(2), T0)])
