"""A TimeSeriesSink that keeps the lines it is given, for tests of what the collector writes."""

from __future__ import annotations

from collections.abc import Sequence

from server.tsdb.base import SinkHealth, SinkStats


class ListSink:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.fail = False  # set: write raises, as a broken sink would

    def write(self, lines: Sequence[str]) -> None:
        if self.fail:
            raise RuntimeError("boom")
        self.lines.extend(lines)

    def flush(self, timeout: float) -> bool:
        return True

    def stats(self) -> SinkStats:
        return SinkStats(SinkHealth.OK)

    def close(self, timeout: float = 10.0) -> None:
        pass
