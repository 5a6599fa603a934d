"""Line protocol: escaping and schema, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cabinet_agent.common.protocol import (
    DeviceHealth,
    DoorState,
    EventKind,
    EventMessage,
    MainsState,
    PointReading,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
)
from server.tsdb.lines import (
    SLOT_STATE_CODES,
    escape_tag,
    message_lines,
    state_lines,
    telemetry_lines,
    timestamp_ns,
)

TS = datetime(2026, 11, 2, 8, 0, 0, 123456, tzinfo=UTC)
TS_NS = 1_793_606_400_123_456_000
RECEIVED = TS + timedelta(seconds=2)


def _env(**overrides: object) -> dict[str, object]:
    return {"v": 1, "site": "gym-nord", "cabinet": "c1", "boot_id": "a" * 32, "seq": 1,
            "ts": TS, "clock_synced": True, **overrides}


def _telemetry(**overrides: object) -> TelemetryMessage:
    fields: dict[str, object] = {
        "power_w": [12.5, None, 0.0], "states": [SlotState.CHARGING, SlotState.UNKNOWN,
                                                 SlotState.EMPTY],
        "temperature_c": 24.5, "door": DoorState.CLOSED, "mains": MainsState.ON,
        "devices": [DeviceHealth(name="meter", ok=True),
                    DeviceHealth(name="io", ok=False, error="timeout")],
        "poll_ms": 12.0,
    }
    return TelemetryMessage(**{**_env(), **fields, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("iPad 7", r"iPad\ 7"),
        ("a,b", r"a\,b"),
        ("k=v", r"k\=v"),
        ("ends\\", "ends\\\\"),
        ("back\\slash", "back\\\\slash"),
        ("line\nbreak", r"line\ break"),
        ("tab\tand\rcr", r"tab\ and\ cr"),
        ("Raum 1.12, Schrank=A", r"Raum\ 1.12\,\ Schrank\=A"),
        ("Umlaute äöü", r"Umlaute\ äöü"),
    ],
)
def test_tag_escaping(raw: str, escaped: str) -> None:
    assert escape_tag(raw) == escaped


@pytest.mark.parametrize(
    ("ts", "ns"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC), 1_000_001_000),
        (TS, TS_NS),
        (datetime(2026, 11, 2, 9, 0, 0, 123456, tzinfo=UTC) - timedelta(hours=1), TS_NS),
    ],
)
def test_timestamps_are_exact_nanoseconds(ts: datetime, ns: int) -> None:
    assert timestamp_ns(ts) == ns


def test_state_codes_cover_every_slot_state() -> None:
    assert set(SLOT_STATE_CODES) == set(SlotState)
    assert dict(SLOT_STATE_CODES) == {SlotState.EMPTY: 0, SlotState.CHARGING: 1,
                                      SlotState.CHARGED: 2, SlotState.PRESENT_IDLE: 3,
                                      SlotState.FAULT: 4, SlotState.UNKNOWN: 5}


def test_telemetry_lines() -> None:
    lines = telemetry_lines(_telemetry(), {1: "IPAD 001", 3: "IPAD-003"}, RECEIVED)
    assert lines == [
        rf"slot,site=gym-nord,cabinet=c1,slot=1,asset_tag=IPAD\ 001 power_w=12.5,state=1i {TS_NS}",
        f"slot,site=gym-nord,cabinet=c1,slot=2 state=5i {TS_NS}",
        f"slot,site=gym-nord,cabinet=c1,slot=3,asset_tag=IPAD-003 power_w=0.0,state=0i {TS_NS}",
        "cabinet,site=gym-nord,cabinet=c1 temperature_c=24.5,door_open=0i,mains_on=1i,"
        f"poll_ms=12.0,devices_faulty=1i {TS_NS}",
    ]


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({}, "temperature_c=24.5,door_open=0i,mains_on=1i,poll_ms=12.0,devices_faulty=1i"),
        ({"door": DoorState.OPEN, "mains": MainsState.OFF},
         "temperature_c=24.5,door_open=1i,mains_on=0i,poll_ms=12.0,devices_faulty=1i"),
        ({"door": DoorState.UNKNOWN, "mains": MainsState.UNKNOWN, "temperature_c": None,
          "poll_ms": None, "devices": []},
         "devices_faulty=0i"),
        ({"temperature_c": -3.0, "poll_ms": 0.0}, "temperature_c=-3.0,door_open=0i,mains_on=1i,"
                                                   "poll_ms=0.0,devices_faulty=1i"),
    ],
)
def test_cabinet_fields_omit_what_is_unknown(overrides: dict[str, object], fields: str) -> None:
    cabinet = telemetry_lines(_telemetry(**overrides), {}, RECEIVED)[-1]
    assert cabinet == f"cabinet,site=gym-nord,cabinet=c1 {fields} {TS_NS}"


@pytest.mark.parametrize(
    ("power", "field"),
    [
        (None, "state=1i"),
        (12.5, "power_w=12.5,state=1i"),
        (0.0, "power_w=0.0,state=1i"),
        (7, "power_w=7.0,state=1i"),  # always a float: the field type must never change
        (1e-7, "power_w=1e-07,state=1i"),
    ],
)
def test_power_is_a_float_or_omitted(power: float | None, field: str) -> None:
    message = _telemetry(power_w=[power], states=[SlotState.CHARGING])
    assert telemetry_lines(message, {}, RECEIVED)[0] == (
        f"slot,site=gym-nord,cabinet=c1,slot=1 {field} {TS_NS}")


def test_power_list_shorter_than_states_leaves_power_out() -> None:
    message = _telemetry(power_w=[1.0], states=[SlotState.CHARGING, SlotState.CHARGED])
    assert telemetry_lines(message, {}, RECEIVED)[1] == (
        f"slot,site=gym-nord,cabinet=c1,slot=2 state=2i {TS_NS}")


def test_state_message_lines() -> None:
    message = StateMessage(**_env(), slots=[  # type: ignore[arg-type]
        SlotSnapshot(slot=2, state=SlotState.CHARGED, power_w=1.5, since=TS),
        SlotSnapshot(slot=5, state=SlotState.FAULT, power_w=None, since=TS),
    ], door=DoorState.OPEN, temperature_c=None, mains=MainsState.UNKNOWN, devices=[])
    assert state_lines(message, {2: "T,2"}, RECEIVED) == [
        rf"slot,site=gym-nord,cabinet=c1,slot=2,asset_tag=T\,2 power_w=1.5,state=2i {TS_NS}",
        f"slot,site=gym-nord,cabinet=c1,slot=5 state=4i {TS_NS}",
        f"cabinet,site=gym-nord,cabinet=c1 door_open=1i,devices_faulty=0i {TS_NS}",
    ]


def test_unsynchronised_clock_uses_the_receive_time() -> None:
    message = _telemetry(clock_synced=False, ts=datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC))
    for line in telemetry_lines(message, {}, RECEIVED):
        assert line.endswith(f" {timestamp_ns(RECEIVED)}")


@pytest.mark.parametrize(
    "message",
    [
        StatusMessage(**_env(), status="online"),  # type: ignore[arg-type]
        EventMessage(**_env(), event=EventKind.DOOR_CHANGED, old="closed", new="open"),  # type: ignore[arg-type]
    ],
)
def test_status_birth_and_event_write_no_lines(message: object) -> None:
    assert message_lines(message, {}, RECEIVED) == []  # type: ignore[arg-type]


def test_message_lines_dispatches_by_type() -> None:
    assert message_lines(_telemetry(), {}, RECEIVED) == telemetry_lines(_telemetry(), {}, RECEIVED)


def _unescape(escaped: str) -> str:
    out, chars = [], iter(escaped)
    for char in chars:
        out.append(next(chars) if char == "\\" else char)
    return "".join(out)


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split at separators not preceded by an escaping backslash (as a line-protocol reader)."""
    parts, current, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            current += [char, next(chars)]
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


