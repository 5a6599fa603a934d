"""Build every configured bus and the source of every polled device, and close them at the end."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..cabinet_model import LoadedCabinet
from ..common.errors import ConfigError
from ..config import AgentSettings
from .base import DeviceSource, Transport, transport_factory

__all__ = ["SourceSet", "open_sources"]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0


@dataclass
class SourceSet:
    """The device sources the poller reads, and the transports behind them."""

    devices: list[DeviceSource]
    transports: dict[str, Transport] = field(default_factory=dict)

    async def close(self) -> None:
        for transport in self.transports.values():
            try:
                await asyncio.wait_for(transport.close(), timeout=CLOSE_TIMEOUT_S)
            except (TimeoutError, OSError) as exc:
                log.warning("bus %s did not close cleanly: %s", transport.name, exc)


def open_sources(settings: AgentSettings, cabinet: LoadedCabinet) -> SourceSet:
    """A source for every device the cabinet model wires up; nothing is opened yet.

    Buses connect on their first read, so a missing device or adapter never stops the start.
    Raises ConfigError when a device does not fit its bus.
    """
    transports = {name: transport_factory(bus.transport)(name, bus)
                  for name, bus in settings.buses.items()}
    needed = cabinet.polled_points()
    devices: list[DeviceSource] = []
    for name, spec in cabinet.model.devices.items():
        if name not in needed:
            continue
        transport = transports.get(spec.bus)
        if transport is None:
            raise ConfigError(f"device {name} sits on bus {spec.bus!r}, which is not configured; "
                              f"buses: {sorted(settings.buses)}")
        devices.append(transport.device(name, cabinet.profiles[name], spec.address, needed[name],
                                        settings.devices.get(name)))
    return SourceSet(devices, transports)
