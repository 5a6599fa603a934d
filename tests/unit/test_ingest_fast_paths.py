"""The ingest path's shortcuts give what the general way gives: the fleet's next-telemetry fold,
the running count of missing sequence numbers, the integrity counters kept as values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cabinet_agent.common.protocol import (
    Certainty,
    DeviceHealth,
    DoorState,
    MainsState,
    SlotSnapshot,
    SlotState,
    StateMessage,
    TelemetryMessage,
)
from server.fleet import Fleet, _fold, _next_telemetry, _replace
from server.integrity import CabinetIntegrity, Integrity, SeqRanges

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ENV = {"v": 1, "site": "gs", "cabinet": "c1", "boot_id": "a" * 32, "clock_synced": True}

telemetry_fields = st.fixed_dictionaries({
    "states": st.lists(st.sampled_from(list(SlotState)), max_size=6),
    "power_w": st.lists(st.one_of(st.none(), st.floats(0, 30)), max_size=6),
    "certainty": st.one_of(st.none(), st.lists(st.sampled_from(list(Certainty)), max_size=6)),
    "door": st.sampled_from(list(DoorState)),
    "mains": st.sampled_from(list(MainsState)),
    "temperature_c": st.one_of(st.none(), st.floats(-10, 50)),
    "devices": st.lists(st.builds(DeviceHealth, name=st.sampled_from(["meter", "io"]),
                                  ok=st.booleans()), max_size=2),
})


def _state(seq: int, slots: list[tuple[int, SlotState]]) -> StateMessage:
    return StateMessage(**ENV, seq=seq, ts=T0, slots=[
        SlotSnapshot(slot=n, state=s, power_w=1.0, since=T0 - timedelta(hours=1),
                     last_draw_at=T0 - timedelta(minutes=5), unseen_since=T0)
        for n, s in slots], door=DoorState.CLOSED, temperature_c=20.0, mains=MainsState.ON,
        devices=[DeviceHealth(name="meter", ok=True)])


@settings(max_examples=200, deadline=None)
@given(first=telemetry_fields, then=st.lists(telemetry_fields, min_size=1, max_size=4),
       numbered=st.lists(st.tuples(st.integers(1, 8), st.sampled_from(list(SlotState))),
                         unique_by=lambda s: s[0], max_size=6))
def test_the_next_telemetry_folds_in_as_the_general_way_does(
        first: dict[str, object], then: list[dict[str, object]],
        numbered: list[tuple[int, SlotState]]) -> None:
    fleet = Fleet()
    fleet.apply(_state(1, numbered), T0)  # slots from a state: maybe numbered with gaps
    fleet.apply(TelemetryMessage(**ENV, seq=2, ts=T0, **first), T0)  # type: ignore[arg-type]
    integrity = CabinetIntegrity(gaps=3)
    for n, fields in enumerate(then, start=3):
        old = fleet.get("gs", "c1")
        assert old is not None
        message = TelemetryMessage(**ENV, seq=n, ts=T0 + timedelta(minutes=n),
                                   **fields)  # type: ignore[arg-type]
        at = T0 + timedelta(minutes=n, seconds=1)
        general = _replace(old, {**_fold(old, message, at), "integrity": integrity})
        assert _next_telemetry(old, message, at, integrity) == general
        assert fleet.apply(message, at, integrity) == general


@settings(max_examples=300, deadline=None)
@given(numbers=st.lists(st.integers(0, 60), max_size=80), limit=st.integers(2, 6))
def test_missing_numbers_are_counted_as_they_come(numbers: list[int], limit: int) -> None:
    ranges, recorded = SeqRanges(max_ranges=limit), set()
    for number in numbers:
        if ranges.add(number):
            recorded.add(number)
        low, high = min(recorded), max(recorded)
        # the holes between the intervals (a hole given up on counts as seen there) and those
        # given up on: what the intervals said when it was summed on every call
        assert ranges.missing == ranges.missing_between(low, high) + ranges.written_off
        if not ranges.written_off:  # nothing given up: the plain count
            assert ranges.missing == high - low + 1 - len(recorded)


def test_the_counters_kept_are_those_of_the_last_change() -> None:
    integrity = Integrity()
    messages = [TelemetryMessage(**ENV, seq=seq, ts=T0, power_w=[], states=[], temperature_c=None,
                                 door=DoorState.CLOSED, mains=MainsState.ON, devices=[])
                for seq in (1, 2, 5, 5, 3)]
    for message in messages:
        _, view = integrity.observe(message, T0 + timedelta(seconds=2))
        assert integrity.get("gs", "c1") is view
        assert integrity.snapshot() == {"gs/c1": view}
    assert (view.gaps, view.duplicates, view.last_skew_s) == (1, 1, -2.0)
    assert integrity.out_of_window("gs", "c1", 9e9).out_of_window == 1
    assert integrity.rejected("gs", "c1", "schema")
    assert integrity.get("gs", "c1").rejected == 1 and integrity.get("gs", "c1").out_of_window == 1
