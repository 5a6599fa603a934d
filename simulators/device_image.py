"""What each Modbus device of a cabinet would answer, computed from the cabinet's ground truth.

Register addresses, encodings and scales come only from ``cabinet_agent``'s device profiles
(``encode_point``); this module decides the *values*. Points wired by the cabinet model's
``[signals]`` carry the cabinet's state; every other point gets a plausible value by its name
(see ``_derived``), so an agent that reads whole blocks sees a believable device. Energy counters
count what the slots they measure drew in simulated time (``SlotTruth.meter_wh``), and an integer
counter wraps past its largest raw value as a meter's does.
Pure: no I/O, no clock, no pymodbus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cabinet_agent.cabinet_model import LoadedCabinet, SignalRef
from cabinet_agent.line_profile import LinePoint
from cabinet_agent.registers import ENERGY_UNITS, DeviceProfile, PointSpec, Value, encode_point

from .cabinet import CabinetTruth

__all__ = [
    "DeviceImage",
    "build_images",
    "device_values",
    "slot_wiring",
]

# GUESS: EU nominal mains; small SMPS chargers below 75 W need no PFC, so their power factor is
# low (no measured value in hardware.md).
MAINS_VOLTAGE_V = 230.0
MAINS_FREQUENCY_HZ = 50.0
CHARGER_POWER_FACTOR = 0.55

# Tables of the Modbus data model; write function codes land in the table they change.
TABLE_OF_FUNCTION = {1: 1, 5: 1, 15: 1, 2: 2, 3: 3, 6: 3, 16: 3, 22: 3, 23: 3, 4: 4}

Values = dict[str, list[Value]]


@dataclass(slots=True)
class DeviceImage:
    """One device's raw tables: ``table (1 coils, 2 inputs, 3 holding, 4 input regs) -> addr -> raw``."""

    profile: DeviceProfile
    tables: dict[int, dict[int, int]] = field(default_factory=dict)

    def read(self, table: int, address: int, count: int) -> list[int] | None:
        """Raw values of ``count`` addresses from ``address``; None means ILLEGAL ADDRESS."""
        cells = self.tables.get(table, {})
        span = range(address, address + count)
        if cells and all(a in cells for a in span):
            return [cells[a] for a in span]
        # Devices like the SDM120 answer across unused registers between their points, which is
        # what a profile's ``max_gap`` tells the agent it may rely on; gaps read as 0.
        if cells and self.profile.max_gap > 0 and min(cells) <= address and span[-1] <= max(cells):
            return [cells.get(a, 0) for a in span]
        return None

    def writable(self, table: int, address: int, count: int) -> bool:
        """Coils and holding registers that a profile point covers can be written."""
        cells = self.tables.get(table, {})
        return table in (1, 3) and all(a in cells for a in range(address, address + count))


def device_values(cabinet: LoadedCabinet, truth: CabinetTruth) -> dict[str, Values]:
    """``{device: {point: one value per channel}}`` for every point of every device."""
    values: dict[str, Values] = {
        device: {p.name: [None] * p.count for p in profile.points}
        for device, profile in cabinet.profiles.items()
    }
    wired: dict[str, set[str]] = {device: set() for device in values}

    def put(ref: SignalRef, channel_values: list[Value]) -> None:
        channels = values[ref.device][ref.point]
        first = ref.start or 0
        channels[first:first + len(channel_values)] = channel_values
        wired[ref.device].add(ref.point)

    signals = cabinet.model.signals
    slot_energy: dict[str, float] = {}  # the counters of the slots each meter measures
    channel_energy: dict[str, dict[int, float]] = {}  # per meter channel, its slot's counter
    position = 0
    for ref, width in slot_wiring(cabinet):
        slots = truth.slots[position:position + width]
        put(ref, [s.power_w for s in slots])
        slot_energy[ref.device] = slot_energy.get(ref.device, 0.0) + sum(s.meter_wh for s in slots)
        channels = channel_energy.setdefault(ref.device, {})
        channels.update({(ref.start or 0) + i: s.meter_wh for i, s in enumerate(slots)})
        position += width
    position = 0
    for ref, width in cabinet.presence_refs:
        slots = truth.slots[position:position + width]
        put(ref, [s.present == signals.presence_when for s in slots])
        position += width
    if signals.door is not None:
        put(SignalRef.parse(signals.door), [truth.door_open == signals.door_open_when])
    if signals.mains is not None:
        put(SignalRef.parse(signals.mains), [truth.mains_on == signals.mains_on_when])
    if signals.temperature is not None:
        put(SignalRef.parse(signals.temperature), [truth.temperature_c])

    for device, profile in cabinet.profiles.items():
        points = values[device]
        # A wired point's unwired channels (ladewache-8 uses 8 of 16 meter channels) read 0.
        for name in wired[device]:
            zero = False if profile.point(name).is_bool else 0.0
            points[name] = [zero if v is None else v for v in points[name]]
        energy_wh = slot_energy.get(device, truth.energy_wh)
        channels = channel_energy.get(device, {})
        for point in profile.points:
            if point.name not in wired[device]:
                points[point.name] = [
                    _derived(point, i, points, truth,
                             channels.get(i, 0.0) if point.count > 1 and channels else energy_wh)
                    for i in range(point.count)]
    return values


