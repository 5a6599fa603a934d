"""The agent's exceptions. Library errors are translated into these at the boundary."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Final

from pydantic import ValidationError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_USAGE",
    "UNION_TAG_MARK",
    "AgentError",
    "BusUnavailable",
    "ConfigError",
    "ExceptionResponse",
    "NoReply",
    "SourceError",
    "StaleData",
    "describe_validation_error",
    "validation_problems",
]

# Exit codes of ``cabinet-agent`` and ``cabinet-server`` (docs/deploy.md, "Config errors").
# A config error does not go away by restarting: the systemd units name EXIT_CONFIG in
# RestartPreventExitStatus=, so a bad config stops the unit instead of restarting it every 5 s.
EXIT_CONFIG: Final = 78  # sysexits.h EX_CONFIG
EXIT_USAGE: Final = 2  # argparse's own code for wrong arguments

# Discriminated unions put their tag into an error's location (``buses.main.<tag>.port``). Our tags
# start with this mark, so the key printed for a human leaves them out: ``buses.main.port``.
UNION_TAG_MARK = "@"


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """Configuration, profile or cabinet model is wrong; the message names file and key."""


class SourceError(AgentError):
    """A sensor source failed to deliver a reading. ``retryable`` says whether to try again.

    ``device_backoff`` says whether the poller should wait longer before asking this device again:
    true when asking costs bus time that the other devices on the bus need.
    """

    device_backoff: ClassVar[bool] = True

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class NoReply(SourceError):
    """The device did not answer in time; ``garbled_bytes`` > 0 when bytes came that made no frame
    (CRC error, collision, wrong baud rate)."""

    def __init__(self, message: str, *, garbled_bytes: int = 0) -> None:
        super().__init__(message, retryable=True)
        self.garbled_bytes = garbled_bytes


class ExceptionResponse(SourceError):
    """The device answered with a Modbus exception: it is there, but refuses this request."""

    def __init__(self, message: str, *, code: int) -> None:
        # ILLEGAL FUNCTION / ADDRESS / VALUE do not go away by asking again; BUSY and the gateway
        # codes (target did not answer) do.
        super().__init__(message, retryable=code not in (1, 2, 3))
        self.code = code


class BusUnavailable(SourceError):
    """The bus itself is down (USB adapter gone, gateway unreachable). Every device on it is
    unknown; the bus keeps its own reopen schedule, so devices need no back-off of their own."""

    device_backoff: ClassVar[bool] = False


class StaleData(SourceError):
    """A passive source (a board that sends lines by itself) has nothing fresh. Looking again costs
    no bus time, so the poller looks again on every cycle."""

    device_backoff: ClassVar[bool] = False


def validation_problems(exc: ValidationError) -> list[tuple[tuple[str, ...], str, str]]:
    """Per problem: the key's path (union tags left out), pydantic's error type, and what is wrong."""
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"]
                    if not (isinstance(part, str) and part.startswith(UNION_TAG_MARK)))
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        problems.append((loc, error["type"], message))
    return problems


def describe_validation_error(exc: ValidationError, path: Path | str | None) -> str:
    """One line per problem: ``file: key.sub: what is wrong``."""
    lines = []
    for loc, _, message in validation_problems(exc):
        key = ".".join(loc) or "(top level)"
        lines.append(f"{path}: {key}: {message}" if path else f"{key}: {message}")
    return "\n".join(lines)
