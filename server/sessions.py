"""Finished charge sessions: stored once each (table ``charge_sessions`` of the store), and fed to
battery ageing.

A session event may arrive twice (the agent's outbox sends again what the broker did not
acknowledge). Whether it is new is the event ledger's decision (``server/events.py``): it stores
the session row built here in the same transaction as its event, and only a new one reaches
battery ageing. At start the battery model is rebuilt from the rows, so each iPad keeps its own
early baseline across restarts. Sessions of an installation from before the store
(``sessions.sqlite`` in the state dir) are taken over once at the first start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, RowMapping, insert, select

from cabinet_agent.common.protocol import ChargeSession, EventMessage

from .battery import BatteryAgeing
from .store import open_store
from .store.legacy import insert_new, read_only, retire
from .store.schema import charge_sessions

__all__ = ["LEGACY_SESSIONS_FILE", "SessionRecorder"]

log = logging.getLogger(__name__)

LEGACY_SESSIONS_FILE: Final = "sessions.sqlite"  # before issue 17: a file of its own
_FIELDS: Final = ("slot", "asset_tag", "started_at", "ended_at", "duration_s", "energy_wh", "peak_w",
                  "end", "taper_wh", "energy_method")


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
        self.ageing = ageing
        with self._engine.connect() as db:
            for row in db.execute(select(charge_sessions).order_by(charge_sessions.c.ended_at)).mappings():
                ageing.add(_session(row))

    @property
    def store(self) -> Engine:
        return self._engine

    def _take_over(self, legacy: Path) -> None:
        if not legacy.exists():
            return
        with read_only(legacy) as old:
            rows = [_row(site, cabinet, boot, seq, ChargeSession.model_validate_json(text))
                    for site, cabinet, boot, seq, text in old.execute(
                        "SELECT site, cabinet, boot_id, seq, session FROM sessions")]
        taken = insert_new(self._engine, {charge_sessions: rows})["charge_sessions"]
        retire(legacy)
        log.info("took %d charge session(s) over from %s into the store", taken, legacy)

    def row(self, message: EventMessage) -> dict[str, Any] | None:
        """The ``charge_sessions`` row of a ``session_ended`` event, for the event ledger to store
        with the event (``EventLog.record``); None for an event without a session."""
        session = message.session
        if session is None:
            return None
        return _row(message.site, message.cabinet, message.boot_id, message.seq, session)

    def stored(self, message: EventMessage) -> None:
        """The event's session is stored now (new): battery ageing learns it."""
        if message.session is not None:
            self.ageing.add(message.session)

    def record(self, message: EventMessage) -> None:
        """Store the event's session where no event ledger decides (a fixture, the bench): the
        caller knows it is new, a repeat fails on the primary key. The collector goes through
        ``EventLog.record`` with ``row`` and then ``stored``."""
        row = self.row(message)
        if row is None:
            return
        with self._engine.begin() as db:
            db.execute(insert(charge_sessions), row)
        self.stored(message)

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