@given(st.text(max_size=64))
def test_any_asset_tag_survives_a_line_protocol_reader(tag: str) -> None:
    message = _telemetry(power_w=[1.0], states=[SlotState.CHARGING])
    (line, _) = telemetry_lines(message, {1: tag} if tag else {}, RECEIVED)
    series, fields, ts = _split_unescaped(line, " ")
    assert (fields, ts) == ("power_w=1.0,state=1i", str(TS_NS))
    tags = dict(_split_unescaped(pair, "=") for pair in _split_unescaped(series, ",")[1:])
    expected = tag.translate(str.maketrans("\n\r\t", "   "))
    assert {k: _unescape(v) for k, v in tags.items()}.get("asset_tag", "") == expected


def test_a_finished_session_becomes_one_point_with_its_end_as_a_tag() -> None:
    from cabinet_agent.common.protocol import ChargeSession, EventKind, EventMessage, SessionEnd
    from server.tsdb.lines import message_lines

    ended = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    session = ChargeSession(slot=3, asset_tag="GS 0003", started_at=ended - timedelta(hours=2),
                            ended_at=ended, duration_s=7200, energy_wh=31.5, peak_w=20.1,
                            end=SessionEnd.FULL, taper_wh=9.8)
    message = EventMessage(v=1, site="gs", cabinet="c1", boot_id="b" * 32, seq=4, ts=ended,
                           clock_synced=True, event=EventKind.SESSION_ENDED, slot=3, session=session)
    assert message_lines(message, {}, ended) == [
        "session,site=gs,cabinet=c1,slot=3,end=full,asset_tag=GS\\ 0003 "
        f"energy_wh=31.5,duration_s=7200.0,peak_w=20.1,taper_wh=9.8 {int(ended.timestamp()) * 10**9}"]


