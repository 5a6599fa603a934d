"""Finished charge sessions: stored once each (table ``charge_sessions`` of the store), and fed to
battery ageing.

A session event may arrive twice (the agent's outbox sends again what the broker did not
acknowledge), so sessions are keyed by cabinet, boot id and sequence number and a repeat is
ignored. At start the battery model is rebuilt from them, so each iPad keeps its own early
baseline across restarts. Sessions of an installation from before the store (``sessions.sqlite``
in the state dir) are taken over once at the first start.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, RowMapping, select

from cabinet_agent.protocol import ChargeSession, EventMessage

from .battery import BatteryAgeing
from .store import open_store
from .store.base import insert_ignore
from .store.schema import charge_sessions

__all__ = ["LEGACY_SESSIONS_FILE", "SessionRecorder"]

log = logging.getLogger(__name__)

LEGACY_SESSIONS_FILE: Final = "sessions.sqlite"  # before issue 17: a file of its own
_FIELDS: Final = ("slot", "asset_tag", "started_at", "ended_at", "duration_s", "energy_wh", "peak_w",
                  "end", "taper_wh")


def _session(row: RowMapping) -> ChargeSession:
    return ChargeSession.model_validate({name: row[name] for name in _FIELDS})


def _row(site: str, cabinet: str, boot_id: str, seq: int, session: ChargeSession) -> dict[str, Any]:
    return {"site": site, "cabinet": cabinet, "boot_id": boot_id, "seq": seq,
            **session.model_dump(include=set(_FIELDS))}


class SessionRecorder:
    def __init__(self, store: Engine | Path | None, ageing: BatteryAgeing,
                 legacy_dir: Path | None = None) -> None:
        """``store``: the store's engine, or a state directory (None: in memory) to open it in;
        ``legacy_dir``: where an older installation kept its ``sessions.sqlite`` (the state dir)."""
        self._owns_engine = not isinstance(store, Engine)
        self._engine = store if isinstance(store, Engine) else open_store(store)
        legacy_dir = store if isinstance(store, Path) else legacy_dir
        if legacy_dir is not None:
            self._take_over(legacy_dir / LEGACY_SESSIONS_FILE)
        self._lock = threading.Lock()
        self.ageing = ageing
        self.duplicates = 0
        with self._engine.connect() as db:
            for row in db.execute(select(charge_sessions).order_by(charge_sessions.c.ended_at)).mappings():
                ageing.add(_session(row))

    def _insert(self, rows: list[dict[str, Any]]) -> int:
        """Insert, skipping a session stored already; how many were new."""
        with self._engine.begin() as db:
            statement = insert_ignore(db, charge_sessions)
            return sum(int(db.execute(statement, row).rowcount or 0) for row in rows)

    def _take_over(self, legacy: Path) -> None:
        if not legacy.exists():
            return
        old = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
        try:
            rows = [_row(site, cabinet, boot, seq, ChargeSession.model_validate_json(text))
                    for site, cabinet, boot, seq, text in old.execute(
                        "SELECT site, cabinet, boot_id, seq, session FROM sessions")]
        finally:
            old.close()
        taken = self._insert(rows) if rows else 0
        legacy.rename(legacy.with_name(legacy.name + ".imported"))
        log.info("took %d charge session(s) over from %s into the store", taken, legacy)

    def record(self, message: EventMessage) -> bool:
        """Store the event's session once; False when it was already stored."""
        session = message.session
        if session is None:
            return False
        with self._lock:
            if not self._insert([_row(message.site, message.cabinet, message.boot_id, message.seq,
                                      session)]):
                self.duplicates += 1
                return False
        self.ageing.add(session)
        return True

    def for_asset(self, asset_tag: str, limit: int = 100) -> list[ChargeSession]:
        c = charge_sessions.c
        query = (select(charge_sessions).where(c.asset_tag == asset_tag)
                 .order_by(c.ended_at.desc()).limit(limit))
        with self._engine.connect() as db:
            return [_session(row) for row in db.execute(query).mappings()]

    def of_ipad(self, asset_tag: str, limit: int = 500) -> list[tuple[str, str, ChargeSession]]:
        """(site, cabinet, session) of one iPad wherever it charged, newest first."""
        c = charge_sessions.c
        query = (select(charge_sessions).where(c.asset_tag == asset_tag)
                 .order_by(c.ended_at.desc()).limit(limit))
        with self._engine.connect() as db:
            return [(row["site"], row["cabinet"], _session(row))
                    for row in db.execute(query).mappings()]

    def recent(self, site: str | None = None, cabinet: str | None = None, slot: int | None = None,
               limit: int = 100_000) -> list[tuple[str, str, ChargeSession]]:
        """(site, cabinet, session), newest first, optionally of one site, cabinet or slot."""
        c = charge_sessions.c
        query = select(charge_sessions)
        if site is not None:
            query = query.where(c.site == site)
        if cabinet is not None:
            query = query.where(c.cabinet == cabinet)
        if slot is not None:
            query = query.where(c.slot == slot)
        query = query.order_by(c.ended_at.desc()).limit(limit)
        with self._engine.connect() as db:
            return [(row["site"], row["cabinet"], _session(row))
                    for row in db.execute(query).mappings()]

    def close(self) -> None:
        if self._owns_engine:  # a shared store is the collector's to close
            self._engine.dispose()
