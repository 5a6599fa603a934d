"""Sessions are stored once each, survive a restart, and feed battery ageing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cabinet_agent.protocol import (
    Channel,
    ChargeSession,
    EventKind,
    EventMessage,
    SessionEnd,
    encode,
    topic_for,
)
from server.battery import AgeingPolicy, BatteryAgeing
from server.fleet import Fleet
from server.pipeline import Pipeline
from server.sessions import SessionRecorder
from server.tsdb.null import NullSink

T0 = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
POLICY = AgeingPolicy(baseline_sessions=2, recent_sessions=2, worn_drop=0.2)


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


def test_a_session_sent_twice_is_stored_and_written_once(tmp_path: Path) -> None:
    sink = _Lines()
    recorder = SessionRecorder(tmp_path, BatteryAgeing(POLICY))
    pipeline = Pipeline(Fleet(), sink, lambda: T0, recorder)
    topic = topic_for("gs", "c1", Channel.EVENT)
    payload = encode(_event(5, 12.0, 0))
    # The repeat is caught by its (cabinet, boot_id, seq) before it reaches the recorder.
    assert pipeline.handle(topic, payload) and not pipeline.handle(topic, payload)
    assert [line.split(",")[0] for line in sink.lines] == ["event", "session"]
    assert (pipeline.stats().accepted, pipeline.stats().duplicates) == (1, 1)
    # A collector restarted with an empty memory: the recorder still stores it once.
    again = Pipeline(Fleet(), sink, lambda: T0, recorder)
    assert again.handle(topic, payload)
    assert recorder.duplicates == 1
    assert [line.split(",")[0] for line in sink.lines] == ["event", "session", "event"]


def test_battery_baselines_survive_a_restart(tmp_path: Path) -> None:
    first = SessionRecorder(tmp_path, BatteryAgeing(POLICY))
    for seq, (taper, day) in enumerate([(12.0, 0), (12.2, 1), (9.0, 2)]):
        first.record(_event(seq, taper, day))
    first.close()
    ageing = BatteryAgeing(POLICY)
    again = SessionRecorder(tmp_path, ageing)
    assert ageing.worn() == []  # one low session after the baseline: not yet
    again.record(_event(3, 9.1, 3))
    (worn,) = ageing.worn()
    assert worn.asset_tag == "GS-1" and worn.remaining < 0.8
    assert [s.taper_wh for s in again.for_asset("GS-1")] == [9.1, 9.0, 12.2, 12.0]
