"""Cabinet models: which device channel is which slot, door, mains and temperature.

A model is a TOML file (``cabinet_agent/data/models/*.toml``); adding one needs no Python.
Signal references look like ``device.point``, ``device.point[3]`` or ``device.point[0:8]``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .common.configfile import read_toml
from .common.errors import ConfigError, describe_validation_error
from .common.protocol import MAX_POINTS, PointReading, Sensing
from .energy import EnergyCounter
from .line_profile import LineProfile
from .registers import ENERGY_UNITS, AnyProfile, DeviceProfile, Value, load_profile
from .thresholds import Thresholds

__all__ = [
    "CabinetModel",
    "DeviceSpec",
    "SignalRef",
    "Signals",
    "load_cabinet_model",
    "shipped_models",
    "wired_points",
]

_REF = re.compile(r"^(?P<device>[a-z][a-z0-9_]*)\.(?P<point>[a-z][a-z0-9_]*)"
                  r"(?:\[(?P<start>\d+)(?::(?P<stop>\d+))?\])?$")


@dataclass(frozen=True, slots=True)
class SignalRef:
    device: str
    point: str
    start: int | None = None
    stop: int | None = None  # exclusive; None with start set means a single channel

    @classmethod
    def parse(cls, text: str) -> SignalRef:
        match = _REF.match(text)
        if not match:
            raise ValueError(f"{text!r} is not 'device.point', 'device.point[i]' or 'device.point[a:b]'")
        start = int(match["start"]) if match["start"] is not None else None
        stop = int(match["stop"]) if match["stop"] is not None else None
        if start is not None and stop is not None and stop <= start:
            raise ValueError(f"{text!r}: empty channel range")
        return cls(match["device"], match["point"], start, stop)

    def values(self, readings: dict[str, dict[str, Value | list[Value]]] | None,
               width: int = 1) -> list[Value]:
        """The referenced channel(s); ``width`` unknowns (None) when the device gave no reading."""
        device = (readings or {}).get(self.device)
        value = None if device is None else device.get(self.point)
        if value is None:
            return [None] * width
        if not isinstance(value, list):
            return [value]
        if self.start is None:
            return list(value)
        return value[self.start:self.stop] if self.stop is not None else [value[self.start]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSpec(_Strict):
    profile: str = Field(description="shipped profile name, or path to a profile .toml")
    address: int | None = Field(default=None, ge=1, le=247,
                                description="Modbus unit / slave address; none for a line board")
    bus: str = Field(default="main", description="name of the bus in the agent config")


class Signals(_Strict):
    slot_power: list[str] = Field(
        default_factory=list,
        description="refs concatenated in slot order; empty: the cabinet has no slot meters (a door "
                    "contact only): no slot can be judged, only door, mains and temperature")
    door: str | None = None
    door_open_when: bool = True
    mains: str | None = None
    mains_on_when: bool = True
    temperature: str | None = None
    presence: list[str] = Field(
        default_factory=list,
        description="optional per-slot presence inputs (micro-switches), refs concatenated in slot order")
    presence_when: bool = Field(default=True, description="input value that means 'an iPad is in the slot'")
    energy_from: Literal["counter", "power"] = Field(
        default="counter",
        description="a session's energy: 'counter' reads the energy counter of each slot meter "
                    "whose profile names one ([energy_counter]; one more register per meter, on "
                    "an SDM120 one more request per poll), 'power' integrates power over time")
    points: list[str] = Field(
        default_factory=list,
        description="extra numeric points to poll and publish raw with each telemetry (protocol "
                    "revision 4), e.g. an energy counter, voltage, humidity: 'device.point', "
                    "'device.point[i]' or 'device.point[a:b]'; empty: none is read")

    @field_validator("slot_power", "presence", "points")
    @classmethod
    def _refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            SignalRef.parse(ref)
        return refs

    @field_validator("door", "mains", "temperature")
    @classmethod
    def _ref(cls, ref: str | None) -> str | None:
        if ref is not None:
            SignalRef.parse(ref)
        return ref


class ThresholdOverrides(_Strict):
    """A cabinet model's own classification thresholds; unset keys keep the defaults
    (``cabinet_agent.classify.Thresholds``, numbers from ../shared/reference/hardware.md)."""

    idle_max_w: float | None = Field(default=None, ge=0, description="at or below: nothing draws")
    charging_min_w: float | None = Field(default=None, gt=0, description="at or above: something draws")
    removal_drop_w: float | None = Field(default=None, gt=0,
                                         description="a drop to idle from at least this is a removal")
    pulse_max_w: float | None = Field(default=None, gt=0, description="top-up pulses stay below this")
    rating_w: float | None = Field(default=None, gt=0, description="the slot's rating; above: fault")
    max_charge_s: float | None = Field(default=None, gt=0, description="charging longer: fault")
    frozen_polls: int | None = Field(default=None, ge=2, description="identical readings: frozen")
    no_topup_s: float | None = Field(default=None, gt=0, description="charged without a pulse: fault")
    standby_drain_per_day: float | None = Field(
        default=None, gt=0, lt=1,
        description="slowest share of charge a full iPad of this cabinet loses per day; sets the "
                    "evidence window (how long a full iPad may stay silent)")
    resume_below_soc: float | None = Field(default=None, gt=0, lt=1,
                                           description="a full iPad tops up below this charge")


class CabinetModel(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    slots: int = Field(ge=1, le=256)
    devices: dict[str, DeviceSpec] = Field(min_length=1)
    signals: Signals
    thresholds: ThresholdOverrides = Field(default_factory=ThresholdOverrides)

    @model_validator(mode="after")
    def _thresholds_fit_together(self) -> CabinetModel:
        self.effective_thresholds()  # raises ValueError, reported with the file name
        return self

    def effective_thresholds(self) -> Thresholds:
        return Thresholds(**self.thresholds.model_dump(exclude_none=True))

    @model_validator(mode="after")
    def _refs_name_devices(self) -> CabinetModel:
        refs = [*self.signals.slot_power, *self.signals.presence, self.signals.door, self.signals.mains,
                self.signals.temperature, *self.signals.points]
        for text in refs:
            if text is not None and SignalRef.parse(text).device not in self.devices:
                raise ValueError(f"signal {text!r} names a device that is not under [devices]")
        return self

    def ref(self, text: str) -> SignalRef:
        return SignalRef.parse(text)


@dataclass(frozen=True)
class LoadedCabinet:
    """A validated model with its device profiles loaded and its slot wiring checked."""

    model: CabinetModel
    profiles: dict[str, AnyProfile]  # device name -> profile
    slot_refs: tuple[tuple[SignalRef, int], ...]  # each ref with its number of channels
    presence_refs: tuple[tuple[SignalRef, int], ...] = ()  # empty: no presence inputs
    # signals.points: each ref with its first channel, its number of channels (0: a single value)
    # and its unit; empty for most cabinets, so telemetry then carries no points at all.
    point_refs: tuple[tuple[SignalRef, int, int, str], ...] = ()
    # Per slot_refs entry: its energy counter's ref, the factor to Wh and the counter (ref None:
    # that meter keeps none, or the model integrates power); empty: no slot has a counter.
    energy_refs: tuple[tuple[SignalRef | None, int, float, EnergyCounter | None], ...] = ()

    @property
    def counters(self) -> tuple[EnergyCounter | None, ...]:
        """Per slot, its meter's energy counter (None: none); empty when no slot has one."""
        return tuple(c for _, width, _, c in self.energy_refs for _ in range(width))

    def slot_energy(self, readings: dict[str, dict[str, Value | list[Value]]]
                    ) -> tuple[float | None, ...] | None:
        """Per slot, its energy counter in Wh (None: no counter, or no reading); None when no
        slot has a counter."""
        if not self.energy_refs:
            return None
        values: list[float | None] = []
        for ref, width, factor, _ in self.energy_refs:
            raw = [None] * width if ref is None else ref.values(readings, width)
            values.extend(None if v is None or isinstance(v, bool) or not math.isfinite(v)
                          else float(v) * factor for v in raw)
        return tuple(values)

    def polled_points(self) -> dict[str, set[str]]:
        """``{device: point names}`` to read: the model's signals and the slots' energy counters."""
        needed = wired_points(self.model)
        for ref, _, _, _ in self.energy_refs:
            if ref is not None:
                needed.setdefault(ref.device, set()).add(ref.point)
        return needed

    def points(self, readings: dict[str, dict[str, Value | list[Value]]]) -> list[PointReading] | None:
        """The extra readings for telemetry (revision 4); unknown and non-finite values are left
        out; None when the model names no points."""
        if not self.point_refs:
            return None
        found: list[PointReading] = []
        for ref, first, width, unit in self.point_refs:
            values = ref.values(readings, max(width, 1))
            for offset, value in enumerate(values):
                if value is None or isinstance(value, bool) or not math.isfinite(value):
                    continue
                channel = None if width == 0 else first + offset
                found.append(PointReading(device=ref.device, point=ref.point, channel=channel,
                                          value=float(value), unit=unit))
        return found

    def presence(self, readings: dict[str, dict[str, Value | list[Value]]]) -> tuple[bool | None, ...] | None:
        """Per slot: an iPad is in it (True), not (False), unknown (None); None without inputs."""
        if not self.presence_refs:
            return None
        active = self.model.signals.presence_when
        values: list[bool | None] = []
        for ref, width in self.presence_refs:
            values.extend(None if v is None else bool(v) == active for v in ref.values(readings, width))
        return tuple(values)

    def sensing(self, thresholds: Thresholds | None = None, time_scale: float = 1.0) -> Sensing:
        """What this cabinet's hardware can observe (the birth message tells the server). The
        evidence window on the wire is wall-clock time: a simulator's window / its speed."""
        power, presence = bool(self.slot_refs), bool(self.presence_refs)
        window = (thresholds or self.model.effective_thresholds()).evidence_window_s / time_scale
        return Sensing(slot_power=power, presence=presence, door=self.model.signals.door is not None,
                       evidence_window_s=window if power and not presence else None)

    def slot_power(self, readings: dict[str, dict[str, Value | list[Value]]]) -> list[Value]:
        if not self.slot_refs:
            return [None] * self.model.slots  # no slot meters: nothing to judge by
        values: list[Value] = []
        for ref, width in self.slot_refs:
            values.extend(ref.values(readings, width))
        return values

    def signal(self, name: str, readings: dict[str, dict[str, Value | list[Value]]]) -> Value:
        text = getattr(self.model.signals, name)
        if text is None:
            return None
        return SignalRef.parse(text).values(readings)[0]


