"""The event ledger: every ``event`` message stored once (table ``events`` of the store), and the
one durable decision whether an event is new.

The agent's outbox delivers at least once; a repeat (after a lost PUBACK, a collector restart, a
re-sent backlog) is known by its (site, cabinet, boot_id, seq). The pipeline asks ``seen`` before
it writes the event's lines and ``record`` after, so a SIGKILL between the two repeats a point (the
TSDB overwrites it), never loses one. A ``session_ended`` event's charge session is stored in the
same transaction as the event, so the two are never apart and the sessions need no duplicate check
of their own. The collector acknowledges the MQTT message only after this.

Both run in paho's network thread for every event. Through the engine (a pooled connection and
SQLAlchemy's bookkeeping per statement) an event took 2.5 times as long to handle as with the old
SQLite file of its own, so ``seen`` and ``record`` run their statements — Core constructs, compiled
once for the store's dialect, values bound by the columns' own types — on one connection of the
pool that the ledger keeps (``_Ledger``). Everything else goes through the engine as usual.

The event log of an installation from before the store (``events.sqlite`` in the state dir) is
taken over once at the first start.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import ClauseElement, Dialect, Engine, and_, bindparam, event, select
from sqlalchemy.pool import PoolProxiedConnection

from cabinet_agent.common.protocol import EventMessage

from .store import open_store
from .store.base import insert_ignore
from .store.legacy import read_only, retire
from .store.schema import charge_sessions
from .store.schema_events import events

__all__ = ["LEGACY_EVENTS_FILE", "EventLog", "StoredEvent", "take_over_events"]

log = logging.getLogger(__name__)

LEGACY_EVENTS_FILE: Final = "events.sqlite"  # before issue 18: a file of its own
_TAKEOVER_BATCH: Final = 5000  # rows per transaction: a district's years of events fit no memory
_COLUMNS: Final = ("site", "cabinet", "boot_id", "seq", "ts", "received_at", "kind", "slot",
                   "device", "old", "new", "replayed")

_c = events.c


class _Compiled:
    """A Core statement compiled for one dialect, and its values bound as the driver takes them
    (the columns' own bind processors: UtcDateTime's UTC, SQLite's time text)."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled: Any = statement.compile(dialect=dialect)  # an SQLCompiler: positiontup, binds
        self.sql = str(compiled)
        processors = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                      for name, bind in compiled.binds.items()}
        # SQLite's ``?`` by position; None: by name (psycopg's ``%(name)s``)
        self._order = (None if compiled.positiontup is None else
                       [(name, processors[name]) for name in compiled.positiontup])
        self._processors = {name: p for name, p in processors.items() if p is not None}

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self._order is None:
            return {**values, **{name: p(values[name]) for name, p in self._processors.items()}}
        return tuple([values[name] if p is None else p(values[name]) for name, p in self._order])


