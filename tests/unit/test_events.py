"""The event ledger in the store: an older installation's ``events.sqlite`` taken over once, an
event and its charge session stored together or not at all, and a connection the database dropped
replaced without losing the event."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import column, func, select, table

from cabinet_agent.common.protocol import ChargeSession, EventKind, EventMessage, SessionEnd
from server.battery import BatteryAgeing
from server.events import EventLog, take_over_events
from server.sessions import SessionRecorder
from tests.support.store import new_store, on_postgres, store_at

pytestmark = pytest.mark.store

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
BOOT = "b" * 32

# events.sqlite as server/events.py created it before the store (issue 18)
_OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    site TEXT NOT NULL,
    cabinet TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    slot INTEGER,
    device TEXT,
    old TEXT,
    new TEXT,
    replayed INTEGER NOT NULL,
    PRIMARY KEY (site, cabinet, boot_id, seq)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (site, cabinet, ts);
"""


def _door(seq: int, at: datetime = T0) -> EventMessage:
    return EventMessage(v=1, site="gs", cabinet="c1", boot_id=BOOT, seq=seq, ts=at, clock_synced=True,
                        event=EventKind.DOOR_CHANGED, old="closed", new="open")


def _session_ended(seq: int) -> EventMessage:
    session = ChargeSession(slot=2, asset_tag="GS-2", started_at=T0 - timedelta(hours=2), ended_at=T0,
                            duration_s=7200.0, energy_wh=30.0, peak_w=20.0, end=SessionEnd.FULL,
                            taper_wh=9.5)
    return EventMessage(v=1, site="gs", cabinet="c1", boot_id=BOOT, seq=seq, ts=T0, clock_synced=True,
                        event=EventKind.SESSION_ENDED, slot=2, session=session)


def write_old_event_log(directory: Path) -> None:
    """An ``events.sqlite`` of an older collector: a slot's change and a device's fault."""
    old = sqlite3.connect(directory / "events.sqlite", isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript(_OLD_SCHEMA)
    old.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        ("gs", "c1", BOOT, 3, "2026-12-01T07:15:00+00:00", "2026-12-01T07:15:01.250000+00:00",
         "slot_changed", 4, None, "charging", "charged", 0),
        ("gs", "c1", BOOT, 9, "2026-12-01T09:00:00+00:00", "2026-12-01T09:20:00+00:00",
         "device_fault", None, "meter", "ok", "timeout", 1),
    ])
    old.close()


def test_an_older_event_log_is_taken_over_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_old_event_log(tmp_path)
    with caplog.at_level(logging.INFO, logger="server.events"):
        log = EventLog(store_at(tmp_path), legacy_dir=tmp_path)
    assert "took 2 event(s) over" in caplog.text
    assert not (tmp_path / "events.sqlite").exists()
    assert (tmp_path / "events.sqlite.imported").exists()
    stored = log.recent("gs", "c1")
    assert [(e.seq, e.kind, e.slot, e.device, e.old, e.new, e.replayed, e.ts) for e in stored] == [
        (9, "device_fault", None, "meter", "ok", "timeout", True, datetime(2026, 12, 1, 9, tzinfo=UTC)),
        (3, "slot_changed", 4, None, "charging", "charged", False,
         datetime(2026, 12, 1, 7, 15, tzinfo=UTC))]
    assert log.seen(_door(3)) and log.seen(_door(9)) and not log.seen(_door(4))
    log.close()
    # the next start finds nothing to take over, and an interrupted takeover run again adds nothing
    assert take_over_events(store_at(tmp_path), tmp_path) == 0
    (tmp_path / "events.sqlite.imported").rename(tmp_path / "events.sqlite")
    assert take_over_events(store_at(tmp_path), tmp_path) == 2
    assert len(EventLog(store_at(tmp_path)).recent("gs", "c1")) == 2


def test_an_event_and_its_session_are_stored_together_or_not_at_all() -> None:
    store = new_store()
    sessions = SessionRecorder(store, BatteryAgeing())
    log = EventLog(store)
    event = _session_ended(5)
    row = sessions.row(event)
    assert row is not None
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error: NOT NULL of the session
        log.record(event, T0, {**row, "started_at": None})
    assert not log.seen(event) and sessions.recent() == []
    assert log.stored == 0
    assert log.record(event, T0, row)
    assert [(site, s.slot, s.taper_wh) for site, _, s in sessions.recent()] == [("gs", 2, 9.5)]
    assert not log.record(event, T0, row)  # a repeat writes nothing, the session neither
    assert (log.stored, log.duplicates, len(sessions.recent())) == (1, 1, 1)
    assert sessions.row(_door(6)) is None


def _drop_connections(log: EventLog, tmp_path: Path) -> None:
    """What a restarted database does to the connections open to it."""
    if on_postgres():
        activity = table("pg_stat_activity", column("pid"), column("datname"))
        with store_at(tmp_path).connect() as db:
            db.execute(select(func.pg_terminate_backend(activity.c.pid)).where(
                activity.c.datname == func.current_database(),
                activity.c.pid != func.pg_backend_pid()))
    else:  # SQLite has no server to restart: the driver's connection closed under the ledger
        connection = log._ledger._connection
        assert connection is not None
        connection.dbapi_connection.close()  # type: ignore[union-attr]


def test_a_connection_the_database_dropped_is_replaced_without_losing_the_event(
        tmp_path: Path) -> None:
    log = EventLog(store_at(tmp_path))
    assert log.record(_door(1), T0)
    _drop_connections(log, tmp_path)
    assert not log.seen(_door(2))
    _drop_connections(log, tmp_path)
    assert log.record(_door(2), T0) and log.seen(_door(2))
    assert [e.seq for e in log.recent("gs", "c1")] == [2, 1]
    log.close()