def _models_dir() -> Path:
    return Path(str(resources.files("cabinet_agent") / "data" / "models"))


def shipped_models() -> list[str]:
    return sorted(p.stem for p in _models_dir().glob("*.toml"))


def wired_points(model: CabinetModel) -> dict[str, set[str]]:
    """``{device: point names}`` the model's signals use; only these are polled."""
    signals = model.signals
    needed: dict[str, set[str]] = {}
    for text in [*signals.slot_power, *signals.presence, signals.door, signals.mains,
                 signals.temperature, *signals.points]:
        if text is not None:
            ref = SignalRef.parse(text)
            needed.setdefault(ref.device, set()).add(ref.point)
    return needed


def _check_addresses(model: CabinetModel, profiles: dict[str, AnyProfile]) -> None:
    taken: dict[tuple[str, int], str] = {}
    for name, spec in model.devices.items():
        if spec.address is not None:
            other = taken.setdefault((spec.bus, spec.address), name)
            if other != name:
                raise ValueError(f"devices.{name}.address: {spec.address} is taken by {other} "
                                 f"on bus {spec.bus!r}")
        profile = profiles[name]
        if isinstance(profile, DeviceProfile) and spec.address is None:
            raise ValueError(f"devices.{name}.address: a Modbus device ({profile.name}) needs one")
        if isinstance(profile, LineProfile) and spec.address is not None:
            raise ValueError(f"devices.{name}.address: a line board ({profile.name}) has none")


