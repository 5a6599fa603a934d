"""Device profiles: Modbus register maps as data, and the codec both agent and simulator use.

A profile is a TOML file (``cabinet_agent/data/profiles/*.toml``) listing *points*: a name, a
function code, an address, an encoding, a scale. Points with ``count > 1`` are channel arrays
(one value per slot). ``plan_reads`` merges contiguous points into as few requests as possible;
``decode_block`` turns raw registers into values, ``encode_point`` does the reverse for simulators.
A file with ``kind = "line"`` is a line-protocol board instead (``line_profile.LineProfile``);
``load_profile`` returns either kind. A meter that keeps an energy counter of its own names it in
``[energy_counter]`` (``EnergyCounterSpec``): charge sessions then take their energy from it.
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .common.configfile import read_toml
from .common.errors import ConfigError, describe_validation_error
from .line_profile import LineProfile

__all__ = [
    "ENERGY_UNITS",
    "AnyProfile",
    "DeviceProfile",
    "EnergyCounterSpec",
    "PointSpec",
    "ReadBlock",
    "Value",
    "ValueType",
    "decode_block",
    "encode_point",
    "load_profile",
    "plan_reads",
    "shipped_profiles",
]

Value = float | bool | None

MAX_REGISTERS_PER_READ = 125  # Modbus spec limit for FC03/FC04
MAX_BITS_PER_READ = 2000  # Modbus spec limit for FC01/FC02


class ValueType(StrEnum):
    BOOL = "bool"
    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    F32 = "f32"


_WIDTH = {ValueType.BOOL: 1, ValueType.U16: 1, ValueType.S16: 1, ValueType.U32: 2,
          ValueType.S32: 2, ValueType.F32: 2}
_STRUCT = {ValueType.U16: ">H", ValueType.S16: ">h", ValueType.U32: ">I", ValueType.S32: ">i",
           ValueType.F32: ">f"}
BIT_FUNCTIONS = frozenset({1, 2})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    function: Literal[1, 2, 3, 4] = Field(description="1 coils, 2 discrete inputs, 3 holding, 4 input")
    address: int = Field(ge=0, le=0xFFFF, description="0-based PDU address")
    type: ValueType
    word_order: Literal["high_first", "low_first"] = "high_first"
    scale: float = 1.0
    count: int = Field(default=1, ge=1, le=256, description="channels: consecutive values")
    unit: str = ""
    invalid: int | None = Field(default=None, description="raw value the device sends for 'no reading'")
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> PointSpec:
        is_bit_fc = self.function in BIT_FUNCTIONS
        if is_bit_fc != (self.type is ValueType.BOOL):
            raise ValueError("type 'bool' goes with function 1 or 2, and only there")
        if self.address + self.span > 0x10000:
            raise ValueError("point runs past address 65535")
        return self

    @property
    def width(self) -> int:
        return _WIDTH[self.type]

    @property
    def is_bool(self) -> bool:
        return self.type is ValueType.BOOL

    @property
    def span(self) -> int:
        return self.width * self.count


class SerialDefaults(_Strict):
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8


ENERGY_UNITS = {"Wh": 1.0, "kWh": 1000.0}  # a counter's unit, in Wh


class EnergyCounterSpec(_Strict):
    """A meter's own energy counter: exact across missed polls, unlike power integrated over time."""

    point: str = Field(description="the point holding the counter; its unit is Wh or kWh")
    resolution_wh: float | None = Field(
        default=None, gt=0,
        description="the smallest step the counter makes, in Wh; default: one raw step of an "
                    "integer point (its scale), required for a float point")


class DeviceProfile(_Strict):
    kind: Literal["modbus"] = "modbus"
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    source: str = Field(default="", description="where the register map comes from")
    serial: SerialDefaults = SerialDefaults()
    default_address: int = Field(default=1, ge=1, le=247)
    max_registers_per_read: int = Field(default=MAX_REGISTERS_PER_READ, ge=1, le=125)
    max_gap: int = Field(default=0, ge=0, description="unused registers a merged read may span")
    points: list[PointSpec] = Field(min_length=1)
    energy_counter: EnergyCounterSpec | None = Field(
        default=None, description="the meter's own energy counter, when it keeps one")

    @model_validator(mode="after")
    def _unique_and_disjoint(self) -> DeviceProfile:
        names = [p.name for p in self.points]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate point names: {sorted(duplicates)}")
        by_fc = sorted(self.points, key=lambda p: (p.function, p.address))
        for a, b in itertools.pairwise(by_fc):
            if a.function == b.function and b.address < a.address + a.span:
                raise ValueError(f"points {a.name!r} and {b.name!r} overlap")
        return self

    @model_validator(mode="after")
    def _counter_is_an_energy_point(self) -> DeviceProfile:
        counter = self.energy_counter
        if counter is None:
            return self
        if counter.point not in {p.name for p in self.points}:
            raise ValueError(f"energy_counter.point: no point {counter.point!r}")
        point = self.point(counter.point)
        if point.is_bool or point.unit not in ENERGY_UNITS:
            raise ValueError(f"energy_counter.point: {point.name!r} must be a number in "
                             f"{' or '.join(ENERGY_UNITS)}, not {point.unit or 'without a unit'}")
        if point.type in (ValueType.S16, ValueType.S32):
            raise ValueError(f"energy_counter.point: {point.name!r} is signed; a counter only counts up")
        if point.type is ValueType.F32 and counter.resolution_wh is None:
            raise ValueError("energy_counter.resolution_wh: a float counter must say its resolution")
        return self

    def counter_resolution_wh(self) -> float:
        """The counter's step in Wh (profiles with an ``energy_counter`` only)."""
        assert self.energy_counter is not None
        point = self.point(self.energy_counter.point)
        if self.energy_counter.resolution_wh is not None:
            return self.energy_counter.resolution_wh
        return abs(point.scale) * ENERGY_UNITS[point.unit]

    def counter_wraps_at_wh(self) -> float | None:
        """Where the counter starts again at 0, in Wh: after its largest raw value (an integer
        point); None for a float point, which does not wrap."""
        assert self.energy_counter is not None
        point = self.point(self.energy_counter.point)
        if point.type is ValueType.F32:
            return None
        return float(1 << (16 * point.width)) * abs(point.scale) * ENERGY_UNITS[point.unit]

    def point(self, name: str) -> PointSpec:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)


