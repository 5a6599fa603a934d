"""Read every device of a cabinet once: read → (classify → publish happen elsewhere).

A failing device never blocks or falsifies the others: its values become unknown (``None``),
never 0 and never the last value, and it is retried with back-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .cabinet_model import LoadedCabinet, SignalRef
from .errors import SourceError
from .protocol import DeviceHealth, DoorState, MainsState
from .registers import ReadBlock, Value, decode_block, plan_reads
from .sources.base import Bus

__all__ = ["CabinetReading", "Poller"]

log = logging.getLogger(__name__)

Readings = dict[str, dict[str, Value | list[Value]]]


@dataclass(frozen=True, slots=True)
class CabinetReading:
    """One poll cycle's result, in cabinet terms."""

    slot_power: tuple[float | None, ...]
    door: DoorState
    mains: MainsState
    temperature_c: float | None
    devices: tuple[DeviceHealth, ...]
    duration_s: float
    raw: Readings = field(default_factory=dict, compare=False)


@dataclass
class _DeviceTrack:
    name: str
    unit: int
    bus: str
    blocks: list[ReadBlock]
    failures: int = 0
    next_attempt: float = 0.0
    error: str | None = None


def _needed_points(cabinet: LoadedCabinet) -> dict[str, set[str]]:
    """Only the points the cabinet model wires up are polled."""
    signals = cabinet.model.signals
    refs = [*signals.slot_power, signals.door, signals.mains, signals.temperature]
    needed: dict[str, set[str]] = {}
    for text in refs:
        if text is not None:
            ref = SignalRef.parse(text)
            needed.setdefault(ref.device, set()).add(ref.point)
    return needed


def _binary(value: Value, active: bool, on: str, off: str, unknown: str) -> str:
    if value is None:
        return unknown
    return on if bool(value) == active else off


class Poller:
    def __init__(
        self,
        cabinet: LoadedCabinet,
        buses: Mapping[str, Bus],
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cabinet = cabinet
        self.buses = buses
        self._monotonic = monotonic
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        needed = _needed_points(cabinet)
        self._devices: list[_DeviceTrack] = []
        for name, spec in cabinet.model.devices.items():
            if spec.bus not in buses:
                raise ValueError(f"device {name} sits on bus {spec.bus!r}, which is not configured")
            if name in needed:
                blocks = plan_reads(cabinet.profiles[name], only=needed[name])
                self._devices.append(_DeviceTrack(name, spec.address, spec.bus, blocks))

    async def _read_device(self, track: _DeviceTrack) -> dict[str, Value | list[Value]] | None:
        now = self._monotonic()
        if now < track.next_attempt:
            return None  # backing off: unknown, and the bus stays free for the others
        bus = self.buses[track.bus]
        values: dict[str, Value | list[Value]] = {}
        try:
            for block in track.blocks:
                values.update(decode_block(block, await bus.read(track.unit, block)))
        except (SourceError, ValueError) as exc:
            track.failures += 1
            delay = min(self._backoff_base * 2 ** (track.failures - 1), self._backoff_max)
            track.next_attempt = self._monotonic() + delay
            if track.error != str(exc):
                log.warning("device %s: %s (retry in %.1f s)", track.name, exc, delay)
            track.error = str(exc)
            return None
        if track.failures:
            log.info("device %s answers again after %d failed attempts", track.name, track.failures)
        track.failures = 0
        track.next_attempt = 0.0
        track.error = None
        return values

    async def poll(self) -> CabinetReading:
        started = self._monotonic()
        results = await asyncio.gather(*(self._read_device(t) for t in self._devices))
        readings: Readings = {t.name: r for t, r in zip(self._devices, results, strict=True)
                              if r is not None}
        signals = self.cabinet.model.signals
        power = tuple(None if v is None else float(v) for v in self.cabinet.slot_power(readings))
        temperature = self.cabinet.signal("temperature", readings)
        return CabinetReading(
            slot_power=power,
            door=DoorState(_binary(self.cabinet.signal("door", readings), signals.door_open_when,
                                   "open", "closed", "unknown")),
            mains=MainsState(_binary(self.cabinet.signal("mains", readings), signals.mains_on_when,
                                     "on", "off", "unknown")),
            temperature_c=None if temperature is None else float(temperature),
            devices=tuple(DeviceHealth(name=t.name, ok=t.error is None, error=t.error)
                          for t in self._devices),
            duration_s=self._monotonic() - started,
            raw=readings,
        )

    async def close(self) -> None:
        for bus in self.buses.values():
            try:
                await asyncio.wait_for(bus.close(), timeout=5)
            except (TimeoutError, OSError) as exc:
                log.warning("bus %s did not close cleanly: %s", bus.name, exc)
