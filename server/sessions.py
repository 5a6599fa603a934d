"""Finished charge sessions: stored once each, and fed to battery ageing.

A session event may arrive twice (the agent's outbox sends again what the broker did not
acknowledge), so sessions are keyed by cabinet, boot id and sequence number and a repeat is
ignored. The file lives beside the alert state; at start the battery model is rebuilt from it, so
each iPad keeps its own early baseline across restarts.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from cabinet_agent.protocol import ChargeSession, EventMessage

from .battery import BatteryAgeing

__all__ = ["SESSIONS_FILE", "SessionRecorder"]

SESSIONS_FILE = "sessions.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    site TEXT NOT NULL,
    cabinet TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    asset_tag TEXT,
    ended_at TEXT NOT NULL,
    session TEXT NOT NULL,
    PRIMARY KEY (site, cabinet, boot_id, seq)
);
CREATE INDEX IF NOT EXISTS sessions_by_tag ON sessions (asset_tag, ended_at);
"""


class SessionRecorder:
    def __init__(self, directory: Path | None, ageing: BatteryAgeing) -> None:
        target = ":memory:" if directory is None else str(directory / SESSIONS_FILE)
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.ageing = ageing
        self.duplicates = 0
        for (text,) in self._db.execute("SELECT session FROM sessions ORDER BY ended_at"):
            ageing.add(ChargeSession.model_validate_json(text))

    def record(self, message: EventMessage) -> bool:
        """Store the event's session once; False when it was already stored."""
        session = message.session
        if session is None:
            return False
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO sessions (site, cabinet, boot_id, seq, asset_tag, ended_at, "
                "session) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (message.site, message.cabinet, message.boot_id, message.seq, session.asset_tag,
                 session.ended_at.isoformat(), session.model_dump_json()))
            if cursor.rowcount == 0:
                self.duplicates += 1
                return False
        self.ageing.add(session)
        return True

    def for_asset(self, asset_tag: str, limit: int = 100) -> list[ChargeSession]:
        with self._lock:
            rows = self._db.execute(
                "SELECT session FROM sessions WHERE asset_tag = ? ORDER BY ended_at DESC LIMIT ?",
                (asset_tag, limit)).fetchall()
        return [ChargeSession.model_validate_json(text) for (text,) in rows]

    def recent(self, site: str | None = None, cabinet: str | None = None, slot: int | None = None,
               limit: int = 100_000) -> list[tuple[str, str, ChargeSession]]:
        """(site, cabinet, session), newest first, optionally of one site, cabinet or slot."""
        with self._lock:
            rows = self._db.execute(
                "SELECT site, cabinet, session FROM sessions WHERE (? IS NULL OR site = ?) "
                "AND (? IS NULL OR cabinet = ?) AND (? IS NULL OR json_extract(session, '$.slot') = ?) "
                "ORDER BY ended_at DESC LIMIT ?",
                (site, site, cabinet, cabinet, slot, slot, limit)).fetchall()
        return [(s, c, ChargeSession.model_validate_json(text)) for s, c, text in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
