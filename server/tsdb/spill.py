"""The TSDB journal on disk: segment files of line protocol and a cursor; nothing acknowledged is lost.

The writer (``server/tsdb/influx.py``) appends every chunk of lines here before it counts as taken:
what the collector handled is appended before it acknowledges it (``InfluxSink.seal``, once per
group of QoS 1 messages; a ``write`` before it returns), QoS 0 telemetry of older agents per batch.
So a SIGKILL of the collector, or a restart while the TSDB is down, loses no acknowledged point:
the OS has the pages, and at the next start the journal is replayed from its cursor. The cursor
advances once the TSDB took a chunk.
Lines written before a crash may be written twice; a point is keyed by its tags and timestamp, so
InfluxDB overwrites it and VictoriaMetrics (``-dedup.minScrapeInterval=1ms``) keeps one.

The journal is the writer's one buffer: what it holds in memory is a copy of the newest chunks;
beyond its memory bound a chunk is kept on disk only and read back when its turn comes.

Bounded by ``max_bytes``: beyond it the oldest segment is deleted and its lines counted as dropped.
No fsync: a power cut of the server may lose the last seconds, like any page cache.

Not thread-safe: its writer's lock guards every call.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["Journal", "Span"]

log = logging.getLogger(__name__)

_SUFFIX: Final = ".lp"
_CURSOR: Final = "cursor"


def _name(number: int) -> str:
    return f"{number:012d}{_SUFFIX}"


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes ``[start, end)`` of segment ``seg``: ``lines`` whole lines."""

    seg: int
    start: int
    end: int
    lines: int


class Journal:
    def __init__(self, directory: Path, *, max_bytes: int = 256 * 1024 * 1024,
                 segment_bytes: int = 4 * 1024 * 1024) -> None:
        self._dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        self._segment_bytes = max(1024, min(segment_bytes, max_bytes // 4 or 1024))
        self._sizes: dict[int, int] = {}  # segment -> bytes written to it
        self._lines: dict[int, int] = {}  # segment -> lines in it
        for path in sorted(directory.glob(f"*{_SUFFIX}")):
            data = path.read_bytes()
            self._sizes[int(path.stem)] = len(data)
            self._lines[int(path.stem)] = data.count(b"\n")
        self._read_seg, self._read_off = self._load_cursor()
        if self._read_seg not in self._sizes:
            self._read_seg, self._read_off = min(self._sizes, default=0), 0
        self._total = sum(self._sizes.values())
        self._write_seg = max(self._sizes, default=0) + 1  # always a fresh segment per start
        self._sizes[self._write_seg] = 0
        self._lines[self._write_seg] = 0
        self._fd = self._open(self._write_seg)

    # -- what is not yet in the TSDB ---------------------------------------------------------------
    def backlog(self) -> list[Span]:
        """The lines the cursor has not passed (those of an earlier run), oldest first."""
        spans = []
        for seg in sorted(self._sizes):
            if seg < self._read_seg or seg == self._write_seg:
                continue
            start = self._read_off if seg == self._read_seg else 0
            lines = self._lines[seg] - (self._lines_before(seg, start) if start else 0)
            if self._sizes[seg] > start and lines > 0:
                spans.append(Span(seg, start, self._sizes[seg], lines))
        return spans

    def _lines_before(self, seg: int, offset: int) -> int:
        with open(self._dir / _name(seg), "rb") as f:
            return f.read(offset).count(b"\n")

    # -- writing -------------------------------------------------------------------------------------
    def append(self, data: bytes, lines: int) -> Span:
        """Write ``data`` (``lines`` whole lines) to the end of the journal before returning."""
        seg = self._write_seg
        start = self._sizes[seg]
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self._sizes[seg] = start + len(data)
        self._lines[seg] += lines
        self._total += len(data)
        if self._sizes[seg] >= self._segment_bytes:
            self._rotate()
        return Span(seg, start, start + len(data), lines)

    def bound(self) -> tuple[int, int]:
        """Delete the oldest segments while the journal is over ``max_bytes``. Returns (the oldest
        segment kept: spans before it are gone, lines dropped that the cursor had not passed)."""
        dropped = 0
        while self._total > self._max_bytes and len(self._sizes) > 1:
            oldest = min(self._sizes)
            lost = self._lines.pop(oldest)
            self._total -= self._sizes.pop(oldest)
            if oldest < self._read_seg:
                lost = 0
            elif oldest == self._read_seg:
                lost -= self._lines_before(oldest, self._read_off) if self._read_off else 0
                self._read_seg, self._read_off = min(self._sizes), 0
            dropped += lost
            (self._dir / _name(oldest)).unlink(missing_ok=True)
            log.error("TSDB journal full (%d bytes): dropped %d of the oldest lines",
                      self._max_bytes, lost)
        return min(self._sizes), dropped

    def read(self, span: Span, limit: int) -> bytes:
        """At most ``limit`` bytes of ``span`` from its start, cut after its last whole line (all of
        it when one line is longer). Empty when its segment is gone (dropped meanwhile)."""
        try:
            with open(self._dir / _name(span.seg), "rb") as f:
                f.seek(span.start)
                data = f.read(min(limit, span.end - span.start))
        except FileNotFoundError:
            return b""
        if span.start + len(data) < span.end:
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # a line longer than the limit: read to its end
                with open(self._dir / _name(span.seg), "rb") as f:
                    f.seek(span.start)
                    data = f.read(span.end - span.start)
                cut = data.find(b"\n") + 1 or len(data)
            data = data[:cut]
        return data

    def commit(self, seg: int, offset: int) -> None:
        """Everything before ``offset`` of ``seg`` is in the TSDB: move the cursor there (never
        back) and delete the segments it has passed."""
        if (seg, offset) <= (self._read_seg, self._read_off) or seg not in self._sizes:
            return
        self._read_seg, self._read_off = seg, offset
        for done in [s for s in self._sizes if s < seg]:
            self._remove(done)
        if offset >= self._sizes[seg] and seg != self._write_seg:
            self._remove(seg)
            self._read_seg, self._read_off = min(self._sizes), 0
        tmp = self._dir / f"{_CURSOR}.tmp"
        tmp.write_text(f"{self._read_seg} {self._read_off}\n", encoding="ascii")
        os.replace(tmp, self._dir / _CURSOR)

    def close(self) -> None:
        os.close(self._fd)

    # -- inside -------------------------------------------------------------------------------------
    def _load_cursor(self) -> tuple[int, int]:
        try:
            seg, off = (self._dir / _CURSOR).read_text(encoding="ascii").split()
            return int(seg), int(off)
        except (OSError, ValueError):
            return 0, 0

    def _open(self, seg: int) -> int:
        return os.open(self._dir / _name(seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def _rotate(self) -> None:
        os.close(self._fd)
        self._write_seg += 1
        self._sizes[self._write_seg] = 0
        self._lines[self._write_seg] = 0
        self._fd = self._open(self._write_seg)

    def _remove(self, seg: int) -> None:
        self._total -= self._sizes.pop(seg, 0)
        self._lines.pop(seg, None)
        (self._dir / _name(seg)).unlink(missing_ok=True)
