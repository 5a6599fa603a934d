from __future__ import annotations

import struct

import pytest

from cabinet_agent.common.errors import ConfigError
from cabinet_agent.registers import (
    DeviceProfile,
    PointSpec,
    decode_block,
    encode_point,
    load_profile,
    plan_reads,
    shipped_profiles,
)


def _point(**over: object) -> PointSpec:
    return PointSpec(**{"name": "x", "function": 4, "address": 0, "type": "u16", **over})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "raw", "value"),
    [
        # SDM120: float32, high word first: 0x4366 0x3334 = 230.2 V (hardware.md §1a)
        ({"type": "f32"}, [0x4366, 0x3334], 230.2),
        # PZEM-016: u32 low word first, x0.1 W: 0x000D 0x0001 -> 0x0001000D = 65549 -> 6554.9 W
        ({"type": "u32", "word_order": "low_first", "scale": 0.1}, [0x000D, 0x0001], 6554.9),
        # XY-MD02: s16 x 0.1 degC: 0xFF9C = -100 -> -10.0
        ({"type": "s16", "scale": 0.1}, [0xFF9C], -10.0),
        ({"type": "u16", "scale": 0.1}, [215], 21.5),
        ({"type": "s32"}, [0xFFFF, 0xFFFE], -2),
        ({"type": "u16", "invalid": 0xFFFF}, [0xFFFF], None),
        ({"type": "f32"}, list(struct.unpack(">HH", struct.pack(">f", float("nan")))), None),
    ],
)
def test_decode_encodings(spec: dict, raw: list[int], value: float | None) -> None:
    point = _point(**spec)
    block = plan_reads(DeviceProfile(name="t", points=[point]))[0]
    decoded = decode_block(block, raw)["x"]
    assert decoded == (pytest.approx(value, rel=1e-6) if value is not None else None)


@pytest.mark.parametrize(
    "spec",
    [{"type": "f32"}, {"type": "u32", "word_order": "low_first", "scale": 0.1},
     {"type": "s16", "scale": 0.1}, {"type": "u16", "scale": 0.001, "invalid": 65535},
     {"type": "s32", "word_order": "low_first"}],
)
@pytest.mark.parametrize("value", [0.0, 12.3, 65.5, None])
def test_encode_then_decode_returns_the_value(spec: dict, value: float | None) -> None:
    point = _point(**spec)
    if value is None and point.type.value not in ("f32",) and point.invalid is None:
        with pytest.raises(ValueError, match="invalid marker"):
            encode_point(point, [value])
        return
    block = plan_reads(DeviceProfile(name="t", points=[point]))[0]
    decoded = decode_block(block, encode_point(point, [value]))["x"]
    if value is None:
        assert decoded is None
    else:
        assert decoded == pytest.approx(value, abs=point.scale)


def test_contiguous_points_are_read_in_one_request() -> None:
    profile = load_profile("ladewache-slot-meter-16")
    blocks = plan_reads(profile)
    assert [(b.function, b.address, b.count) for b in blocks] == [(4, 0, 32)]


def test_gaps_split_requests_unless_the_profile_allows_them() -> None:
    points = [_point(name="a", address=0), _point(name="b", address=10)]
    assert len(plan_reads(DeviceProfile(name="t", points=points))) == 2
    assert len(plan_reads(DeviceProfile(name="t", points=points, max_gap=9))) == 1


def test_per_read_limit_is_respected() -> None:
    points = [_point(name="a", address=0, count=100), _point(name="b", address=100, count=100)]
    blocks = plan_reads(DeviceProfile(name="t", points=points))
    assert [b.count for b in blocks] == [100, 100]


def test_only_wanted_points_are_planned() -> None:
    blocks = plan_reads(load_profile("waveshare-io-8ch"), only={"input"})
    assert [(b.function, b.count) for b in blocks] == [(2, 8)]


@pytest.mark.parametrize("name", shipped_profiles())
def test_every_shipped_profile_loads_and_plans(name: str) -> None:
    profile = load_profile(name)
    assert profile.source, f"{name}: say where the register map comes from"
    if isinstance(profile, DeviceProfile):  # line boards have no registers to plan
        assert plan_reads(profile)


def test_overlapping_points_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        DeviceProfile(name="t", points=[_point(name="a", type="f32"), _point(name="b", address=1)])


def test_bool_only_with_bit_functions() -> None:
    with pytest.raises(ValueError, match="bool"):
        _point(type="bool")


def test_profile_error_names_file_and_key(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[points]]\nname = "p"\nfunction = 4\naddress = 0\ntype = "u17"\n')
    with pytest.raises(ConfigError) as info:
        load_profile(str(path))
    assert str(path) in str(info.value) and "points.0.type" in str(info.value)


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="eastron-sdm120"):
        load_profile("no-such-meter")
