"""The small interfaces every source implements, and a registry that refuses duplicate names.

* ``DeviceSource`` – one device: ``read()`` gives ``{point: value or list of values}``. The poller
  knows only this.
* ``Transport`` – one configured bus (``[buses.<name>]``): owns the connection and makes the
  ``DeviceSource`` of each device that sits on it.
* ``Bus`` – a register bus (Modbus TCP or RTU) that a ``ModbusDevice`` reads blocks through; it
  serialises requests itself (one lock per bus).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from ..common.registry import Registry, UnknownName
from ..config import DeviceOptions
from ..registers import AnyProfile, ReadBlock, Value

__all__ = [
    "TRANSPORTS",
    "Bus",
    "DeviceSource",
    "Readings",
    "Transport",
    "TransportFactory",
    "transport_factory",
]

Readings = dict[str, Value | list[Value]]


@runtime_checkable
class DeviceSource(Protocol):
    """One device of the cabinet, however it is reached."""

    name: str

    async def read(self) -> Readings:
        """Every polled point of the device; raises SourceError (or a subclass) when it cannot."""
        ...


@runtime_checkable
class Bus(Protocol):
    """A connection to one or more Modbus devices. Implementations serialise access themselves."""

    name: str

    async def read(self, unit: int, block: ReadBlock, *, timeout_s: float) -> Sequence[int] | Sequence[bool]:
        """Raw registers or bits of ``block`` from device ``unit``; raises SourceError."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """A configured bus: makes the sources of its devices and closes the connection at the end."""

    name: str

    def device(self, name: str, profile: AnyProfile, address: int | None, points: set[str],
               options: DeviceOptions | None) -> DeviceSource:
        """The source for device ``name``; raises ConfigError when it cannot sit on this bus."""
        ...

    async def close(self) -> None: ...


TransportFactory = Callable[[str, Any], Transport]
TRANSPORTS: Registry[TransportFactory] = Registry("transport")


def transport_factory(name: str) -> TransportFactory:
    # Each module registers itself when first imported (later imports are no-ops). Imported here,
    # not at package import, so that a config check does not pull in pymodbus. Always all of them:
    # a module imported directly elsewhere must not hide the others.
    from . import modbus_rtu, modbus_tcp, serial_line  # noqa: F401
    try:
        return TRANSPORTS.get(name)
    except UnknownName as exc:
        raise ValueError(str(exc)) from None
