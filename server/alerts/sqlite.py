"""Durable alert state in one SQLite file: alerts, silences, acknowledgements, notification log
and the outbox (notifications waiting for delivery, the retry queue).

stdlib ``sqlite3`` in WAL mode (readers, e.g. ``cabinet-server alerts``, never block the collector)
with ``synchronous=NORMAL`` (a committed write survives a process crash; a power cut may lose the
last transactions but never corrupts the file). One connection behind a lock: the engine, the
notifier and the API call in from different threads, each call is one short transaction.

The collector is the only writer of its file, so a writable instance also keeps the active alerts
in memory (``ActiveIndex``, read from the file on first use and updated after every committed
write): the engine looks alerts up per finding and per evaluated cabinet every tick, which must
not cost a query each. A read-only instance (``cabinet-server alerts``) always asks the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, time
from pathlib import Path
from typing import Final

from server.errors import ServerError

from .model import Alert
from .silence import Silence, SilenceKind, Weekly
from .store import Ack, ActiveIndex, LogEntry, Outgoing

__all__ = ["STATE_FILE", "SqliteState"]

STATE_FILE: Final = "ladewache-alerts.sqlite3"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT NOT NULL,
    active_at   TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT,
    labels      TEXT NOT NULL,
    annotations TEXT NOT NULL,
    PRIMARY KEY (fingerprint, active_at)
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_active ON alerts (fingerprint) WHERE ends_at IS NULL;
CREATE INDEX IF NOT EXISTS alerts_ended ON alerts (ends_at) WHERE ends_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS silences (
    id         TEXT PRIMARY KEY,
    matchers   TEXT NOT NULL,
    starts_at  TEXT NOT NULL,
    ends_at    TEXT NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    weekly     TEXT,
    created_at TEXT
);
CREATE TABLE IF NOT EXISTS acks (
    fingerprint TEXT NOT NULL,
    active_at   TEXT NOT NULL,
    by          TEXT NOT NULL,
    comment     TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (fingerprint, active_at)
);
CREATE TABLE IF NOT EXISTS nflog (
    key      TEXT PRIMARY KEY,
    firing   TEXT NOT NULL,
    resolved TEXT NOT NULL,
    sent_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    log_key   TEXT PRIMARY KEY,
    receiver  TEXT NOT NULL,
    notifier  TEXT NOT NULL,
    message   TEXT NOT NULL,
    firing    TEXT NOT NULL,
    resolved  TEXT NOT NULL,
    sent_at   TEXT NOT NULL,
    queued_at TEXT NOT NULL,
    next_at   TEXT NOT NULL,
    attempts  INTEGER NOT NULL,
    version   INTEGER NOT NULL,
    error     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_next ON outbox (next_at);
"""


def _t(value: datetime) -> str:
    return value.isoformat()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


