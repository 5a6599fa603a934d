"""Sessions are stored once each, survive a restart, and feed battery ageing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from cabinet_agent.common.protocol import (
    BirthMessage,
    Channel,
    ChargeSession,
    EventKind,
    EventMessage,
    SessionEnd,
    SlotInfo,
    encode,
    topic_for,
)
from server.battery import AgeingPolicy, BatteryAgeing, BatteryVerdict
from server.events import EventLog
from server.pipeline import Pipeline
from server.sessions import SessionRecorder
from server.tsdb.null import NullSink
from tests.support.inventory import tagged_fleet
from tests.support.store import new_store, store_at

pytestmark = pytest.mark.store

T0 = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
POLICY = AgeingPolicy(baseline_sessions=2, recent_sessions=2, worn_drop=0.2)
TAGS = {("gs", "c1"): {1: "GS-1"}}  # the inventory's


def _event(seq: int, taper_wh: float, day: int) -> EventMessage:
    ended = T0 + timedelta(days=day)
    session = ChargeSession(slot=1, asset_tag="GS-1", started_at=ended - timedelta(hours=3),
                            ended_at=ended, duration_s=10800, energy_wh=35.0, peak_w=20.0,
                            end=SessionEnd.FULL, taper_wh=taper_wh)
    return EventMessage(v=1, site="gs", cabinet="c1", boot_id="a" * 32, seq=seq, ts=ended,
                        clock_synced=True, event=EventKind.SESSION_ENDED, slot=1, session=session)


class _Lines(NullSink):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def write(self, lines: object) -> None:  # type: ignore[override]
        self.lines.extend(lines)  # type: ignore[arg-type]


def _born(pipeline: Pipeline) -> Pipeline:
    """The cabinet's birth: its slots, and with them the inventory's tags, are known."""
    birth = BirthMessage(v=1, site="gs", cabinet="c1", boot_id="a" * 32, seq=0, ts=T0,
                         clock_synced=True, agent_version="0.2", config_hash="00000000",
                         cabinet_model="m", slot_count=1, poll_interval_s=1.0,
                         telemetry_interval_s=10.0, slots=[SlotInfo(slot=1)])
    assert pipeline.handle(topic_for("gs", "c1", Channel.BIRTH), encode(birth))
    return pipeline


class _Ageing(BatteryAgeing):
    """Battery ageing that keeps what it was given."""

    def __init__(self) -> None:
        super().__init__(POLICY)
        self.added: list[ChargeSession] = []

    def add(self, session: ChargeSession) -> BatteryVerdict | None:
        self.added.append(session)
        return super().add(session)


def test_a_session_sent_twice_is_stored_written_and_aged_once(tmp_path: Path) -> None:
    sink = _Lines()
    ageing = _Ageing()
    recorder = SessionRecorder(store_at(tmp_path), ageing)
    ledger = EventLog(recorder.store)
    pipeline = _born(Pipeline(tagged_fleet(TAGS), sink, lambda: T0, recorder, ledger))
    topic = topic_for("gs", "c1", Channel.EVENT)
    payload = encode(_event(5, 12.0, 0))
    # The repeat is caught by its (cabinet, boot_id, seq) before it reaches the ledger.
    assert pipeline.handle(topic, payload) and not pipeline.handle(topic, payload)
    assert [line.split(",")[0] for line in sink.lines] == ["event", "session"]
    assert (pipeline.stats().accepted, pipeline.stats().duplicates) == (2, 1)  # birth, event
    assert [s.taper_wh for s in ageing.added] == [12.0]
    ledger.close()
    # A collector restarted with an empty memory: the event ledger in the store still knows it.
    ageing_again = _Ageing()
    again_recorder = SessionRecorder(store_at(tmp_path), ageing_again)
    again_ledger = EventLog(again_recorder.store)
    again = _born(Pipeline(tagged_fleet(TAGS), sink, lambda: T0, again_recorder, again_ledger))
    again.handle(topic, payload)
    assert (again.stats().duplicates, again_ledger.duplicates, again_ledger.stored) == (1, 1, 0)
    assert [line.split(",")[0] for line in sink.lines] == ["event", "session"]  # no second point
    assert [s.taper_wh for s in again_recorder.for_asset("GS-1")] == [12.0]
    assert [s.taper_wh for s in ageing_again.added] == [12.0]  # from the store at start, only
    again_ledger.close()


def test_the_pipelines_own_ledger_keeps_the_sessions_with_their_events() -> None:
    """Without a ledger given, the pipeline keeps one in its sessions' store: a session row is
    only ever written with its event."""
    recorder = SessionRecorder(new_store(), BatteryAgeing(POLICY))
    pipeline = _born(Pipeline(tagged_fleet(TAGS), _Lines(), lambda: T0, recorder))
    assert pipeline.handle(topic_for("gs", "c1", Channel.EVENT), encode(_event(7, 12.0, 0)))
    assert [s.taper_wh for s in recorder.for_asset("GS-1")] == [12.0]
    assert pipeline.stats().events_stored == 1
    assert EventLog(recorder.store).seen(_event(7, 12.0, 0))


def test_battery_baselines_survive_a_restart(tmp_path: Path) -> None:
    first = SessionRecorder(store_at(tmp_path), BatteryAgeing(POLICY))
    for seq, (taper, day) in enumerate([(12.0, 0), (12.2, 1), (9.0, 2)]):
        first.record(_event(seq, taper, day))
    with pytest.raises(IntegrityError):  # without the event ledger, a repeat is the caller's mistake
        first.record(_event(0, 12.0, 0))
    first.close()
    ageing = BatteryAgeing(POLICY)
    again = SessionRecorder(store_at(tmp_path), ageing)
    assert ageing.worn() == []  # one low session after the baseline: not yet
    again.record(_event(3, 9.1, 3))
    (worn,) = ageing.worn()
    assert worn.asset_tag == "GS-1" and worn.remaining < 0.8
    assert [s.taper_wh for s in again.for_asset("GS-1")] == [9.1, 9.0, 12.2, 12.0]


def test_the_store_keeps_how_a_sessions_energy_was_measured(tmp_path: Path) -> None:
    """Protocol revision 5: the method is stored with the session (null from older agents)."""
    from cabinet_agent.common.protocol import EnergyMethod

    recorder = SessionRecorder(store_at(tmp_path), BatteryAgeing(POLICY))
    counted = _event(1, 12.0, 0)
    assert counted.session is not None
    counted = counted.model_copy(update={"session": counted.session.model_copy(
        update={"energy_method": EnergyMethod.COUNTER})})
    recorder.record(counted)
    recorder.record(_event(2, 12.1, 1))
    assert [s.energy_method for s in recorder.for_asset("GS-1")] == [None, EnergyMethod.COUNTER]
    recorder.close()
