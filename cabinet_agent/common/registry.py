"""The one registry style: named factories, each name once, an unknown name answered with the
known ones. Agent transports, alert rules and notifier kinds each keep one ``Registry``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

__all__ = ["Registry", "UnknownName"]

F = TypeVar("F")


class UnknownName(KeyError):
    """A name nothing registered; the message lists what is known."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[F]):
    """Factories by name, in the order they were registered."""

    def __init__(self, what: str) -> None:
        self.what = what  # "transport", "alert rule", "notifier kind": for messages
        self._factories: dict[str, F] = {}

    def register(self, name: str, factory: F) -> F:
        """Add ``factory`` under ``name``; a second registration of a name is a bug, refused."""
        if name in self._factories:
            raise ValueError(f"{self.what} {name!r} is registered twice")
        self._factories[name] = factory
        return factory

    def get(self, name: str) -> F:
        try:
            return self._factories[name]
        except KeyError:
            raise UnknownName(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return list(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[tuple[str, F]]:
        return iter(list(self._factories.items()))
