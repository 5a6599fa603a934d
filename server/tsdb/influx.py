"""The TSDB writer: one buffer, batches written from its own thread with influxdb-client's
SYNCHRONOUS write API as prebuilt strings (the fastest style measured: ceilings.md).

One buffer, in the order things came: chunks of lines, each appended to the journal
(``server/tsdb/spill.py``) as it is made, and behind them the messages of the last moments whose
lines are still to be built (``write_message``). The writer thread builds those per batch, appends
them to the journal as one chunk, writes a batch and moves the journal's cursor past it. A
``seal`` (the collector's, before it acknowledges the QoS 1 messages it handed over), a ``durable``
``write_message`` and every ``write`` turn what waits into a chunk on disk before they return, so
a SIGKILL loses nothing acknowledged. Without
a journal (none configured) the same buffer lives in memory only.

The buffer is bounded: while the TSDB is down lines are kept and retried with exponential back-off.
At ``max_buffer_points`` lines in memory, the oldest chunks are kept on disk only (read back when
their turn comes) or, without a journal, dropped and counted, so memory never grows without limit
and the newest data survives; the journal has its own bound on disk.

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
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from cabinet_agent.common.backoff import Backoff
from cabinet_agent.common.protocol import Message, StateMessage, TelemetryMessage
from server.config import TsdbSettings
from server.errors import TsdbError
from server.ratelimit import RateLimitedLogger

from .base import SinkHealth, SinkStats
from .lines import Tagged, TypedPoint, typed_lines
from .spill import Journal, Span

__all__ = ["BatchWriter", "InfluxSink", "influx_batch_writer"]

log = logging.getLogger(__name__)

_READ_BYTES: Final = 512 * 1024  # a chunk kept on disk only is read back in pieces of this size
# Messages whose lines wait to be built, at most this many batches' worth: beyond it (the writer is
# behind or backing off) the caller builds and journals them itself.
_PENDING_BATCHES: Final = 4

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


@dataclass(slots=True)
class _Chunk:
    """Lines appended to the journal together (``span``; None without a journal). ``lines`` is
    None when they are kept on disk only. ``complete``: the chunk's last line is in it (a head
    cut off a chunk is not), so once it is written the journal's cursor may pass ``span``."""

    count: int
    lines: list[str] | None
    span: Span | None
    complete: bool = True


def _estimate(message: Message) -> int:
    """Lines a message will make (a slot line each, a cabinet line), without building them."""
    if isinstance(message, TelemetryMessage):
        return len(message.states) + 1 + (len(message.points) if message.points else 0)
    if isinstance(message, StateMessage):
        return len(message.slots) + 1
    return 1