class SqliteState:
    """Implements AlertStore, SilenceStore, AckStore, NotificationLog and Outbox."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        try:
            if read_only:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                           check_same_thread=False)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                self._db.commit()
            self._db.execute("PRAGMA busy_timeout=5000")
        except (OSError, sqlite3.Error) as exc:
            raise ServerError(f"cannot open alert state {path}: {exc}") from exc
        self._lock = threading.Lock()
        self._read_only = read_only
        self._index: ActiveIndex | None = None  # writable only: the active alerts, once read

    def db_mode(self) -> str:
        """The journal mode (``wal``)."""
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:  # commits, or rolls back on an exception
            yield self._db

    # AlertStore

    @staticmethod
    def _alert(row: tuple[str, str, str, str | None, str, str]) -> Alert:
        _, active_at, starts_at, ends_at, labels, annotations = row
        return Alert(json.loads(labels), json.loads(annotations), _dt(active_at), _dt(starts_at),
                     _dt(ends_at) if ends_at else None)

    _COLUMNS: Final = "fingerprint, active_at, starts_at, ends_at, labels, annotations"

    def _active_rows(self) -> list[Alert]:
        """Every active alert from the file; the caller holds the lock."""
        rows = self._db.execute(f"SELECT {self._COLUMNS} FROM alerts WHERE ends_at IS NULL "
                                "ORDER BY active_at").fetchall()
        return [self._alert(r) for r in rows]

    def _active_index(self) -> ActiveIndex | None:
        """The in-memory active alerts of a writable instance; the caller holds the lock."""
        if self._read_only:
            return None
        if self._index is None:
            self._index = ActiveIndex(self._active_rows())
        return self._index

    def active(self) -> list[Alert]:
        with self._lock:
            index = self._active_index()
            if index is not None:
                return sorted(index, key=lambda a: a.active_at)
            return self._active_rows()

    def get_active(self, fingerprint: str) -> Alert | None:
        with self._lock:
            index = self._active_index()
            if index is not None:
                return index.get(fingerprint)
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM alerts "
                                   "WHERE fingerprint = ? AND ends_at IS NULL",
                                   (fingerprint,)).fetchone()
        return self._alert(row) if row else None

    def active_for(self, cabinet_keys: Iterable[tuple[str, str]]) -> list[Alert]:
        with self._lock:
            index = self._active_index()
            if index is not None:
                return index.for_cabinets(cabinet_keys)
            wanted = set(cabinet_keys)
            return [a for a in self._active_rows() if a.cabinet_key in wanted]

    def put_active(self, alert: Alert) -> None:
        if alert.ends_at is not None:
            raise ValueError("an active alert has no ends_at")
        with self._lock:
            index = self._active_index()
            with self._db as db:
                db.execute("DELETE FROM alerts WHERE fingerprint = ? AND ends_at IS NULL",
                           (alert.fingerprint,))
                db.execute(f"INSERT OR REPLACE INTO alerts ({self._COLUMNS}) "
                           "VALUES (?, ?, ?, NULL, ?, ?)",
                           (alert.fingerprint, _t(alert.active_at), _t(alert.starts_at),
                            json.dumps(dict(alert.labels), sort_keys=True),
                            json.dumps(dict(alert.annotations), sort_keys=True)))
            if index is not None:  # only after the commit: the index never runs ahead of the file
                index.put(alert)

    def discard_active(self, fingerprint: str) -> None:
        with self._lock:
            index = self._active_index()
            with self._db as db:
                db.execute("DELETE FROM alerts WHERE fingerprint = ? AND ends_at IS NULL",
                           (fingerprint,))
            if index is not None:
                index.pop(fingerprint)

    def resolve(self, fingerprint: str, ends_at: datetime,
                annotations: Mapping[str, str] | None = None) -> Alert | None:
        current = self.get_active(fingerprint)
        if current is None:
            return None
        merged = {**current.annotations, **(annotations or {})}
        with self._lock:
            index = self._active_index()
            with self._db as db:
                db.execute("UPDATE alerts SET ends_at = ?, annotations = ? "
                           "WHERE fingerprint = ? AND ends_at IS NULL",
                           (_t(ends_at), json.dumps(merged, sort_keys=True), fingerprint))
            if index is not None:
                index.pop(fingerprint)
        return Alert(current.labels, merged, current.active_at, current.starts_at, ends_at)

    def all(self) -> list[Alert]:
        with self._tx() as db:
            rows = db.execute(f"SELECT {self._COLUMNS} FROM alerts ORDER BY active_at").fetchall()
        return [self._alert(r) for r in rows]

    def purge_resolved(self, ended_before: datetime) -> int:
        # ISO strings of UTC times compare in time order, so SQLite can compare them as text.
        with self._tx() as db:
            cursor = db.execute("DELETE FROM alerts WHERE ends_at IS NOT NULL AND ends_at < ?",
                                (_t(ended_before),))
            return cursor.rowcount

    # SilenceStore

    def add_silence(self, silence: Silence) -> None:
        weekly = None
        if silence.weekly is not None:
            w = silence.weekly
            weekly = json.dumps({"days": sorted(w.days), "start": w.start.isoformat(),
                                 "end": w.end.isoformat(), "timezone": w.timezone})
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO silences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (silence.id, json.dumps(dict(silence.matchers), sort_keys=True),
                        _t(silence.starts_at), _t(silence.ends_at), silence.created_by,
                        silence.comment, silence.kind.value, weekly,
                        _t(silence.created_at) if silence.created_at else None))

    def expire_silence(self, silence_id: str, now: datetime) -> Silence | None:
        silence = next((s for s in self.silences() if s.id == silence_id), None)
        if silence is None or silence.expired(now):
            return None
        ends = max(now, silence.starts_at)
        with self._tx() as db:
            db.execute("UPDATE silences SET ends_at = ? WHERE id = ?", (_t(ends), silence_id))
        return next(s for s in self.silences() if s.id == silence_id)

    def silences(self) -> list[Silence]:
        with self._tx() as db:
            rows = db.execute("SELECT id, matchers, starts_at, ends_at, created_by, comment, kind, "
                              "weekly, created_at FROM silences ORDER BY starts_at").fetchall()
        result = []
        for sid, matchers, starts, ends, by, comment, kind, weekly, created in rows:
            w = None
            if weekly:
                data = json.loads(weekly)
                w = Weekly(frozenset(data["days"]), time.fromisoformat(data["start"]),
                           time.fromisoformat(data["end"]), data["timezone"])
            result.append(Silence(json.loads(matchers), _dt(starts), _dt(ends), by, comment,
                                  SilenceKind(kind), w, _dt(created) if created else None, sid))
        return result

    # AckStore

    def acknowledge(self, ack: Ack) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO acks VALUES (?, ?, ?, ?, ?)",
                       (ack.fingerprint, _t(ack.active_at), ack.by, ack.comment, _t(ack.at)))

    def acks(self) -> list[Ack]:
        with self._tx() as db:
            rows = db.execute("SELECT fingerprint, active_at, by, comment, at FROM acks").fetchall()
        return [Ack(fp, _dt(active), by, comment, _dt(at)) for fp, active, by, comment, at in rows]

    # NotificationLog

    def log_entry(self, key: str) -> LogEntry | None:
        with self._tx() as db:
            row = db.execute("SELECT firing, resolved, sent_at FROM nflog WHERE key = ?",
                             (key,)).fetchone()
        if row is None:
            return None
        return LogEntry(frozenset(json.loads(row[0])), frozenset(json.loads(row[1])), _dt(row[2]))

    def log_sent(self, key: str, entry: LogEntry) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO nflog VALUES (?, ?, ?, ?)",
                       (key, json.dumps(sorted(entry.firing)), json.dumps(sorted(entry.resolved)),
                        _t(entry.sent_at)))

    # Outbox

    _OUTBOX: Final = ("log_key, receiver, notifier, message, firing, resolved, sent_at, queued_at, "
                      "next_at, attempts, version, error")

    @staticmethod
    def _outgoing(row: tuple[str, str, str, str, str, str, str, str, str, int, int, str]
                  ) -> Outgoing:
        key, receiver, notifier, message, firing, resolved, sent_at, queued, next_at, tries, \
            version, error = row
        entry = LogEntry(frozenset(json.loads(firing)), frozenset(json.loads(resolved)),
                         _dt(sent_at))
        return Outgoing(key, receiver, notifier, message, entry, _dt(queued), _dt(next_at), tries,
                        version, error)

    def enqueue(self, item: Outgoing) -> Outgoing:
        entry = item.entry
        with self._tx() as db:
            # A newer message for a queued key keeps the key's tries and back-off.
            db.execute(f"INSERT INTO outbox ({self._OUTBOX}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (log_key) DO UPDATE SET receiver = excluded.receiver, "
                       "notifier = excluded.notifier, message = excluded.message, "
                       "firing = excluded.firing, resolved = excluded.resolved, "
                       "sent_at = excluded.sent_at, version = outbox.version + 1",
                       (item.log_key, item.receiver, item.notifier, item.message,
                        json.dumps(sorted(entry.firing)), json.dumps(sorted(entry.resolved)),
                        _t(entry.sent_at), _t(item.queued_at), _t(item.next_at), item.attempts,
                        item.version, item.error))
            row = db.execute(f"SELECT {self._OUTBOX} FROM outbox WHERE log_key = ?",
                             (item.log_key,)).fetchone()
        return self._outgoing(row)

    def outgoing(self, due_by: datetime | None = None) -> list[Outgoing]:
        with self._tx() as db:
            if due_by is None:
                rows = db.execute(f"SELECT {self._OUTBOX} FROM outbox ORDER BY queued_at").fetchall()
            else:
                rows = db.execute(f"SELECT {self._OUTBOX} FROM outbox WHERE next_at <= ? "
                                  "ORDER BY queued_at", (_t(due_by),)).fetchall()
        return [self._outgoing(r) for r in rows]

    def is_queued(self, log_key: str) -> bool:
        with self._tx() as db:
            return db.execute("SELECT 1 FROM outbox WHERE log_key = ?",
                              (log_key,)).fetchone() is not None

    def retry_later(self, log_key: str, attempts: int, next_at: datetime, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts = ?, next_at = ?, error = ? WHERE log_key = ?",
                       (attempts, _t(next_at), error, log_key))

    def delivered(self, item: Outgoing) -> bool:
        entry = item.entry
        with self._tx() as db:  # one transaction: logged and unqueued, or neither
            db.execute("INSERT OR REPLACE INTO nflog VALUES (?, ?, ?, ?)",
                       (item.log_key, json.dumps(sorted(entry.firing)),
                        json.dumps(sorted(entry.resolved)), _t(entry.sent_at)))
            row = db.execute("SELECT version FROM outbox WHERE log_key = ?",
                             (item.log_key,)).fetchone()
            db.execute("DELETE FROM outbox WHERE log_key = ?", (item.log_key,))
        return row is None or row[0] == item.version

    def give_up(self, log_key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE log_key = ?", (log_key,))
