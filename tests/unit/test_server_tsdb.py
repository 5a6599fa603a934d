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

    def __call__(self, batch: list[str]) -> None:
        with self.lock:
            if self.fail_forever is not None:
                raise self.fail_forever
            if self.failures:
                raise self.failures.pop(0)
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


def test_a_rejected_batch_is_dropped_and_the_rest_written(make_sink: SinkFactory,
                                                          writer: FakeWriter) -> None:
    writer.failures = [TsdbError("400 bad line", retryable=False)]
    sink = make_sink()
    sink.write(_lines(5))
    assert sink.flush(5)
    assert writer.lines == _lines(2, 3)
    stats = sink.stats()
    assert (stats.written, stats.dropped, stats.errors) == (2, 3, 1)


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