class InfluxSink:
    """Buffers lines (and messages whose lines are built later) and writes them from one thread;
    see the module doc for the policy."""

    def __init__(
        self,
        settings: TsdbSettings,
        writer: BatchWriter | None = None,
        *,
        journal: Journal | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._client: _Closeable | None = None
        if writer is None:
            writer, self._client = influx_batch_writer(settings)
        self._writer = writer
        self._journal = journal
        self._batch_size = settings.batch_size
        self._interval = settings.flush_interval_s
        self._max = settings.max_buffer_points
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._ratelimited = RateLimitedLogger(log)
        self._cond = threading.Condition(threading.Lock())  # not re-entered: a plain lock is cheaper
        self._chunks: deque[_Chunk] = deque()
        self._queued = 0  # lines in _chunks
        self._in_memory = 0  # of those, lines held in memory
        self._pending: list[TypedPoint] = []  # messages whose lines are not built yet
        self._pending_lines = 0  # their lines, estimated
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
        self._closed = False  # the journal is closed: nothing more goes in
        if journal is not None:
            for span in journal.backlog():
                self._chunks.append(_Chunk(span.lines, None, span))
                self._queued += span.lines
            if self._queued:
                self._oldest_at = 0.0  # due now
                log.warning("TSDB journal: %d lines from before the restart are written first",
                            self._queued)
        self._thread = threading.Thread(target=self._run, name="tsdb-writer", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------------

    def write(self, lines: Sequence[str]) -> None:
        """Queue lines; journaled (with everything queued before them) before this returns."""
        if not lines:
            return
        with self._cond:
            if self._stopping:
                self._dropped += len(lines)
                return
            was_empty = self._empty()
            self._seal(list(lines))
            self._queued_more(was_empty)

    def write_message(self, message: Message, slots: Sequence[Tagged], when: datetime,
                      durable: bool = True) -> None:
        """Queue a message whose lines the writer builds later (``typed_lines``). ``durable``:
        journaled before this returns (a QoS 1 message); otherwise with its batch."""
        with self._cond:
            if self._stopping:
                self._dropped += _estimate(message)
                return
            was_empty = self._empty()
            self._pending.append((message, slots, when))
            self._pending_lines += _estimate(message)
            if durable or self._pending_lines >= _PENDING_BATCHES * self._batch_size \
                    or self._in_memory + self._pending_lines + self._inflight > self._max:
                self._seal()
            self._queued_more(was_empty)

    def seal(self) -> None:
        """Everything queued so far is in the journal when this returns: the one step before the
        collector acknowledges the messages it handed over since the last ``seal`` (one journal
        append for all of them, not one per message)."""
        with self._cond:
            if self._pending and not self._stopping:
                self._seal()
                if self._queued >= self._batch_size:
                    self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while not self._empty() or self._inflight:
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
                buffered=self._queued + self._pending_lines + self._inflight,
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
        with self._cond:
            self._closed = True
            if self._journal is not None:
                self._journal.close()
                if self._queued:
                    log.warning("TSDB journal: %d lines kept on disk for the next start",
                                self._queued)
        stats = self.stats()
        log.info("TSDB writer closed: %d lines written, %d dropped, %d write errors",
                 stats.written, stats.dropped, stats.errors)

    # -- inside the lock ----------------------------------------------------------------------

    def _empty(self) -> bool:
        return not self._chunks and not self._pending

    def _queued_more(self, was_empty: bool) -> None:
        if was_empty:
            self._oldest_at = time.monotonic()
        # Wake the writer when it must start a flush-interval timer or a batch is full: a wake-up
        # per message cost a thread switch per message.
        if was_empty or self._queued + self._pending_lines >= self._batch_size:
            self._cond.notify_all()

    def _seal(self, lines: list[str] | None = None) -> None:
        """The messages waiting (and ``lines`` after them) become one chunk, in the journal."""
        if self._pending:
            built = self._build(self._pending)
            self._pending = []
            self._pending_lines = 0
            lines = built + lines if lines else built
        if not lines:
            return
        if self._closed:
            self._dropped += len(lines)
            return
        span = None
        if self._journal is not None:
            span = self._journal.append(("\n".join(lines) + "\n").encode(), len(lines))
            oldest, _ = self._journal.bound()
            if self._chunks and (first := self._chunks[0].span) and first.seg < oldest:
                self._drop_before(oldest)
        self._chunks.append(_Chunk(len(lines), lines, span))
        self._queued += len(lines)
        self._in_memory += len(lines)
        self._trim()

    def _build(self, pending: list[TypedPoint]) -> list[str]:
        """The lines of the messages waiting. A message whose lines cannot be built (a bug) costs
        only its own: dropped, counted and logged; the writer thread goes on."""
        try:
            return typed_lines(pending)
        except Exception:
            lines = []
            for point in pending:
                try:
                    lines += typed_lines((point,))
                except Exception:
                    self._dropped += _estimate(point[0])
                    if self._ratelimited.log(logging.ERROR, "tsdb-lines",
                                             "cannot build the lines of a message from %s/%s",
                                             point[0].site, point[0].cabinet):
                        log.exception("traceback of the failure above")
            return lines

    def _drop_before(self, oldest: int) -> None:
        """The journal deleted its segments before ``oldest``: the buffer is the journal, so their
        chunks are gone, also from memory (counted; a batch being written still counts)."""
        while self._chunks and (span := self._chunks[0].span) is not None and span.seg < oldest:
            chunk = self._chunks.popleft()
            self._queued -= chunk.count
            self._dropped += chunk.count
            if chunk.lines is not None:
                self._in_memory -= chunk.count

    def _trim(self) -> None:
        """At most ``max_buffer_points`` lines in memory: the oldest chunks stay on disk only or,
        without a journal, are dropped (counted)."""
        excess = self._in_memory + self._pending_lines + self._inflight - self._max
        if excess <= 0:
            return
        if self._journal is not None:
            for chunk in self._chunks:
                if excess <= 0:
                    break
                # only a chunk that holds its whole span can be read back as it was
                if chunk.lines is not None and chunk.span is not None \
                        and chunk.count == chunk.span.lines:
                    chunk.lines = None
                    self._in_memory -= chunk.count
                    excess -= chunk.count
            return
        dropped = 0
        while excess > 0 and self._chunks:
            chunk = self._chunks[0]
            if chunk.count <= excess:
                self._chunks.popleft()
                gone = chunk.count
            else:
                assert chunk.lines is not None
                gone = excess
                chunk.lines = chunk.lines[gone:]
                chunk.count -= gone
            self._queued -= gone
            self._in_memory -= gone
            excess -= gone
            dropped += gone
        if dropped:
            self._dropped += dropped
            self._ratelimited.log(logging.WARNING, "tsdb-overflow",
                                  "TSDB buffer full (%d lines): dropped the oldest %d",
                                  self._max, dropped)

    def _wait_time(self, now: float) -> float | None:
        """0 when a batch is due now, else how long to wait (None: until notified)."""
        if self._stopping:
            return 0.0 if now >= self._retry_at else self._retry_at - now
        if self._empty():
            self._flush_requested = False
            return None
        if now < self._retry_at:
            return self._retry_at - now
        if self._queued + self._pending_lines >= self._batch_size or self._flush_requested:
            return 0.0
        assert self._oldest_at is not None
        return max(0.0, self._oldest_at + self._interval - now)

    def _take(self) -> tuple[list[str], Span | None, Span | None]:
        """The next batch (at most ``batch_size`` lines, in order), the journal position the cursor
        may pass once it is written (None: none yet) and the span of its last line."""
        if self._queued < self._batch_size and self._pending:
            self._seal()  # built here, in the writer thread, once per batch
        batch: list[str] = []
        passed = last = None
        while self._chunks and len(batch) < self._batch_size:
            chunk = self._chunks.popleft()
            if chunk.lines is None:
                chunk = self._read_back(chunk)
            self._queued -= chunk.count
            self._in_memory -= chunk.count
            lines = chunk.lines
            assert lines is not None
            last = chunk.span
            room = self._batch_size - len(batch)
            if chunk.count > room:  # the rest stays in front, its journal span with it
                rest = _Chunk(chunk.count - room, lines[room:], chunk.span, chunk.complete)
                self._chunks.appendleft(rest)
                self._queued += rest.count
                self._in_memory += rest.count
                batch += lines[:room]
                break
            batch += lines
            if chunk.complete:
                passed = chunk.span
        return batch, passed, last

    def _read_back(self, chunk: _Chunk) -> _Chunk:
        """A chunk kept on disk only: its next piece, read into memory (the rest stays on disk,
        in front). Nothing when its segment is gone."""
        assert self._journal is not None and chunk.span is not None
        span = chunk.span
        data = self._journal.read(span, _READ_BYTES)
        lines = data.decode(errors="replace").splitlines()
        piece = _Chunk(len(lines), lines, span)
        if not data:
            self._dropped += chunk.count
        elif span.start + len(data) < span.end:
            rest = Span(span.seg, span.start + len(data), span.end, max(0, chunk.count - len(lines)))
            self._chunks.appendleft(_Chunk(rest.lines, None, rest))
            piece.span = Span(span.seg, span.start, rest.start, len(lines))
            self._queued += rest.lines
        self._queued += piece.count - chunk.count
        self._in_memory += piece.count
        return piece

    # -- writer thread ------------------------------------------------------------------------

    def _next_batch(self) -> tuple[list[str], Span | None, Span | None] | None:
        """Wait until a batch is due; None when the thread should end."""
        with self._cond:
            while True:
                now = time.monotonic()
                if self._stopping and (self._empty() or now >= self._stop_deadline):
                    self._stop()
                    self._cond.notify_all()
                    return None
                wait = self._wait_time(now)
                if wait == 0.0:
                    break
                if self._stopping and wait is not None:
                    wait = min(wait, self._stop_deadline - now)
                self._cond.wait(wait)
            taken = self._take()
            self._inflight = len(taken[0])
            if self._empty():
                self._flush_requested = False
                self._oldest_at = None
            else:
                self._oldest_at = time.monotonic()
            return taken

    def _stop(self) -> None:
        """At the end: what is left stays in the journal (the next start writes it) or is lost."""
        if self._journal is not None:
            self._seal()
            return
        left = self._queued + self._pending_lines
        if left:
            self._dropped += left
            log.error("TSDB unreachable at shutdown: %d lines lost", left)
        self._chunks.clear()
        self._pending = []
        self._queued = self._in_memory = self._pending_lines = 0

    def _run(self) -> None:
        while (taken := self._next_batch()) is not None:
            batch, passed, last = taken
            if not batch:
                with self._cond:
                    self._inflight = 0
                    self._cond.notify_all()
                continue
            written, refused, unwritten, exc = self._deliver(batch)
            if refused:
                self._refused(refused, exc)
            if unwritten:
                assert exc is not None
                with self._cond:
                    self._written += written
                self._failed(unwritten, passed, last, exc)
                continue
            with self._cond:
                self._inflight = 0
                self._written += written
                if passed is not None and self._journal is not None:
                    self._journal.commit(passed.seg, passed.end)
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

    def _failed(self, batch: list[str], passed: Span | None, last: Span | None,
                exc: TsdbError) -> None:
        """A retryable failure: ``batch`` goes back to the front of the buffer for later."""
        with self._cond:
            self._inflight = 0
            self._errors += 1
            self._last_error = str(exc)
            self._failing = True
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            # Its lines end within ``last`` (complete when they end it): dropped with that span.
            self._chunks.appendleft(_Chunk(len(batch), batch, last, last is passed))
            self._queued += len(batch)
            self._in_memory += len(batch)
            if self._oldest_at is None:
                self._oldest_at = time.monotonic()
            self._trim()
            self._ratelimited.log(logging.WARNING, "tsdb-retry",
                                  "TSDB write failed (%s); %d lines buffered, retry in %.1fs",
                                  exc, self._queued + self._pending_lines, delay)
            self._cond.notify_all()
