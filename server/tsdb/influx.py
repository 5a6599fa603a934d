"""A sink that batches lines in its own thread and writes them with influxdb-client's SYNCHRONOUS
write API, as prebuilt strings (the fastest style measured: ceilings.md).

The buffer is bounded: while the TSDB is down lines are kept and retried with exponential back-off;
when the buffer is full the oldest lines are dropped and counted, so memory never grows without
limit and the newest data survives.

One bad line never costs the others: InfluxDB 2 refuses a whole batch (400) for one line it cannot
parse. A refused batch is halved and each half written again until the refused lines stand alone;
those are dropped, counted and logged with their tags (which name the cabinet), the rest is
written. One bad line in a batch of n costs about 2·log2(n) extra requests. Lines are checked
before they get here (server/boundary.py), so this is the second line of defence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from cabinet_agent.backoff import Backoff
from server.config import TsdbSettings
from server.errors import TsdbError
from server.ratelimit import RateLimitedLogger

from .base import SinkHealth, SinkStats

__all__ = ["BatchWriter", "InfluxSink", "influx_batch_writer"]

log = logging.getLogger(__name__)

BatchWriter = Callable[[list[str]], None]
"""Writes one batch or raises TsdbError."""


class _Closeable(Protocol):
    def close(self) -> None: ...


def influx_batch_writer(settings: TsdbSettings) -> tuple[BatchWriter, _Closeable]:
    """A BatchWriter for an InfluxDB-v2-write-compatible URL, and the client to close later."""
    # Imported here: the library is heavy and only needed when a TSDB is configured.
    import urllib3
    from influxdb_client import InfluxDBClient
    from influxdb_client.client.exceptions import InfluxDBError
    from influxdb_client.client.write_api import SYNCHRONOUS

    assert settings.url is not None
    client = InfluxDBClient(
        url=settings.url,
        token=settings.token.get_secret_value(),
        org=settings.org,
        timeout=int(settings.timeout_s * 1000),
        retries=False,  # retrying is this module's job, with back-off and a bounded buffer
    )
    write_api = client.write_api(write_options=SYNCHRONOUS)
    bucket, org = settings.bucket, settings.org

    def write(batch: list[str]) -> None:
        try:
            # One string, not a list: the client would serialize a list line by line (a tenth
            # of the collector's CPU at full ingest, bench/ingest_ceiling.py).
            write_api.write(bucket=bucket, org=org, record="\n".join(batch))
        except InfluxDBError as exc:
            status = getattr(exc, "status", None)
            retryable = not (isinstance(status, int) and 400 <= status < 500
                             and status not in (401, 403, 404, 408, 429))
            raise TsdbError(f"TSDB answered {status}: {str(exc)[:300]}",
                            retryable=retryable) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TsdbError(f"TSDB unreachable: {exc}") from exc

    return write, client


class InfluxSink:
    """Buffers lines and writes them from one thread; see the module doc for the policy."""

    def __init__(
        self,
        settings: TsdbSettings,
        writer: BatchWriter | None = None,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._client: _Closeable | None = None
        if writer is None:
            writer, self._client = influx_batch_writer(settings)
        self._writer = writer
        self._batch_size = settings.batch_size
        self._interval = settings.flush_interval_s
        self._max = settings.max_buffer_points
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._ratelimited = RateLimitedLogger(log)
        self._cond = threading.Condition(threading.Lock())  # not re-entered: a plain lock is cheaper
        self._buffer: deque[str] = deque()
        self._oldest_at: float | None = None  # when the buffer last became non-empty
        self._inflight = 0
        self._flush_requested = False
        self._stopping = False
        self._stop_deadline = 0.0
        self._retry_at = 0.0  # after a failure: no attempt before this (monotonic)
        self._written = 0
        self._dropped = 0
        self._errors = 0
        self._failing = False
        self._last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="tsdb-writer", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------------

    def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        with self._cond:
            if self._stopping:
                self._dropped += len(lines)
                return
            was_empty = not self._buffer
            if was_empty:
                self._oldest_at = time.monotonic()
            self._buffer.extend(lines)
            self._trim()
            # Wake the writer when it must start a flush-interval timer or a batch is full.
            if was_empty or len(self._buffer) >= self._batch_size:
                self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._buffer or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
            return True

    def stats(self) -> SinkStats:
        with self._cond:
            return SinkStats(
                health=SinkHealth.FAILING if self._failing else SinkHealth.OK,
                written=self._written,
                dropped=self._dropped,
                errors=self._errors,
                buffered=len(self._buffer) + self._inflight,
                last_error=self._last_error,
            )

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stopping = True
            self._stop_deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout + 1.0)
        if self._client is not None:
            self._client.close()
        stats = self.stats()
        log.info("TSDB writer closed: %d lines written, %d dropped, %d write errors",
                 stats.written, stats.dropped, stats.errors)

    # -- writer thread ------------------------------------------------------------------------

    def _trim(self) -> None:
        excess = min(len(self._buffer) + self._inflight - self._max, len(self._buffer))
        if excess > 0:
            for _ in range(excess):
                self._buffer.popleft()
            self._dropped += excess
            self._ratelimited.log(logging.WARNING, "tsdb-overflow",
                                  "TSDB buffer full (%d lines): dropped the oldest %d",
                                  self._max, excess)

    def _wait_time(self, now: float) -> float | None:
        """0 when a batch is due now, else how long to wait (None: until notified)."""
        if self._stopping:
            return 0.0 if now >= self._retry_at else self._retry_at - now
        if not self._buffer:
            self._flush_requested = False
            return None
        if now < self._retry_at:
            return self._retry_at - now
        if len(self._buffer) >= self._batch_size or self._flush_requested:
            return 0.0
        assert self._oldest_at is not None
        return max(0.0, self._oldest_at + self._interval - now)

    def _next_batch(self) -> list[str] | None:
        """Wait until a batch is due; None when the thread should end."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._stopping and (not self._buffer or now >= self._stop_deadline):
                    if self._buffer:
                        self._dropped += len(self._buffer)
                        log.error("TSDB unreachable at shutdown: %d lines lost", len(self._buffer))
                        self._buffer.clear()
                    self._cond.notify_all()
                    return None
                wait = self._wait_time(now)
                if wait == 0.0:
                    break
                if self._stopping and wait is not None:
                    wait = min(wait, self._stop_deadline - now)
                self._cond.wait(wait)
            count = min(self._batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(count)]
            self._inflight = count
            if not self._buffer:
                self._flush_requested = False
                self._oldest_at = None
            else:
                self._oldest_at = time.monotonic()
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            written, refused, unwritten, exc = self._deliver(batch)
            if refused:
                self._refused(refused, exc)
            if unwritten:
                assert exc is not None
                with self._cond:
                    self._written += written
                self._failed(unwritten, exc)
                continue
            with self._cond:
                self._inflight = 0
                self._written += written
                if self._failing:
                    log.info("TSDB writes work again")
                self._failing = False
                self._backoff.reset()
                self._cond.notify_all()

    def _deliver(self, batch: list[str]) -> tuple[int, list[str], list[str], TsdbError | None]:
        """Write ``batch``, halving refused parts down to the single refused lines. Returns
        (lines written, lines refused, lines not yet written because of a retryable error, the
        last error)."""
        chunks = [batch]
        written = 0
        refused: list[str] = []
        error: TsdbError | None = None
        while chunks:
            chunk = chunks.pop()
            try:
                self._writer(chunk)
            except TsdbError as exc:
                error = exc
            except Exception as exc:  # a bug in the writer must not end the thread
                log.exception("unexpected error writing to the TSDB")
                error = TsdbError(repr(exc), retryable=False)
            else:
                written += len(chunk)
                continue
            if error.retryable:
                return written, refused, chunk + [line for c in reversed(chunks) for line in c], error
            if len(chunk) == 1:
                refused.append(chunk[0])
            else:
                middle = len(chunk) // 2
                chunks.append(chunk[middle:])
                chunks.append(chunk[:middle])  # popped first: order is kept
        return written, refused, [], error

    def _refused(self, lines: list[str], exc: TsdbError | None) -> None:
        with self._cond:
            self._errors += 1
            self._dropped += len(lines)
            self._last_error = str(exc)
        for line in lines:
            self._ratelimited.log(logging.ERROR, "tsdb-rejected",
                                  "TSDB refused a line (dropped, the rest of its batch written): "
                                  "%s (%s)", line[:200], exc)

    def _failed(self, batch: list[str], exc: TsdbError) -> None:
        """A retryable failure: ``batch`` goes back to the front of the buffer for later."""
        with self._cond:
            self._inflight = 0
            self._errors += 1
            self._last_error = str(exc)
            self._failing = True
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            self._buffer.extendleft(reversed(batch))
            if self._oldest_at is None:
                self._oldest_at = time.monotonic()
            self._trim()
            self._ratelimited.log(logging.WARNING, "tsdb-retry",
                                  "TSDB write failed (%s); %d lines buffered, retry in %.1fs",
                                  exc, len(self._buffer), delay)
            self._cond.notify_all()