def test_points_become_one_line_each_with_escaped_tags() -> None:
    points = [PointReading(device="meter", point="import_energy", value=1234.5, unit="kWh"),
              PointReading(device="meter", point="current", channel=3, value=0.25, unit="A"),
              PointReading(device="climate", point="humidity", value=45.0, unit="% rH"),
              PointReading(device="io", point="count", value=7.0)]
    lines = telemetry_lines(_telemetry(points=points), {}, RECEIVED)
    assert lines[-4:] == [
        f"point,site=gym-nord,cabinet=c1,device=meter,point=import_energy,unit=kWh value=1234.5 {TS_NS}",
        f"point,site=gym-nord,cabinet=c1,device=meter,point=current,channel=3,unit=A value=0.25 {TS_NS}",
        rf"point,site=gym-nord,cabinet=c1,device=climate,point=humidity,unit=%\ rH value=45.0 {TS_NS}",
        f"point,site=gym-nord,cabinet=c1,device=io,point=count value=7.0 {TS_NS}",
    ]


@pytest.mark.parametrize("points", [None, []])
def test_telemetry_without_points_writes_no_point_lines(points: list[PointReading] | None) -> None:
    lines = telemetry_lines(_telemetry(points=points), {}, RECEIVED)
    assert not any(line.startswith("point,") for line in lines) and len(lines) == 4


def test_a_session_says_how_its_energy_was_measured_in_a_tag() -> None:
    """Protocol revision 5: counter, mixed or integrated; absent from older agents' sessions."""
    from cabinet_agent.common.protocol import (
        ChargeSession,
        EnergyMethod,
        EventKind,
        EventMessage,
        SessionEnd,
    )
    from server.tsdb.lines import message_lines

    ended = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    session = ChargeSession(slot=1, started_at=ended - timedelta(hours=3), ended_at=ended,
                            duration_s=10800, energy_wh=57.0, peak_w=20.0, end=SessionEnd.FULL,
                            energy_method=EnergyMethod.COUNTER)
    message = EventMessage(v=1, site="gs", cabinet="c1", boot_id="b" * 32, seq=4, ts=ended,
                           clock_synced=True, event=EventKind.SESSION_ENDED, slot=1, session=session)
    [line] = message_lines(message, {}, ended)
    assert line.startswith("session,site=gs,cabinet=c1,slot=1,end=full,energy_method=counter "
                           "energy_wh=57.0,")
