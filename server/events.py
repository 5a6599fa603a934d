"""The event log: every ``event`` message stored once, keyed by (site, cabinet, boot_id, seq).

The agent's outbox delivers at least once; a repeat (after a lost PUBACK, a collector restart, a
re-sent backlog) hits the primary key and is counted as a duplicate instead of stored twice.
SQLite in WAL mode beside the alert state; a commit per event costs no fsync (``synchronous=NORMAL``)
and survives a SIGKILL of the collector, which acknowledges the MQTT message only after this.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cabinet_agent.protocol import EventMessage

__all__ = ["EVENTS_FILE", "EventLog", "StoredEvent"]

EVENTS_FILE = "events.sqlite"

_SCHEMA = """
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


@dataclass(frozen=True, slots=True)
class StoredEvent:
    site: str
    cabinet: str
    boot_id: str
    seq: int
    ts: str
    kind: str
    slot: int | None
    device: str | None
    old: str | None
    new: str | None
    replayed: bool


class EventLog:
    def __init__(self, directory: Path | None) -> None:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        target = ":memory:" if directory is None else str(directory / EVENTS_FILE)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.stored = 0
        self.duplicates = 0

    def seen(self, message: EventMessage) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM events WHERE site = ? AND cabinet = ? AND boot_id = ? AND seq = ?",
                (message.site, message.cabinet, message.boot_id, message.seq)).fetchone()
        if row is not None:
            self.duplicates += 1
        return row is not None

    def record(self, message: EventMessage, received_at: datetime) -> bool:
        """Store the event once; False when it is stored already."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO events (site, cabinet, boot_id, seq, ts, received_at, kind, "
                "slot, device, old, new, replayed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (message.site, message.cabinet, message.boot_id, message.seq, message.ts.isoformat(),
                 received_at.isoformat(), message.event.value, message.slot, message.device,
                 message.old, message.new, int(message.replayed)))
            if cursor.rowcount == 0:
                self.duplicates += 1
                return False
            self.stored += 1
            return True

    def recent(self, site: str, cabinet: str, limit: int = 1000) -> list[StoredEvent]:
        """The cabinet's events, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT site, cabinet, boot_id, seq, ts, kind, slot, device, old, new, replayed "
                "FROM events WHERE site = ? AND cabinet = ? ORDER BY ts DESC, seq DESC LIMIT ?",
                (site, cabinet, limit)).fetchall()
        return [StoredEvent(site=r[0], cabinet=r[1], boot_id=r[2], seq=r[3], ts=r[4], kind=r[5],
                            slot=r[6], device=r[7], old=r[8], new=r[9], replayed=bool(r[10]))
                for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
