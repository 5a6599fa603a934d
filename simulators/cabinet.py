"""A simulated charging cabinet: slots, door, mains, temperature and a simulated clock.

Time moves only through ``advance(seconds)`` (deterministic, for tests) or ``tick()``, which
advances by the wall-clock time since the last tick times ``speed`` (for the running simulator).
Every public method takes the one lock, because the HTTP control server calls in from its own
threads while the Modbus server and the ticker run on the asyncio loop.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cabinet_agent.cabinet_model import LoadedCabinet
from cabinet_agent.line_profile import LineProfile

from .errors import SlotStateError, UnknownDeviceError, UnknownSlotError
from .physics import IPAD_9TH_GEN_WH, MAX_STEP_S, ChargerParams, IPad, SlotPhysics
from .scenario import EventKind, Scenario, ScenarioEvent

__all__ = ["CabinetSim", "CabinetTruth", "ClimateParams", "DeviceFault", "SlotTruth"]

# A returned iPad keeps at least this much charge (unless it left with less): iPads that run flat
# switch off before 0 %, and their owners plug them in elsewhere. GUESS.
MIN_RETURN_SOC = 0.05


class DeviceFault(StrEnum):
    """Faults seen in the field (hardware.md §4), injected per device."""

    NONE = "none"
    DEAD = "dead"  # the device never answers, like a slave with a broken RS-485 transceiver
    GARBAGE = "garbage"  # replies arrive with a bad CRC (missing bias, noise); bad checksums on a line
    STUCK = "stuck"  # values frozen at the moment of the fault while the truth moves on
    ADDRESS_RESET = "address-reset"  # the slave answers at address 1 (after a slow power ramp)


@dataclass(frozen=True, slots=True)
class ClimateParams:
    """First-order thermal model of the cabinet. All values are GUESSes (no source found)."""

    ambient_c: float = 21.0  # classroom
    heating_c_per_w: float = 0.02  # steady-state rise: 16 iPads at 20 W → +6.4 °C
    time_constant_s: float = 1800.0  # a closed steel cabinet warms and cools over ~half an hour
    humidity_pct: float = 45.0

    def __post_init__(self) -> None:
        if self.heating_c_per_w < 0 or self.time_constant_s <= 0:
            raise ValueError("heating_c_per_w must be >= 0 and time_constant_s > 0")
        if not 0 <= self.humidity_pct <= 100:
            raise ValueError("humidity_pct must be in [0, 100]")


@dataclass(frozen=True, slots=True)
class SlotTruth:
    slot: int  # 1-based, as labelled on the cabinet
    present: bool
    charging: bool  # drawing more than the charger's no-load power
    full: bool  # charge finished, between top-up pulses
    power_w: float  # what the slot's meter channel reads (includes measurement noise)
    energy_wh: float  # AC energy drawn since the simulation started
    meter_wh: float  # what the slot meter's energy counter reads (before any wrap)
    soc: float | None
    asset_tag: str | None
    broken: bool


@dataclass(frozen=True, slots=True)
class CabinetTruth:
    """Everything the simulator knows, at one instant: what an agent should conclude."""

    model: str
    sim_time: datetime
    speed: float
    scenario: str
    slots: tuple[SlotTruth, ...]
    door_open: bool
    mains_on: bool
    temperature_c: float
    humidity_pct: float
    device_faults: dict[str, DeviceFault]

    @property
    def total_power_w(self) -> float:
        return sum(s.power_w for s in self.slots)

    @property
    def energy_wh(self) -> float:
        return sum(s.energy_wh for s in self.slots)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sim_time": self.sim_time.isoformat(),
            "speed": self.speed,
            "scenario": self.scenario,
            "door_open": self.door_open,
            "mains_on": self.mains_on,
            "temperature_c": self.temperature_c,
            "humidity_pct": self.humidity_pct,
            "total_power_w": self.total_power_w,
            "energy_wh": self.energy_wh,
            "device_faults": {name: str(fault) for name, fault in self.device_faults.items()},
            "slots": [
                {"slot": s.slot, "present": s.present, "charging": s.charging, "full": s.full,
                 "power_w": s.power_w, "energy_wh": s.energy_wh, "meter_wh": s.meter_wh,
                 "soc": s.soc,
                 "asset_tag": s.asset_tag, "broken": s.broken}
                for s in self.slots
            ],
        }


class CabinetSim:
    """One cabinet built from a cabinet model: ``fill`` of its slots start with an iPad.

    Slots count from 1. ``seed`` makes the initial iPads, measurement noise and random insert
    charges repeatable; the same calls give the same ground truth.
    """

    def __init__(self, cabinet: LoadedCabinet, *, start: datetime, speed: float = 1.0,
                 seed: int = 0, fill: float = 1.0, asset_prefix: str = "IPAD-",
                 charger: ChargerParams | None = None, climate: ClimateParams | None = None,
                 ipad_capacity_wh: float = IPAD_9TH_GEN_WH, scenario: Scenario | None = None,
                 clock: Callable[[], float] = time.monotonic, meter_start_wh: float = 0.0) -> None:
        """``meter_start_wh``: what every slot meter's energy counter reads at the start (near its
        wrap, say); it counts the slot's energy with simulated time from there."""
        if not (speed > 0 and math.isfinite(speed)):
            raise ValueError(f"speed must be a positive number, not {speed}")
        if not 0.0 <= fill <= 1.0:
            raise ValueError(f"fill must be in [0, 1], not {fill}")
        if not (meter_start_wh >= 0 and math.isfinite(meter_start_wh)):
            raise ValueError(f"meter_start_wh must be a number >= 0, not {meter_start_wh}")
        self.cabinet = cabinet
        self.speed = speed
        self.asset_prefix = asset_prefix
        self.charger = charger or ChargerParams()
        self.climate = climate or ClimateParams()
        self.ipad_capacity_wh = ipad_capacity_wh
        self.scenario = scenario
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._clock = clock
        self._last_tick: float | None = None
        self._start = start
        self._elapsed_s = 0.0
        self._door_open = False
        self._mains_on = True
        self._temperature_c = self.climate.ambient_c
        self._faults = {name: DeviceFault.NONE for name in cabinet.model.devices}
        self._frozen: dict[str, CabinetTruth] = {}  # what a STUCK device keeps showing
        self._away: dict[int, IPad] = {}  # taken out by the scenario, not yet returned
        if scenario is not None:
            # Started in the middle of a scenario's day (in a morning window, say): the door is
            # as that day's events left it, or an iPad would leave through a closed door.
            midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
            doors = [e for e in scenario.events_between(midnight, start) if e.kind is EventKind.DOOR]
            if doors:
                self._door_open = bool(doors[-1].door_open)
        n = cabinet.model.slots
        self._slots = [SlotPhysics(self.charger) for _ in range(n)]
        # Per slot meter: (its counter when fitted, the slot's energy then).
        self._meters = [(meter_start_wh, 0.0)] * n
        for index in sorted(self._rng.sample(range(n), round(fill * n))):
            # Initial charge GUESS: anything from a quarter full to full.
            soc = min(1.0, self._rng.uniform(0.25, 1.05))
            self._slots[index].insert(IPad(self.default_asset_tag(index + 1), soc=soc,
                                           capacity_wh=ipad_capacity_wh))

    # -- time -------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed_s)

    def tick(self) -> float:
        """Advance by wall-clock time since the previous tick × speed; returns simulated seconds."""
        with self._lock:
            now = self._clock()
            last, self._last_tick = self._last_tick, now
            if last is None:
                return 0.0
            dt = max(0.0, now - last) * self.speed
            self._advance(dt)
            return dt

    def advance(self, seconds: float) -> None:
        """Step simulated time by ``seconds``, applying scenario events at their exact times."""
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ValueError(f"seconds must be a finite number >= 0, not {seconds}")
        with self._lock:
            self._advance(seconds)

    def _advance(self, seconds: float) -> None:
        target = self._elapsed_s + seconds
        events: list[ScenarioEvent] = []
        if self.scenario is not None:
            events = self.scenario.events_between(
                self._start + timedelta(seconds=self._elapsed_s),
                self._start + timedelta(seconds=target))
        for event in events:
            due = (event.at - self._start).total_seconds()
            self._run_until(due)
            self._apply(event)
        self._run_until(target)

    def _run_until(self, target: float) -> None:
        while self._elapsed_s < target:
            h = min(MAX_STEP_S, target - self._elapsed_s)
            drawn_wh = sum(slot.step(h, self._rng) for slot in self._slots)
            # Exact first-order response to the mean power of the step; all AC power ends up as
            # heat inside the cabinet (charger losses now, the battery's share later).
            heating = self.climate.heating_c_per_w * drawn_wh * 3600.0 / h if h > 0 else 0.0
            goal = self.climate.ambient_c + heating
            decay = math.exp(-h / self.climate.time_constant_s)
            self._temperature_c = goal + (self._temperature_c - goal) * decay
            self._elapsed_s += h

    def _apply(self, event: ScenarioEvent) -> None:
        if event.kind is EventKind.DOOR:
            self._door_open = bool(event.door_open)
            return
        assert event.slot is not None
        if not 1 <= event.slot <= len(self._slots):
            return
        slot = self._slots[event.slot - 1]
        if event.kind is EventKind.TAKE and slot.ipad is not None:
            self._away[event.slot] = slot.remove()
        elif event.kind is EventKind.RETURN and event.slot in self._away and slot.ipad is None:
            ipad = self._away.pop(event.slot)
            ipad.soc = max(min(ipad.soc, MIN_RETURN_SOC), ipad.soc - event.drain)
            ipad.holding = False
            slot.insert(ipad)

    # -- operations -------------------------------------------------------------------------

    def default_asset_tag(self, slot: int) -> str:
        return f"{self.asset_prefix}{slot:03d}"

    def remove(self, slot: int) -> IPad:
        with self._lock:
            physics = self._slot(slot)
            if physics.ipad is None:
                raise SlotStateError(f"slot {slot} is empty")
            return physics.remove()

    def insert(self, slot: int, *, soc: float | None = None, asset_tag: str | None = None,
               health: float = 1.0, broken: bool = False,
               capacity_wh: float | None = None) -> IPad:
        """Put an iPad into ``slot``; without ``soc`` it comes back with a random 20-80 % charge,
        without ``capacity_wh`` it has the cabinet's iPad capacity."""
        with self._lock:
            physics = self._slot(slot)
            if physics.ipad is not None:
                raise SlotStateError(f"slot {slot} is occupied by {physics.ipad.asset_tag}")
            if soc is None:
                soc = self._rng.uniform(0.2, 0.8)
            ipad = IPad(asset_tag or self.default_asset_tag(slot), soc=soc, health=health,
                        broken=broken, capacity_wh=capacity_wh or self.ipad_capacity_wh)
            self._away.pop(slot, None)  # a manual insert replaces the scenario's absent iPad
            physics.insert(ipad)
            return ipad

    def replace_meter(self, device: str, reading_wh: float = 0.0) -> None:
        """A technician swaps ``device`` for another meter (or resets its counter): from now on
        its counters read ``reading_wh`` plus what the slots draw."""
        if not (reading_wh >= 0 and math.isfinite(reading_wh)):
            raise ValueError(f"reading_wh must be a number >= 0, not {reading_wh}")
        with self._lock:
            if device not in self._faults:
                raise UnknownDeviceError(f"no device {device!r}; the model has "
                                         f"{', '.join(self._faults)}")
            first = 0
            for ref, width in self.cabinet.slot_refs:
                if ref.device == device:
                    for index in range(first, first + width):
                        self._meters[index] = (reading_wh, self._slots[index].energy_wh)
                first += width

    def set_door(self, open_: bool) -> None:
        with self._lock:
            self._door_open = open_

    def set_mains(self, on: bool) -> None:
        with self._lock:
            self._mains_on = on
            for slot in self._slots:
                slot.set_mains(on)

    def set_device_fault(self, device: str, mode: DeviceFault | str) -> None:
        try:
            fault = DeviceFault(mode)
        except ValueError:
            raise ValueError(f"fault mode must be one of {[str(m) for m in DeviceFault]}, "
                             f"not {mode!r}") from None
        with self._lock:
            if device not in self._faults:
                raise UnknownDeviceError(f"no device {device!r}; the model has "
                                         f"{', '.join(self._faults)}")
            if fault is DeviceFault.ADDRESS_RESET and \
                    isinstance(self.cabinet.profiles[device], LineProfile):
                raise ValueError(f"{device} is a line board: it has no address to lose")
            if fault is DeviceFault.STUCK:
                if self._faults[device] is not DeviceFault.STUCK:
                    self._frozen[device] = self.truth()
            else:
                self._frozen.pop(device, None)
            self._faults[device] = fault

    def device_fault(self, device: str) -> DeviceFault:
        with self._lock:
            if device not in self._faults:
                raise UnknownDeviceError(f"no device {device!r}")
            return self._faults[device]

    # -- ground truth -----------------------------------------------------------------------

    def truth(self) -> CabinetTruth:
        with self._lock:
            return CabinetTruth(
                model=self.cabinet.model.name,
                sim_time=self._start + timedelta(seconds=self._elapsed_s),
                speed=self.speed,
                scenario=self.scenario.name if self.scenario is not None else "none",
                slots=tuple(self._slot_truth(i + 1, s, self._meters[i])
                            for i, s in enumerate(self._slots)),
                door_open=self._door_open,
                mains_on=self._mains_on,
                temperature_c=self._temperature_c,
                humidity_pct=self.climate.humidity_pct,
                device_faults=dict(self._faults),
            )

    def device_truth(self, device: str) -> CabinetTruth:
        """What ``device`` reports from: the truth, or the moment it got stuck."""
        with self._lock:
            frozen = self._frozen.get(device)
            return frozen if frozen is not None else self.truth()

    def slot(self, slot: int) -> SlotTruth:
        with self._lock:
            return self._slot_truth(slot, self._slot(slot), self._meters[slot - 1])

    @staticmethod
    def _slot_truth(number: int, physics: SlotPhysics, meter: tuple[float, float]) -> SlotTruth:
        ipad = physics.ipad
        fitted_at_wh, energy_then_wh = meter
        return SlotTruth(
            slot=number, present=ipad is not None, charging=physics.charging, full=physics.full,
            power_w=physics.power_w, energy_wh=physics.energy_wh,
            meter_wh=fitted_at_wh + physics.energy_wh - energy_then_wh,
            soc=ipad.soc if ipad is not None else None,
            asset_tag=ipad.asset_tag if ipad is not None else None,
            broken=ipad.broken if ipad is not None else False,
        )

    def _slot(self, slot: int) -> SlotPhysics:
        if isinstance(slot, bool) or not 1 <= slot <= len(self._slots):
            raise UnknownSlotError(f"no slot {slot}; slots are 1..{len(self._slots)}")
        return self._slots[slot - 1]
