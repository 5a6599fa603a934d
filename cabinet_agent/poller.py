"""Read every device of a cabinet once: read → (classify → publish happen elsewhere).

A failing device never blocks or falsifies the others: its values become unknown (``None``),
never 0 and never the last value, and it is retried with back-off. Devices are read concurrently;
devices on one bus queue for its lock, healthy ones first, so a failing device costs the others at
most its own timeout, and only on the cycles it is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .cabinet_model import LoadedCabinet
from .common.errors import SourceError
from .common.protocol import DeviceHealth, DoorState, MainsState
from .registers import Value
from .sources.assemble import SourceSet
from .sources.base import DeviceSource, Readings

__all__ = ["CabinetReading", "Poller"]

log = logging.getLogger(__name__)

CabinetReadings = dict[str, Readings]


@dataclass(frozen=True, slots=True)
class CabinetReading:
    """One poll cycle's result, in cabinet terms."""

    slot_power: tuple[float | None, ...]
    door: DoorState
    mains: MainsState
    temperature_c: float | None
    devices: tuple[DeviceHealth, ...]
    duration_s: float
    raw: CabinetReadings = field(default_factory=dict, compare=False)
    presence: tuple[bool | None, ...] | None = None  # None: the cabinet has no presence inputs
    # Per slot, its meter's energy counter in Wh (None: no counter or no reading); None: no slot
    # has a counter.
    slot_energy_wh: tuple[float | None, ...] | None = None


@dataclass
class _DeviceTrack:
    source: DeviceSource
    failures: int = 0
    next_attempt: float = 0.0
    error: str | None = None

    @property
    def name(self) -> str:
        return self.source.name


def _binary(value: Value, active: bool, on: str, off: str, unknown: str) -> str:
    if value is None:
        return unknown
    return on if bool(value) == active else off


class Poller:
    def __init__(
        self,
        cabinet: LoadedCabinet,
        sources: SourceSet,
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cabinet = cabinet
        self.sources = sources
        self._monotonic = monotonic
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._devices = [_DeviceTrack(source) for source in sources.devices]

    async def _read_device(self, track: _DeviceTrack) -> Readings | None:
        if self._monotonic() < track.next_attempt:
            return None  # backing off: unknown, and the bus stays free for the others
        try:
            values = await track.source.read()
        except SourceError as exc:
            self._failed(track, exc)
            return None
        except Exception as exc:  # the top of this device's read: a bug must not stop the others
            log.exception("device %s: unexpected error", track.name)
            self._failed(track, SourceError(f"internal error: {type(exc).__name__}: {exc}"))
            return None
        if track.error is not None:
            log.info("device %s answers again after %d failed attempt(s)", track.name,
                     max(track.failures, 1))
        track.failures = 0
        track.next_attempt = 0.0
        track.error = None
        return values

    def _failed(self, track: _DeviceTrack, exc: SourceError) -> None:
        retry = ""
        if exc.device_backoff:
            track.failures += 1
            delay = min(self._backoff_base * 2 ** (track.failures - 1), self._backoff_max)
            track.next_attempt = self._monotonic() + delay
            retry = f" (retry in {delay:.1f} s)"
        if track.error != str(exc):
            log.warning("device %s: %s%s", track.name, exc, retry)
        track.error = str(exc)

    async def poll(self) -> CabinetReading:
        started = self._monotonic()
        # Tasks queue on a bus lock in the order they start: the failing devices go last, so the
        # healthy devices' readings are never held up behind a timeout.
        order = sorted(self._devices, key=lambda t: t.error is not None)
        results = await asyncio.gather(*(self._read_device(t) for t in order))
        readings: CabinetReadings = {t.name: r for t, r in zip(order, results, strict=True)
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
            devices=tuple(DeviceHealth(name=t.name, ok=t.error is None, error=_short(t.error))
                          for t in self._devices),
            duration_s=self._monotonic() - started,
            raw=readings,
            presence=self.cabinet.presence(readings),
            slot_energy_wh=self.cabinet.slot_energy(readings),
        )

    async def close(self) -> None:
        await self.sources.close()


def _short(error: str | None) -> str | None:
    """DeviceHealth.error holds at most 200 characters (protocol v1)."""
    if error is None or len(error) <= 200:
        return error
    return error[:197] + "..."