class _Ledger:
    """The ledger's connection: one of the pool's, kept, used under a lock; each use committed.
    One the database dropped (a restarted PostgreSQL) is replaced and the work done once more —
    the pool checks a connection before lending it, this one is not lent."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._connection: PoolProxiedConnection | None = None
        self._dbapi: Any = None  # the driver's connection of it
        with engine.connect() as db:  # the dialect's form of the statements, decided once
            statements = (select(_c.seq).where(and_(
                              _c.site == bindparam("site"), _c.cabinet == bindparam("cabinet"),
                              _c.boot_id == bindparam("boot_id"), _c.seq == bindparam("seq"))),
                          insert_ignore(db, events), insert_ignore(db, charge_sessions))
        self.seen, self.event, self.session = (_Compiled(s, engine.dialect) for s in statements)
        # Whoever disposes of the engine means to close all its connections: this one too (else
        # it would stay open, lent from a pool nobody uses any more). Weakly: the engine may
        # outlive the ledger.
        ledger = weakref.ref(self)

        def disposed(_engine: Engine) -> None:
            if (alive := ledger()) is not None:
                alive.drop()

        self._disposed = disposed
        event.listen(engine, "engine_disposed", disposed)

    def exists(self, params: tuple[Any, ...] | dict[str, Any]) -> bool:
        """Whether ``seen`` finds the row."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    cursor = self._cursor()
                    cursor.execute(self.seen.sql, params)
                    found = cursor.fetchone() is not None
                    cursor.close()
                    self._dbapi.commit()  # PostgreSQL's read transaction ends
                    return found
                except Exception as exc:
                    self._failed(exc, attempt)
        raise AssertionError("unreachable")

    def insert(self, event_params: tuple[Any, ...] | dict[str, Any],
               session_params: tuple[Any, ...] | dict[str, Any] | None) -> bool:
        """The event's row unless it is there, and then the session's, in one transaction; whether
        the event was new."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    cursor = self._cursor()
                    cursor.execute(self.event.sql, event_params)
                    new = cursor.rowcount == 1
                    if new and session_params is not None:
                        cursor.execute(self.session.sql, session_params)
                    cursor.close()
                    self._dbapi.commit()
                    return new
                except Exception as exc:
                    self._failed(exc, attempt)
        raise AssertionError("unreachable")

    def _cursor(self) -> Any:
        if self._connection is None:
            self._connection = self._engine.raw_connection()
            self._dbapi = self._connection.dbapi_connection
        return self._dbapi.cursor()

    def _failed(self, exc: Exception, attempt: int) -> None:
        """After a use failed: rolled back and raised again; or, when the database dropped the
        connection, a new one the next time — which is now, the first time."""
        if self._connection is None:  # none to be had
            raise exc
        dialect = self._engine.dialect
        if isinstance(exc, dialect.loaded_dbapi.Error) and dialect.is_disconnect(exc, self._dbapi, None):
            self._forget(exc)
            if attempt == 1:
                return
            raise exc  # dropped again at once: the database is away
        try:
            self._dbapi.rollback()
        except Exception:  # a connection that cannot roll back is of no more use
            self._forget(exc)
        raise exc

    def _forget(self, exc: BaseException | None = None) -> None:
        if self._connection is not None:
            self._connection.invalidate(exc)  # closed; the pool opens a new one in its place
        self._connection = self._dbapi = None

    def drop(self) -> None:
        """Close the connection (the next use takes a new one from the pool)."""
        with self._lock:
            self._forget()

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()  # back to the pool
                self._connection = self._dbapi = None
        if event.contains(self._engine, "engine_disposed", self._disposed):
            event.remove(self._engine, "engine_disposed", self._disposed)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    site: str
    cabinet: str
    boot_id: str
    seq: int
    ts: datetime
    kind: str
    slot: int | None
    device: str | None
    old: str | None
    new: str | None
    replayed: bool


def _row(message: EventMessage, received_at: datetime) -> dict[str, Any]:
    return {"site": message.site, "cabinet": message.cabinet, "boot_id": message.boot_id,
            "seq": message.seq, "ts": message.ts, "received_at": received_at,
            "kind": message.event.value, "slot": message.slot, "device": message.device,
            "old": message.old, "new": message.new, "replayed": message.replayed}


class EventLog:
    def __init__(self, store: Engine | None, legacy_dir: Path | None = None) -> None:
        """``store``: the store's engine (None: an in-memory store of its own); ``legacy_dir``:
        where an older installation kept its ``events.sqlite`` (the state dir)."""
        self._owns_engine = store is None
        self._engine = store if store is not None else open_store(None)
        if legacy_dir is not None:
            take_over_events(self._engine, legacy_dir)
        self._ledger = _Ledger(self._engine)
        # its connection back to the pool also when a log is dropped without close (a test's)
        weakref.finalize(self, self._ledger.close)
        self._lock = threading.Lock()  # the counters
        self.stored = 0
        self.duplicates = 0

    @property
    def store(self) -> Engine:
        return self._engine

    def seen(self, message: EventMessage) -> bool:
        """Whether the event is stored already (counted as a duplicate then): a primary-key lookup."""
        found = self._ledger.exists(self._ledger.seen.params({
            "site": message.site, "cabinet": message.cabinet, "boot_id": message.boot_id,
            "seq": message.seq}))
        if found:
            with self._lock:
                self.duplicates += 1
        return found

    def record(self, message: EventMessage, received_at: datetime,
               session_row: Mapping[str, Any] | None = None) -> bool:
        """Store the event once, and with it ``session_row`` (its ``charge_sessions`` row:
        ``SessionRecorder.row``) in the same transaction; False when the event is stored already
        (then nothing is written). A session row stored before its event (the event log of an
        older installation was lost) stays as it is."""
        ledger = self._ledger
        new = ledger.insert(ledger.event.params(_row(message, received_at)),
                            None if session_row is None else ledger.session.params(session_row))
        with self._lock:
            if new:
                self.stored += 1
            else:
                self.duplicates += 1
        return new

    def recent(self, site: str, cabinet: str, limit: int = 1000) -> list[StoredEvent]:
        """The cabinet's events, newest first."""
        query = (select(*(_c[name] for name in _COLUMNS if name != "received_at"))
                 .where(_c.site == site, _c.cabinet == cabinet)
                 .order_by(_c.ts.desc(), _c.seq.desc()).limit(limit))
        with self._engine.connect() as db:
            return [StoredEvent(**row) for row in db.execute(query).mappings()]

    def close(self) -> None:
        self._ledger.close()
        if self._owns_engine:  # a shared store is the collector's to close
            self._engine.dispose()


def take_over_events(engine: Engine, directory: Path) -> int:
    """Copy an older installation's ``events.sqlite`` in ``directory`` into the store once, then
    rename it ``events.sqlite.imported``; how many events it held. Interrupted, it starts again at
    the next start: an event the store has already is skipped."""
    legacy = directory / LEGACY_EVENTS_FILE
    if not legacy.exists():
        return 0
    taken = 0
    with read_only(legacy) as old:
        cursor = old.execute(f"SELECT {', '.join(_COLUMNS)} FROM events")  # the old file's schema
        while batch := cursor.fetchmany(_TAKEOVER_BATCH):
            rows = [dict(zip(_COLUMNS, values, strict=True)) for values in batch]
            for row in rows:  # kept as ISO text and 0/1 there
                row["ts"] = datetime.fromisoformat(row["ts"])
                row["received_at"] = datetime.fromisoformat(row["received_at"])
                row["replayed"] = bool(row["replayed"])
            with engine.begin() as db:
                db.execute(insert_ignore(db, events), rows)
            taken += len(rows)
    retire(legacy)
    log.info("took %d event(s) over from %s into the store", taken, legacy)
    return taken
