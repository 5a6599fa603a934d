"""A journal on disk in front of the TSDB writer: nothing the collector acknowledged is lost.

``write()`` appends the lines to a segment file before it returns, and the collector acknowledges an
MQTT message only after its handler returned — so a SIGKILL of the collector, or a restart while the
TSDB is down, loses no point: the OS has the pages, and at the next start the journal is replayed
from its cursor. One thread (the pump) reads the journal in chunks, hands each chunk to the inner
sink (``InfluxSink``: batches, retry with back-off) and advances the cursor once the inner sink has
written it. Lines already written before a crash may be written twice; a point is keyed by its tags
and timestamp, so InfluxDB overwrites it and VictoriaMetrics (``-dedup.minScrapeInterval=1ms``)
keeps one.

Bounded by ``max_bytes``: beyond it the oldest segment is deleted and its lines counted as dropped.
No fsync: a power cut of the server may lose the last seconds, like any page cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

from .base import SinkStats, TimeSeriesSink

__all__ = ["SpillingSink"]

log = logging.getLogger(__name__)

_SUFFIX: Final = ".lp"
_CURSOR: Final = "cursor"
_CHUNK_BYTES: Final = 512 * 1024


def _name(number: int) -> str:
    return f"{number:012d}{_SUFFIX}"


class SpillingSink:
    def __init__(self, inner: TimeSeriesSink, directory: Path, *, max_bytes: int = 256 * 1024 * 1024,
                 segment_bytes: int = 4 * 1024 * 1024, batch_lines: int = 5000,
                 flush_interval_s: float = 0.0) -> None:
        self._inner = inner
        # The inner writer's batching policy, kept: a chunk goes when it is a full batch, when its
        # oldest line waited flush_interval_s, or when flush() asks.
        self._batch_lines = batch_lines
        self._interval = flush_interval_s
        self._flush_requested = False
        self._dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        self._segment_bytes = max(1024, min(segment_bytes, max_bytes // 4 or 1024))
        self._cond = threading.Condition(threading.Lock())  # not re-entered: a plain lock is cheaper
        self._sizes: dict[int, int] = {}  # segment -> bytes written to it
        self._lines: dict[int, int] = {}  # segment -> lines in it
        for path in sorted(directory.glob(f"*{_SUFFIX}")):
            data = path.read_bytes()
            self._sizes[int(path.stem)] = len(data)
            self._lines[int(path.stem)] = data.count(b"\n")
        self._read_seg, self._read_off = self._load_cursor()
        if self._read_seg not in self._sizes:
            self._read_seg, self._read_off = min(self._sizes, default=0), 0
        self._write_seg = max(self._sizes, default=0) + 1  # always a fresh segment per start
        self._sizes[self._write_seg] = 0
        self._lines[self._write_seg] = 0
        self._fd = os.open(directory / _name(self._write_seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                           0o640)
        self._pending = sum(self._lines.values()) - self._lines_before_cursor()
        self._replayed_at_start = self._pending
        self._oldest_at = 0.0  # monotonic time the oldest unsent line came; 0: the backlog goes now
        self._dropped = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._pump, name="tsdb-journal", daemon=True)
        if self._pending:
            log.warning("TSDB journal: %d lines from before the restart are written first",
                        self._pending)
        self._thread.start()

    # -- cursor --------------------------------------------------------------------------------
    def _load_cursor(self) -> tuple[int, int]:
        try:
            seg, off = (self._dir / _CURSOR).read_text(encoding="ascii").split()
            return int(seg), int(off)
        except (OSError, ValueError):
            return 0, 0

    def _save_cursor(self) -> None:
        tmp = self._dir / f"{_CURSOR}.tmp"
        tmp.write_text(f"{self._read_seg} {self._read_off}\n", encoding="ascii")
        os.replace(tmp, self._dir / _CURSOR)

    def _lines_before_cursor(self) -> int:
        if self._read_off == 0 or self._read_seg not in self._sizes:
            return 0
        with open(self._dir / _name(self._read_seg), "rb") as f:
            return f.read(self._read_off).count(b"\n")

    # -- TimeSeriesSink ----------------------------------------------------------------------------
    def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        with self._cond:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            self._sizes[self._write_seg] += len(data)
            self._lines[self._write_seg] += len(lines)
            was_empty = not self._pending
            if was_empty:
                self._oldest_at = time.monotonic()
            self._pending += len(lines)
            if self._sizes[self._write_seg] >= self._segment_bytes:
                self._rotate()
            self._bound()
            # Wake the pump only when it has something new to decide (its flush timer starts, or
            # a batch is full): a wake-up per message cost a thread switch per message.
            if was_empty or self._pending >= self._batch_lines:
                self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
        return self._inner.flush(max(0.0, deadline - time.monotonic()))

    def stats(self) -> SinkStats:
        inner = self._inner.stats()
        with self._cond:
            return replace(inner, dropped=inner.dropped + self._dropped,
                           buffered=max(inner.buffered, self._pending))

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout + 1.0)
        self._inner.close(max(0.1, timeout / 2))
        with self._cond:
            os.close(self._fd)
            if self._pending:
                log.warning("TSDB journal: %d lines kept on disk for the next start", self._pending)

    # -- inside the lock -------------------------------------------------------------------------
    def _rotate(self) -> None:
        os.close(self._fd)
        self._write_seg += 1
        self._sizes[self._write_seg] = 0
        self._lines[self._write_seg] = 0
        self._fd = os.open(self._dir / _name(self._write_seg),
                           os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def _bound(self) -> None:
        while sum(self._sizes.values()) > self._max_bytes and len(self._sizes) > 1:
            oldest = min(self._sizes)
            lost = self._lines.pop(oldest)
            self._sizes.pop(oldest)
            if oldest == self._read_seg:
                lost -= self._lines_before_cursor()
                self._read_seg, self._read_off = min(self._sizes), 0
            self._dropped += lost
            self._pending -= lost
            (self._dir / _name(oldest)).unlink(missing_ok=True)
            log.error("TSDB journal full (%d bytes): dropped %d of the oldest lines",
                      self._max_bytes, lost)

    # -- the pump thread ---------------------------------------------------------------------------
    def _next_chunk(self) -> tuple[int, int, bytes] | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                seg, off = self._read_seg, self._read_off
                wait = self._due_in()
                if off < self._sizes.get(seg, 0) and wait <= 0:
                    end = self._sizes[seg]
                    break
                if off >= self._sizes.get(seg, 0) and seg < self._write_seg:
                    self._advance_segment()  # this segment is done: on to the next one
                    continue
                self._cond.wait(wait if self._pending else None)
        with open(self._dir / _name(seg), "rb") as f:
            f.seek(off)
            data = f.read(min(_CHUNK_BYTES, end - off))
        cut = data.rfind(b"\n") + 1
        return seg, off, data[:cut]

    def _due_in(self) -> float:
        """Seconds until the pending lines are due (<= 0: now)."""
        if not self._pending:
            self._flush_requested = False
            return 1.0
        if self._flush_requested or self._pending >= self._batch_lines:
            return 0.0
        return self._oldest_at + self._interval - time.monotonic()

    def _advance_segment(self) -> None:
        done = self._read_seg
        later = [s for s in self._sizes if s > done]
        self._read_seg, self._read_off = min(later), 0
        if done != self._write_seg:
            self._sizes.pop(done, None)
            self._lines.pop(done, None)
            (self._dir / _name(done)).unlink(missing_ok=True)
        self._save_cursor()

    def _pump(self) -> None:
        while (chunk := self._next_chunk()) is not None:
            seg, off, data = chunk
            lines = data.decode(errors="replace").splitlines()
            try:
                self._inner.write(lines)
                while not self._inner.flush(1.0):
                    with self._cond:
                        if self._stopping:
                            return
            except Exception:  # top of the thread: log, keep the lines, try again
                log.exception("TSDB journal: handing lines to the writer failed")
                time.sleep(1.0)
                continue
            with self._cond:
                if (self._read_seg, self._read_off) == (seg, off):  # not dropped meanwhile
                    self._read_off = off + len(data)
                    self._pending -= len(lines)
                    self._oldest_at = time.monotonic()
                    self._save_cursor()
                self._cond.notify_all()
