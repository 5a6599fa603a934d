"""The sink used when no TSDB is configured: lines are discarded."""

from __future__ import annotations

from collections.abc import Sequence

from .base import SinkHealth, SinkStats

__all__ = ["NullSink"]


class NullSink:
    def write(self, lines: Sequence[str]) -> None:
        pass

    def flush(self, timeout: float) -> bool:
        return True

    def stats(self) -> SinkStats:
        return SinkStats(SinkHealth.NONE)

    def close(self, timeout: float = 10.0) -> None:
        pass
