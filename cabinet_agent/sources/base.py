"""The one interface every transport implements, and a registry that refuses duplicate names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from ..registers import ReadBlock

__all__ = ["Bus", "BusFactory", "register_transport", "transport_factory"]


@runtime_checkable
class Bus(Protocol):
    """A connection to one or more Modbus devices. Implementations serialise access themselves."""

    name: str

    async def read(self, unit: int, block: ReadBlock) -> Sequence[int] | Sequence[bool]:
        """Raw registers or bits of ``block`` from device ``unit``; raises SourceError."""
        ...

    async def close(self) -> None: ...


BusFactory = Callable[[str, Any], Bus]
_TRANSPORTS: dict[str, BusFactory] = {}


def register_transport(name: str, factory: BusFactory) -> None:
    if name in _TRANSPORTS:
        raise ValueError(f"transport {name!r} registered twice")
    _TRANSPORTS[name] = factory


def transport_factory(name: str) -> BusFactory:
    if not _TRANSPORTS:
        from . import modbus_tcp  # noqa: F401 - registers itself; imported lazily on first use
    try:
        return _TRANSPORTS[name]
    except KeyError:
        raise ValueError(f"unknown transport {name!r}; known: {sorted(_TRANSPORTS)}") from None
