"""The batching TSDB writer with a fake batch writer: batching, back-off, bounded buffer, close."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from server.config import TsdbSettings
from server.errors import TsdbError
from server.tsdb.base import SinkHealth, TimeSeriesSink
from server.tsdb.influx import InfluxSink, influx_batch_writer
from server.tsdb.null import NullSink
from tests.support.procs import free_port, wait_until

SinkFactory = Callable[..., InfluxSink]


class FakeWriter:
    """Records batches; fails while ``failures`` has entries (popped one per call)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[str]] = []
        self.failures: list[TsdbError] = []
        self.fail_forever: TsdbError | None = None
        self.refused: set[str] = set()  # like InfluxDB 2: one of these refuses the whole batch
        self.calls = 0

    def __call__(self, batch: list[str]) -> None:
        with self.lock:
            self.calls += 1
            if self.fail_forever is not None:
                raise self.fail_forever
            if self.failures:
                raise self.failures.pop(0)
            bad = self.refused.intersection(batch)
            if bad:
                raise TsdbError(f"400 unable to parse {sorted(bad)[0]!r}", retryable=False)
            self.batches.append(list(batch))

    @property
    def lines(self) -> list[str]:
        with self.lock:
            return [line for batch in self.batches for line in batch]


def _settings(**overrides: object) -> TsdbSettings:
    values: dict[str, object] = {"url": "http://127.0.0.1:1", "batch_size": 3,
                                 "flush_interval_s": 30.0, "max_buffer_points": 100}
    return TsdbSettings(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def writer() -> FakeWriter:
    return FakeWriter()


@pytest.fixture
def make_sink(writer: FakeWriter) -> Iterator[SinkFactory]:
    sinks: list[InfluxSink] = []

    def make(**overrides: object) -> InfluxSink:
        sink = InfluxSink(_settings(**overrides), writer, backoff_initial_s=0.01,
                          backoff_max_s=0.05)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=1)


def _lines(n: int, start: int = 0) -> list[str]:
    return [f"m v={i} {i}" for i in range(start, start + n)]


def test_sinks_fulfil_the_protocol(make_sink: SinkFactory) -> None:
    assert isinstance(NullSink(), TimeSeriesSink)
    assert isinstance(make_sink(), TimeSeriesSink)


def test_full_batches_go_out_without_waiting_for_the_interval(make_sink: SinkFactory,
                                                              writer: FakeWriter) -> None:
    sink = make_sink()
    sink.write(_lines(7))
    wait_until(lambda: len(writer.lines) >= 6, 5, "two full batches")
    assert writer.batches[:2] == [_lines(3), _lines(3, 3)]
    assert sink.flush(5)
    assert writer.lines == _lines(7)
    assert [len(b) for b in writer.batches] == [3, 3, 1]
    stats = sink.stats()
    assert (stats.written, stats.dropped, stats.errors, stats.buffered) == (7, 0, 0, 0)
    assert stats.health is SinkHealth.OK


def test_a_partial_batch_goes_out_after_the_flush_interval(make_sink: SinkFactory,
                                                           writer: FakeWriter) -> None:
    make_sink(flush_interval_s=0.05).write(_lines(1))
    wait_until(lambda: writer.lines == _lines(1), 5, "the interval flush")


def test_retryable_errors_are_retried_with_back_off(make_sink: SinkFactory,
                                                    writer: FakeWriter) -> None:
    writer.failures = [TsdbError("down"), TsdbError("still down")]
    sink = make_sink()
    sink.write(_lines(5))
    assert sink.flush(5)
    assert writer.lines == _lines(5)  # order kept across retries
    stats = sink.stats()
    assert (stats.written, stats.dropped, stats.errors) == (5, 0, 2)
    assert stats.health is SinkHealth.OK
    assert stats.last_error == "still down"


def test_a_refused_line_is_isolated_and_the_rest_of_its_batch_written(
        make_sink: SinkFactory, writer: FakeWriter) -> None:
    lines = _lines(16)
    writer.refused = {lines[5], lines[11]}
    sink = make_sink(batch_size=16)
    sink.write(lines)
    assert sink.flush(5)
    assert writer.lines == [line for line in lines if line not in writer.refused]
    stats = sink.stats()
    assert (stats.written, stats.dropped) == (14, 2)
    assert stats.health is SinkHealth.OK
    # halving: at most about 2·log2(16) requests per refused line, plus the first
    assert writer.calls <= 1 + 2 * 2 * 4


def test_a_retryable_failure_while_isolating_keeps_what_is_unwritten(
        make_sink: SinkFactory, writer: FakeWriter) -> None:
    lines = _lines(8)
    writer.refused = {lines[0]}
    # the first try is refused (400); the TSDB then goes away once, then comes back
    original = writer.__call__

    down_once = [TsdbError("connection refused")]

    def flaky(batch: list[str]) -> None:
        if writer.calls == 1 and down_once:
            writer.calls += 1
            raise down_once.pop()
        original(batch)

    sink = InfluxSink(_settings(batch_size=8), flaky, backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        sink.write(lines)
        assert sink.flush(5)
    finally:
        sink.close(2)
    assert writer.lines == lines[1:]
    assert sink.stats().dropped == 1


def test_while_down_the_buffer_is_bounded_and_keeps_the_newest(make_sink: SinkFactory,
                                                               writer: FakeWriter) -> None:
    writer.fail_forever = TsdbError("connection refused")
    sink = make_sink(max_buffer_points=6)
    for i in range(0, 20, 2):
        sink.write(_lines(2, i))
    wait_until(lambda: sink.stats().health is SinkHealth.FAILING, 5, "failing health")
    stats = sink.stats()
    assert stats.buffered <= 6
    assert stats.dropped == 20 - stats.buffered
    assert not sink.flush(0.05)
    with writer.lock:
        writer.fail_forever = None
    assert sink.flush(5)
    assert writer.lines == _lines(6, 14)
    stats = sink.stats()
    assert (stats.written, stats.dropped, stats.buffered) == (6, 14, 0)
    assert stats.health is SinkHealth.OK


def test_close_writes_what_is_buffered(writer: FakeWriter) -> None:
    sink = InfluxSink(_settings(), writer)
    sink.write(_lines(2))
    sink.close(timeout=5)
    assert writer.lines == _lines(2)
    sink.write(_lines(1))  # after close: counted, not kept
    assert sink.stats().dropped == 1


def test_close_gives_up_on_a_dead_tsdb_within_its_timeout(writer: FakeWriter) -> None:
    writer.fail_forever = TsdbError("down")
    sink = InfluxSink(_settings(), writer, backoff_initial_s=0.01, backoff_max_s=0.02)
    sink.write(_lines(4))
    sink.close(timeout=0.2)
    stats = sink.stats()
    assert (stats.written, stats.dropped, stats.buffered) == (0, 4, 0)


def test_the_real_client_reports_an_unreachable_tsdb_as_retryable() -> None:
    write, client = influx_batch_writer(_settings(url=f"http://127.0.0.1:{free_port()}",
                                                  timeout_s=2))
    try:
        with pytest.raises(TsdbError, match="unreachable") as info:
            write(_lines(1))
        assert info.value.retryable
    finally:
        client.close()


def test_null_sink_discards() -> None:
    sink = NullSink()
    sink.write(_lines(3))
    assert sink.flush(0)
    assert sink.stats().health is SinkHealth.NONE
    assert sink.stats().written == 0