def slot_wiring(cabinet: LoadedCabinet) -> list[tuple[SignalRef, int]]:
    """The model's slot power refs, each with its channel count, in slot order.

    Computed from the model text rather than ``LoadedCabinet``'s internals, which may change.
    """
    wiring: list[tuple[SignalRef, int]] = []
    for text in cabinet.model.signals.slot_power:
        ref = SignalRef.parse(text)
        if ref.start is None:
            width = cabinet.profiles[ref.device].point(ref.point).count
        else:
            width = (ref.stop if ref.stop is not None else ref.start + 1) - ref.start
        wiring.append((ref, width))
    return wiring


def _derived(point: PointSpec | LinePoint, channel: int, points: Mapping[str, list[Value]],
             truth: CabinetTruth, energy_wh: float) -> Value:
    """A plausible value for a point the cabinet model does not wire, chosen by its name."""
    if point.is_bool:
        return False  # unwired inputs are open, outputs off
    volts = MAINS_VOLTAGE_V if truth.mains_on else 0.0
    power = _power_of(points, channel, truth)
    match point.name:
        case "power":
            return power
        case "current":
            return power / volts if volts else 0.0
        case "voltage":
            return volts
        case "frequency":
            return MAINS_FREQUENCY_HZ if truth.mains_on else 0.0
        case "power_factor":
            return CHARGER_POWER_FACTOR if power > 0 else 0.0
        case "apparent_power":
            return power / CHARGER_POWER_FACTOR
        case "energy" | "import_energy":
            return energy_wh / 1000.0 if point.unit == "kWh" else energy_wh
        case "humidity":
            return truth.humidity_pct
        case "temperature":
            return truth.temperature_c
        case _:
            return 0.0  # e.g. the PZEM's alarm register: 0 = no alarm


def _power_of(points: Mapping[str, list[Value]], channel: int, truth: CabinetTruth) -> float:
    """The device's own power reading for ``channel`` when wired, else the cabinet's total."""
    channels = points.get("power")
    if channels is not None and channel < len(channels):
        value = channels[channel]
        if isinstance(value, float | int) and not isinstance(value, bool):
            return float(value)
    return truth.total_power_w


def build_images(cabinet: LoadedCabinet, truth: CabinetTruth,
                 writes: Mapping[tuple[str, int, int], int] | None = None) -> dict[str, DeviceImage]:
    """Encode every Modbus device's values into raw tables; ``writes`` overlays values a client
    wrote. Line boards have no registers and no image."""
    images: dict[str, DeviceImage] = {}
    for device, values in device_values(cabinet, truth).items():
        profile = cabinet.profiles[device]
        if not isinstance(profile, DeviceProfile):
            continue
        image = DeviceImage(profile)
        for point in profile.points:
            raw = encode_point(point, _clamped(point, _wrapped(profile, point, values[point.name])))
            cells = image.tables.setdefault(point.function, {})
            for offset, word in enumerate(raw):
                cells[point.address + offset] = word
        images[device] = image
    for (device, table, address), raw_value in (writes or {}).items():
        if device in images:
            images[device].tables.setdefault(table, {})[address] = raw_value
    return images


def _wrapped(profile: DeviceProfile, point: PointSpec, values: list[Value]) -> list[Value]:
    """An integer energy counter starts again at 0 past its largest raw value, as a meter's does."""
    if profile.energy_counter is None or profile.energy_counter.point != point.name:
        return values
    wraps_at_wh = profile.counter_wraps_at_wh()
    if wraps_at_wh is None:
        return values
    wraps_at = wraps_at_wh / ENERGY_UNITS[point.unit]  # in the point's unit
    return [v % wraps_at if isinstance(v, float | int) and not isinstance(v, bool) else v
            for v in values]


_RAW_LIMITS = {"u16": (0, 0xFFFF), "s16": (-0x8000, 0x7FFF), "u32": (0, 0xFFFFFFFF),
               "s32": (-0x80000000, 0x7FFFFFFF)}


def _clamped(point: PointSpec, values: list[Value]) -> list[Value]:
    """Saturate like a real meter instead of failing to encode an out-of-range value.

    The raw value equal to the point's ``invalid`` marker is avoided too, so a saturated reading
    never decodes as "no reading".
    """
    limits = _RAW_LIMITS.get(point.type.value)
    if limits is None:
        return values
    low, high = limits
    if point.invalid is not None and point.invalid == high:
        high -= 1
    out: list[Value] = []
    for value in values:
        if isinstance(value, bool) or value is None:
            out.append(value)
            continue
        raw = max(low, min(high, round(value / point.scale)))
        out.append(raw * point.scale)
    return out
