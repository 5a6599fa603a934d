"""The contract every time-series sink fulfils."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

__all__ = ["SinkHealth", "SinkStats", "TimeSeriesSink"]


class SinkHealth(StrEnum):
    NONE = "none"  # no sink configured
    OK = "ok"
    FAILING = "failing"  # the last write failed; lines are buffered and retried


@dataclass(frozen=True, slots=True)
class SinkStats:
    health: SinkHealth
    written: int = 0  # lines the TSDB accepted
    dropped: int = 0  # lines lost: buffer overflow, rejected batch, or left over at shutdown
    errors: int = 0  # failed write requests
    buffered: int = 0  # lines waiting (including a batch being written)
    last_error: str | None = None


@runtime_checkable
class TimeSeriesSink(Protocol):
    """Where lines go. A sink may also take typed messages whose lines it builds itself, per batch
    (``InfluxSink.write_message``); ``Pipeline`` uses that when the sink has it, else ``write``."""

    def write(self, lines: Sequence[str]) -> None:
        """Queue line-protocol lines; never blocks on the network and never raises for I/O."""

    def flush(self, timeout: float) -> bool:
        """Write everything queued so far; True when the buffer emptied within ``timeout``."""

    def stats(self) -> SinkStats: ...

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (for at most ``timeout`` seconds), then release resources."""
