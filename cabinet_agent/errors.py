"""The agent's exceptions. Library errors are translated into these at the boundary."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

__all__ = ["AgentError", "ConfigError", "SourceError", "describe_validation_error"]


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class ConfigError(AgentError):
    """Configuration, profile or cabinet model is wrong; the message names file and key."""


class SourceError(AgentError):
    """A sensor source failed to deliver a reading. ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def describe_validation_error(exc: ValidationError, path: Path | str | None) -> str:
    """One line per problem: ``file: key.sub: what is wrong``."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{path}: {key}: {message}" if path else f"{key}: {message}")
    return "\n".join(lines)