def _point_ref(profile: AnyProfile, ref: SignalRef) -> tuple[SignalRef, int, int, str]:
    """(ref, first channel, channels or 0 for a single value, unit) of a signals.points entry."""
    width = _channel_count(profile, ref)
    point = profile.point(ref.point)
    if point.is_bool:
        raise ValueError(f"points: {ref.device}.{ref.point} is an on/off input, not a reading")
    if len(point.unit) > 16:  # the protocol's bound (PointReading.unit)
        raise ValueError(f"points: {ref.device}.{ref.point}: unit {point.unit!r} is over 16 characters")
    single = point.count == 1 and ref.start is None
    return ref, ref.start or 0, 0 if single else width, point.unit


def _energy_ref(model: CabinetModel, profile: AnyProfile, ref: SignalRef, width: int
                ) -> tuple[SignalRef | None, int, float, EnergyCounter | None]:
    """The energy counter beside a slot_power ref: the profile's ``[energy_counter]`` point on
    the same channels, when the model reads counters and the profile has one."""
    spec = profile.energy_counter if isinstance(profile, DeviceProfile) else None
    if spec is None or model.signals.energy_from != "counter":
        return None, width, 1.0, None
    assert isinstance(profile, DeviceProfile)
    point, power = profile.point(spec.point), profile.point(ref.point)
    if point.count != power.count:
        raise ValueError(f"{ref.device}: energy counter {point.name!r} has {point.count} channels, "
                         f"{ref.point!r} {power.count}; set signals.energy_from = \"power\"")
    counter = EnergyCounter(profile.counter_resolution_wh(), profile.counter_wraps_at_wh())
    return (SignalRef(ref.device, point.name, ref.start, ref.stop), width, ENERGY_UNITS[point.unit],
            counter)