AnyProfile: TypeAlias = DeviceProfile | LineProfile


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One Modbus request: a function code, a start address, a count, and the points inside."""

    function: int
    address: int
    count: int
    points: tuple[PointSpec, ...]


def plan_reads(profile: DeviceProfile, only: set[str] | None = None) -> list[ReadBlock]:
    """Merge points (all, or those named in ``only``) into the fewest requests the device allows."""
    blocks: list[ReadBlock] = []
    wanted = [p for p in profile.points if only is None or p.name in only]
    for point in sorted(wanted, key=lambda p: (p.function, p.address)):
        limit = MAX_BITS_PER_READ if point.function in BIT_FUNCTIONS else profile.max_registers_per_read
        if point.span > limit:
            raise ConfigError(f"profile {profile.name}: point {point.name} needs {point.span} "
                              f"registers, more than one read allows ({limit})")
        if blocks:
            last = blocks[-1]
            end = last.address + last.count
            new_end = point.address + point.span
            if (last.function == point.function and point.address <= end + profile.max_gap
                    and new_end - last.address <= limit):
                blocks[-1] = ReadBlock(last.function, last.address, new_end - last.address,
                                       (*last.points, point))
                continue
        blocks.append(ReadBlock(point.function, point.address, point.span, (point,)))
    return blocks


def _decode_one(point: PointSpec, words: Sequence[int]) -> Value:
    if point.width == 2:
        hi, lo = (words[0], words[1]) if point.word_order == "high_first" else (words[1], words[0])
        raw_bytes = struct.pack(">HH", hi & 0xFFFF, lo & 0xFFFF)
        raw_int = (hi << 16) | lo
    else:
        raw_bytes = struct.pack(">H", words[0] & 0xFFFF)
        raw_int = words[0]
    if point.invalid is not None and raw_int == point.invalid:
        return None
    (number,) = struct.unpack(_STRUCT[point.type], raw_bytes)
    if point.type is ValueType.F32 and not math.isfinite(number):  # NaN or ±inf: no reading
        return None
    return round(number * point.scale, 6)


def decode_block(block: ReadBlock, raw: Sequence[int] | Sequence[bool]) -> dict[str, Value | list[Value]]:
    """Decode the raw result of one request into ``{point name: value or list of values}``."""
    if len(raw) < block.count:
        raise ValueError(f"short read: {len(raw)} of {block.count} at {block.address}")
    out: dict[str, Value | list[Value]] = {}
    for point in block.points:
        offset = point.address - block.address
        values: list[Value] = []
        for i in range(point.count):
            start = offset + i * point.width
            if point.type is ValueType.BOOL:
                values.append(bool(raw[start]))
            else:
                values.append(_decode_one(point, [int(w) for w in raw[start:start + point.width]]))
        out[point.name] = values if point.count > 1 else values[0]
    return out


def encode_point(point: PointSpec, values: Sequence[Value]) -> list[int]:
    """Raw registers (or bits as 0/1) for ``values``; ``None`` becomes the point's invalid marker."""
    if len(values) != point.count:
        raise ValueError(f"{point.name}: {len(values)} values for {point.count} channels")
    out: list[int] = []
    for value in values:
        if point.type is ValueType.BOOL:
            out.append(1 if value else 0)
            continue
        if value is None:
            if point.type is ValueType.F32:
                words = struct.unpack(">HH", struct.pack(">f", float("nan")))
            elif point.invalid is not None:
                words = struct.unpack(">HH", struct.pack(">I", point.invalid)) if point.width == 2 \
                    else (point.invalid,)
            else:
                raise ValueError(f"{point.name}: no invalid marker to encode 'unknown'")
        else:
            scaled = float(value) / point.scale
            number: float | int = scaled if point.type is ValueType.F32 else round(scaled)
            packed = struct.pack(_STRUCT[point.type], number)
            words = struct.unpack(">HH", packed) if point.width == 2 else struct.unpack(">H", packed)
        if point.width == 2 and point.word_order == "low_first":
            words = (words[1], words[0])
        out.extend(int(w) for w in words)
    return out


def _profiles_dir() -> Path:
    return Path(str(resources.files("cabinet_agent") / "data" / "profiles"))


def shipped_profiles() -> list[str]:
    return sorted(p.stem for p in _profiles_dir().glob("*.toml"))


def load_profile(name_or_path: str | Path, base_dir: Path | None = None) -> AnyProfile:
    """Load a shipped profile by name, or a profile file by path (relative to ``base_dir``).

    ``kind`` picks the schema: ``"modbus"`` (the default) a register map, ``"line"`` a board
    speaking the line protocol.
    """
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        path = candidate if candidate.is_absolute() or base_dir is None else base_dir / candidate
    else:
        path = _profiles_dir() / f"{name_or_path}.toml"
        if not path.exists():
            raise ConfigError(f"unknown device profile {name_or_path!r}; shipped: "
                              f"{', '.join(shipped_profiles())}")
    data = read_toml(path, "device profile")
    schema: type[DeviceProfile] | type[LineProfile] = (
        LineProfile if data.get("kind") == "line" else DeviceProfile)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path)) from exc
