"""The one boundary for what a cabinet sends: form (protocol), counts and times (server/boundary.py),
and what a refused message leaves behind: a count against its own cabinet, nothing else."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cabinet_agent.common.protocol import (
    MAX_POINTS,
    MAX_SEQ,
    Channel,
    ProtocolError,
    TelemetryMessage,
    decode,
    topic_for,
)
from server.boundary import NESTED_MAX_AGE, Boundary, Bounds
from server.fleet import Fleet
from server.pipeline import Pipeline
from tests.support.sinks import ListSink

NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BOOT = "d" * 32
_SEQ = itertools.count(1)



def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _env(cabinet: str = "a", **overrides: Any) -> dict[str, Any]:
    return {"v": 1, "site": "gs-x", "cabinet": cabinet, "boot_id": BOOT, "seq": next(_SEQ),
            "ts": _iso(NOW), "clock_synced": True, **overrides}


def _birth(slots: int = 4, cabinet: str = "a") -> dict[str, Any]:
    return {**_env(cabinet), "type": "birth", "agent_version": "1.0", "config_hash": "ab" * 8,
            "cabinet_model": "ladewache-16", "slot_count": slots,
            "slots": [{"slot": i} for i in range(1, slots + 1)], "poll_interval_s": 5.0,
            "telemetry_interval_s": 60.0}


def _telemetry(slots: int = 4, cabinet: str = "a", **overrides: Any) -> dict[str, Any]:
    return {**_env(cabinet), "type": "telemetry", "power_w": [5.0] * slots,
            "states": ["charging"] * slots, "temperature_c": 21.0, "door": "closed",
            "mains": "on", "devices": [{"name": "meter", "ok": True}], **overrides}


def _state(cabinet: str = "a", since: str | None = None, **overrides: Any) -> dict[str, Any]:
    return {**_env(cabinet), "type": "state",
            "slots": [{"slot": 1, "state": "charging", "power_w": 5.0,
                       "since": since or _iso(NOW - timedelta(minutes=5))}],
            "door": "closed", "temperature_c": 21.0, "mains": "on", "devices": [], **overrides}


def _raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _topic(payload: dict[str, Any]) -> str:
    return topic_for(payload["site"], payload["cabinet"], Channel(payload["type"]))


# -- form: the protocol ------------------------------------------------------------------------

@pytest.mark.parametrize(("payload", "where"), [
    (b'"temperature_c": 1e999', "temperature_c"),
    (b'"temperature_c": NaN', "temperature_c"),
    (b'"temperature_c": Infinity', "temperature_c"),
    (b'"temperature_c": -Infinity', "temperature_c"),
])
def test_numbers_must_be_finite(payload: bytes, where: str) -> None:
    body = _raw(_telemetry()).replace(b'"temperature_c": 21.0', payload)
    with pytest.raises(ProtocolError) as caught:
        decode(_topic(_telemetry()), body)
    assert where in caught.value.detail


@pytest.mark.parametrize(("overrides", "where"), [
    ({"seq": MAX_SEQ + 1}, "seq"),
    ({"power_w": [1.0] * 257, "states": ["charging"] * 257}, "power_w"),
    ({"devices": [{"name": f"d{i}", "ok": True} for i in range(33)]}, "devices"),
    ({"devices": [{"name": "", "ok": False}]}, "devices.0.name"),
    # revision 4: extra points, bounded in count, names, unit; finite numbers only
    ({"points": [{"device": "m", "point": f"p{i}", "value": 1.0} for i in range(MAX_POINTS + 1)]},
     "points"),
    ({"points": [{"device": "m" * 65, "point": "energy", "value": 1.0}]}, "points.0.device"),
    ({"points": [{"device": "Meter 1", "point": "energy", "value": 1.0}]}, "points.0.device"),
    ({"points": [{"device": "m", "point": "e" * 65, "value": 1.0}]}, "points.0.point"),
    ({"points": [{"device": "m", "point": "energy", "value": 1.0, "unit": "u" * 17}]},
     "points.0.unit"),
    ({"points": [{"device": "m", "point": "energy", "channel": 257, "value": 1.0}]},
     "points.0.channel"),
    ({"points": [{"device": "m", "point": "energy", "value": None}]}, "points.0.value"),
])
def test_the_protocol_bounds_hold(overrides: dict[str, Any], where: str) -> None:
    message = _telemetry(**overrides)
    with pytest.raises(ProtocolError) as caught:
        decode(_topic(message), _raw(message))
    assert caught.value.reason == "schema"
    assert where in caught.value.detail


def test_a_point_value_must_be_finite() -> None:
    message = _telemetry(points=[{"device": "meter", "point": "energy", "value": 7.0}])
    body = _raw(message).replace(b'"value": 7.0', b'"value": 1e999')
    with pytest.raises(ProtocolError) as caught:
        decode(_topic(message), body)
    assert "points.0.value" in caught.value.detail


def test_points_at_the_bounds_are_valid() -> None:
    points = [{"device": "m" * 64, "point": f"p{i}", "channel": 256, "value": -1.5e300,
               "unit": "u" * 16} for i in range(MAX_POINTS)]
    message = _telemetry(points=points)
    decoded = decode(_topic(message), _raw(message))
    assert isinstance(decoded, TelemetryMessage) and decoded.points is not None
    assert len(decoded.points) == MAX_POINTS


def test_the_largest_sequence_number_is_valid() -> None:
    message = _telemetry(seq=MAX_SEQ)
    assert decode(_topic(message), _raw(message)).seq == MAX_SEQ


def test_an_event_for_a_slot_beyond_256_is_refused() -> None:
    event = {**_env(), "type": "event", "event": "slot_changed", "slot": 10**9}
    with pytest.raises(ProtocolError):
        decode(_topic(event), _raw(event))


# -- counts: what the cabinet declared and the collector's limits ------------------------------

def _decoded(payload: dict[str, Any]) -> Any:
    return decode(_topic(payload), _raw(payload))


def test_telemetry_beyond_the_declared_slots_is_refused() -> None:
    boundary = Boundary()
    boundary.check_counts(_decoded(_telemetry(slots=4)), declared_slots=4)
    with pytest.raises(ProtocolError) as caught:
        boundary.check_counts(_decoded(_telemetry(slots=5)), declared_slots=4)
    assert caught.value.reason == "too_many_slots"


def test_the_global_limits_hold_without_a_birth() -> None:
    boundary = Boundary(Bounds(max_slots=8, max_devices=2))
    with pytest.raises(ProtocolError) as slots:
        boundary.check_counts(_decoded(_telemetry(slots=9)), declared_slots=None)
    assert slots.value.reason == "too_many_slots"
    with pytest.raises(ProtocolError) as birth:
        boundary.check_counts(_decoded(_birth(slots=9)), declared_slots=None)
    assert birth.value.reason == "too_many_slots"
    devices = [{"name": f"d{i}", "ok": False} for i in range(3)]
    with pytest.raises(ProtocolError) as many:
        boundary.check_counts(_decoded(_telemetry(devices=devices)), declared_slots=None)
    assert many.value.reason == "too_many_devices"


def test_a_state_naming_a_slot_twice_is_refused() -> None:
    state = _state()
    state["slots"] = state["slots"] * 2
    with pytest.raises(ProtocolError):
        Boundary().check_counts(_decoded(state), declared_slots=4)


# -- time: a window around the receive time ----------------------------------------------------

def test_a_time_inside_the_window_is_kept_as_it_is() -> None:
    message = _decoded(_state())
    checked = Boundary().normalise(message, message.ts, NOW)
    assert checked.message is message and not checked.out_of_window


@pytest.mark.parametrize("ts", [datetime(9999, 12, 31, tzinfo=UTC), datetime(1, 1, 1, 0, 10, tzinfo=UTC),
                                NOW + timedelta(minutes=6), NOW - timedelta(days=91)])
def test_a_time_outside_the_window_becomes_the_receive_time(ts: datetime) -> None:
    message = _decoded(_state(ts=_iso(ts), since=_iso(ts - timedelta(minutes=5))))
    checked = Boundary().normalise(message, message.ts, NOW)
    assert checked.out_of_window and checked.when == NOW and checked.message.ts == NOW
    # the slot keeps its distance to the message: five minutes before it
    assert checked.message.slots[0].since == NOW - timedelta(minutes=5)


def test_a_replay_from_after_the_summer_holidays_keeps_its_time() -> None:
    ts = NOW - timedelta(days=45)
    message = _decoded(_state(ts=_iso(ts), since=_iso(ts - timedelta(hours=1)), replayed=True))
    checked = Boundary().normalise(message, message.ts, NOW)
    assert not checked.out_of_window and checked.message.ts == ts


@pytest.mark.parametrize(("since", "expected"), [
    (datetime(9999, 1, 1, tzinfo=UTC), NOW),  # after its own message: never
    (datetime(1, 1, 1, tzinfo=UTC), NOW - NESTED_MAX_AGE),
])
def test_times_inside_a_message_are_clamped(since: datetime, expected: datetime) -> None:
    message = _decoded(_state(since=_iso(since)))
    checked = Boundary().normalise(message, message.ts, NOW)
    assert not checked.out_of_window
    assert checked.message.slots[0].since == expected


def test_a_session_in_year_9999_is_moved_into_the_window() -> None:
    ts = datetime(9999, 12, 31, tzinfo=UTC)
    session = {"slot": 1, "started_at": _iso(ts - timedelta(hours=2)), "ended_at": _iso(ts),
               "duration_s": 7200.0, "energy_wh": 30.0, "peak_w": 20.0, "end": "full"}
    event = {**_env(ts=_iso(ts)), "type": "event", "event": "session_ended", "slot": 1,
             "session": session}
    checked = Boundary().normalise(_decoded(event), ts, NOW)
    assert checked.message.session.ended_at == NOW
    assert checked.message.session.started_at == NOW - timedelta(hours=2)


# -- the pipeline: a refused message is counted against its own cabinet, and nothing else ------

def _pipeline(sink: ListSink, fleet: Fleet) -> Pipeline:
    return Pipeline(fleet, sink, clock=lambda: NOW)


def test_a_refused_message_is_counted_for_its_cabinet_only() -> None:
    sink, fleet = ListSink(), Fleet()
    pipeline = _pipeline(sink, fleet)
    for cabinet in ("a", "b"):
        assert pipeline.handle(_topic(_birth(cabinet=cabinet)), _raw(_birth(cabinet=cabinet)))
    hostile = _telemetry(slots=200)
    assert not pipeline.handle(_topic(hostile), _raw(hostile))
    bad_json = b'{"v": 1, "temperature_c": 1e999'
    assert not pipeline.handle(_topic(hostile), bad_json)
    a = pipeline.integrity.get("gs-x", "a")
    assert (a.rejected, a.last_rejected) == (2, "bad_json")
    record = fleet.get("gs-x", "a")
    assert record is not None and record.integrity == a  # what /api/fleet and the page show
    assert pipeline.integrity.get("gs-x", "b").rejected == 0
    assert pipeline.stats().rejected["too_many_slots"] == 1
    slots = fleet.get("gs-x", "a").slots  # as the birth left them: nothing of it was applied
    assert len(slots) == 4 and all(s.power_w is None for s in slots)


def test_a_message_from_year_9999_is_stored_at_the_receive_time_and_flagged() -> None:
    sink, fleet = ListSink(), Fleet()
    pipeline = _pipeline(sink, fleet)
    message = _state(ts="9999-12-31T00:00:00Z", since="9999-12-30T23:00:00Z")
    assert pipeline.handle(_topic(message), _raw(message))
    stamp = str(int(NOW.timestamp()) * 10**9)
    assert sink.lines and all(line.endswith(stamp) for line in sink.lines)
    view = fleet.get("gs-x", "a")
    assert view.last_message_ts == NOW and view.slots[0].since == NOW - timedelta(hours=1)
    integrity = pipeline.integrity.get("gs-x", "a")
    assert integrity.out_of_window == 1 and integrity.clock_suspect
    # the next honest message is not "older" than a year-9999 one: it updates the cabinet
    honest = _state(ts=_iso(NOW + timedelta(seconds=30)))
    honest["slots"][0]["state"] = "charged"
    assert pipeline.handle(_topic(honest), _raw(honest))
    assert fleet.get("gs-x", "a").slots[0].state.value == "charged"


def test_rejections_on_a_topic_that_is_no_cabinet_create_nothing() -> None:
    pipeline = _pipeline(ListSink(), Fleet())
    assert not pipeline.handle("ladewache/v1/UPPER/x/telemetry", b"{}")
    assert not pipeline.handle("something/else", b"{}")
    assert pipeline.integrity.snapshot() == {}
