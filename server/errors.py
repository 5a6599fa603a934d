"""The collector's exceptions. Library errors are translated into these at the boundary."""

from __future__ import annotations

from cabinet_agent.common.errors import EXIT_CONFIG, ConfigError

__all__ = ["EXIT_CONFIG", "EXIT_RUNTIME", "ConfigError", "ServerError", "TsdbError"]

EXIT_RUNTIME = 1  # the collector failed while running (docs/deploy.md, "Config errors")


class ServerError(Exception):
    """Base of every error the collector raises on purpose."""


class TsdbError(ServerError):
    """A write to the time-series database failed. ``retryable`` says whether to try again.

    Connection problems, timeouts, 5xx, 429 and auth errors are retryable (the TSDB or its
    configuration may come back); a 400-class rejection of the data itself is not, because
    sending the same batch again would fail again and stall everything behind it.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable
