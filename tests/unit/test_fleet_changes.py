"""Fleet's change feed, and the fast telemetry fold against a plain reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cabinet_agent.common.protocol import (
    PROTOCOL_VERSION,
    AgentStatus,
    DoorState,
    MainsState,
    SlotSnapshot,
    SlotState,
    StateMessage,
    StatusMessage,
    TelemetryMessage,
)
from server.fleet import Fleet, SlotView

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
BOOT = "b" * 32


def _env(cabinet: str, seq: int) -> dict[str, object]:
    return {"v": PROTOCOL_VERSION, "site": "gs-park", "cabinet": cabinet, "boot_id": BOOT,
            "seq": seq, "ts": T0 + timedelta(seconds=seq), "clock_synced": True}


def _status(cabinet: str, seq: int) -> StatusMessage:
    return StatusMessage(**_env(cabinet, seq), status=AgentStatus.ONLINE)  # type: ignore[arg-type]


def test_changed_since_returns_only_cabinets_changed_after_a_version_newest_first() -> None:
    fleet = Fleet()
    assert fleet.changed_since(0) == (0, [])
    for seq, cabinet in enumerate(("a", "b", "c")):
        fleet.apply(_status(cabinet, seq), T0)
    version, changed = fleet.changed_since(0)
    assert version == fleet.version == 3
    assert [c.cabinet for c in changed] == ["c", "b", "a"]

    fleet.apply(_status("a", 10), T0)
    fleet.apply(_status("b", 11), T0)
    fleet.apply(_status("a", 12), T0)  # twice: listed once, with its newest record
    version2, changed = fleet.changed_since(version)
    assert version2 == 6
    assert [c.cabinet for c in changed] == ["a", "b"]
    assert changed[0] is fleet.get("gs-park", "a")
    assert changed[0].last_seq == 12
    assert fleet.changed_since(version2) == (version2, [])


def test_a_replayed_older_message_is_a_change_too() -> None:
    """It does not regress the record but moves last_seen_at and the stale counter."""
    fleet = Fleet()
    fleet.apply(_status("a", 5), T0)
    version = fleet.version
    fleet.apply(_status("a", 3), T0 + timedelta(seconds=1))
    _, changed = fleet.changed_since(version)
    assert [(c.last_seq, c.stale) for c in changed] == [(5, 1)]


def _reference_fold(slots: tuple[SlotView, ...], message: TelemetryMessage) -> tuple[SlotView, ...]:
    """The plain algorithm the fast fold replaced: a dict by slot number, sorted at the end."""
    current = {s.slot: s for s in slots}
    for index, state in enumerate(message.states):
        power = message.power_w[index] if index < len(message.power_w) else None
        base = current.get(index + 1)
        if base is None:
            current[index + 1] = SlotView(index + 1, None, state, power, message.ts)
        else:
            since = base.since if base.state is state and base.since is not None else message.ts
            current[index + 1] = SlotView(index + 1, base.asset_tag, state, power, since)
    return tuple(current[n] for n in sorted(current))


_states = st.sampled_from(list(SlotState))


@given(
    before=st.lists(st.tuples(st.integers(1, 12), _states), max_size=12),
    states=st.lists(_states, max_size=12),
    powers=st.lists(st.one_of(st.none(), st.floats(0, 30)), max_size=12),
)
def test_the_fast_telemetry_fold_equals_the_reference(
        before: list[tuple[int, SlotState]], states: list[SlotState],
        powers: list[float | None]) -> None:
    """Whatever slots a state message left (with gaps or not), a telemetry message folds in
    exactly as the plain algorithm would: same slots, states, readings, since, tags."""
    fleet = Fleet()
    numbers = dict(before)  # slot -> state, unique
    if numbers:
        fleet.apply(StateMessage(  # type: ignore[arg-type]
            **_env("a", 1),
            slots=[SlotSnapshot(slot=n, state=s, power_w=None, since=T0) for n, s in numbers.items()],
            door=DoorState.CLOSED, temperature_c=None, mains=MainsState.ON, devices=[]), T0)
    old = fleet.get("gs-park", "a")
    old_slots = old.slots if old is not None else ()
    telemetry = TelemetryMessage(  # type: ignore[arg-type]
        **_env("a", 2), power_w=powers, states=states, temperature_c=None,
        door=DoorState.CLOSED, mains=MainsState.ON, devices=[])
    new = fleet.apply(telemetry, T0 + timedelta(seconds=2))
    assert new.slots == _reference_fold(old_slots, telemetry)