def _channel_count(profile: AnyProfile, ref: SignalRef) -> int:
    try:
        point = profile.point(ref.point)
    except KeyError:
        raise ValueError(f"profile {profile.name} has no point {ref.point!r}") from None
    if ref.start is None:
        return point.count
    stop = ref.stop if ref.stop is not None else ref.start + 1
    if stop > point.count:
        raise ValueError(f"{ref.device}.{ref.point} has {point.count} channels, not {stop}")
    return stop - ref.start


def load_cabinet_model(name_or_path: str | Path, base_dir: Path | None = None) -> LoadedCabinet:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        path = candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate
    else:
        path = _models_dir() / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(f"unknown cabinet model {name_or_path!r}; shipped: "
                              f"{', '.join(shipped_models())}")
    data = read_toml(path, "cabinet model")
    try:
        model = CabinetModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path)) from exc
    profiles = {name: load_profile(spec.profile, path.parent) for name, spec in model.devices.items()}
    refs = [SignalRef.parse(text) for text in model.signals.slot_power]
    try:
        _check_addresses(model, profiles)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        slot_refs = tuple((r, _channel_count(profiles[r.device], r)) for r in refs)
        wired = sum(width for _, width in slot_refs)
        presence_refs = tuple((r, _channel_count(profiles[r.device], r))
                              for r in map(SignalRef.parse, model.signals.presence))
        presence_wired = sum(width for _, width in presence_refs)
        point_refs = tuple(_point_ref(profiles[r.device], r)
                           for r in map(SignalRef.parse, model.signals.points))
        energy_refs = tuple(_energy_ref(model, profiles[r.device], r, width) for r, width in slot_refs)
        if all(counter is None for *_, counter in energy_refs):
            energy_refs = ()
        for key in ("door", "mains", "temperature"):
            text = getattr(model.signals, key)
            if text is not None:
                ref = SignalRef.parse(text)
                _channel_count(profiles[ref.device], ref)
    except ValueError as exc:
        raise ConfigError(f"{path}: signals: {exc}") from exc
    if slot_refs and wired != model.slots:
        raise ConfigError(f"{path}: signals.slot_power wires {wired} channels for slots = {model.slots}")
    if presence_refs and presence_wired != model.slots:
        raise ConfigError(f"{path}: signals.presence wires {presence_wired} inputs for slots = {model.slots}")
    if sum(max(width, 1) for _, _, width, _ in point_refs) > MAX_POINTS:
        raise ConfigError(f"{path}: signals.points names more than {MAX_POINTS} values (the "
                          "protocol's bound per telemetry)")
    return LoadedCabinet(model, profiles, slot_refs, presence_refs, point_refs, energy_refs)
