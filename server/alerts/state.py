"""The alert state in the store (``server/store``, tables in ``schema_alerts.py``): alerts,
silences, acknowledgements, the notification log and the outbox (notifications waiting for
delivery, the retry queue). SQLite (``ladewache.sqlite3`` in the state dir, or a private file
without one) or PostgreSQL, whichever the store is.

Each call is one short transaction. One lock per instance serialises them: the engine, the
notifier, the sender and the API call in from different threads, and the active-alert cache
must change in the order the writes committed.

The collector is the only writer of its alert state, so its instance also keeps the active alerts
in memory (``ActiveIndex``, read from the store on first use and updated after every committed
write): the engine looks alerts up per finding and per evaluated cabinet every tick, which must
not cost a query each. ``cache=False`` (``cabinet-server alerts``, another process) asks the store
every time; SQLite in WAL mode and PostgreSQL both let it read while the collector writes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Insert,
    RowMapping,
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)

from ..store import open_store
from ..store.base import insert_ignore, upsert
from ..store.schema_alerts import acks, alerts, notification_log, outbox, silences
from .model import Alert
from .silence import Silence, SilenceKind, Weekly
from .store import Ack, ActiveIndex, LogEntry, Outgoing

__all__ = ["StoredState", "ack_row", "alert_row", "log_row", "outgoing_row", "silence_row"]


def _json(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(mapping), sort_keys=True)


def _ids(fingerprints: frozenset[str]) -> str:
    return json.dumps(sorted(fingerprints))


def alert_row(alert: Alert) -> dict[str, Any]:
    return {"fingerprint": alert.fingerprint, "active_at": alert.active_at,
            "starts_at": alert.starts_at, "ends_at": alert.ends_at,
            "labels": _json(alert.labels), "annotations": _json(alert.annotations)}


def _alert(row: RowMapping) -> Alert:
    return Alert(json.loads(row["labels"]), json.loads(row["annotations"]), row["active_at"],
                 row["starts_at"], row["ends_at"])


def silence_row(silence: Silence) -> dict[str, Any]:
    weekly = None
    if (w := silence.weekly) is not None:
        weekly = json.dumps({"days": sorted(w.days), "start": w.start.isoformat(),
                             "end": w.end.isoformat(), "timezone": w.timezone})
    return {"id": silence.id, "matchers": _json(silence.matchers), "starts_at": silence.starts_at,
            "ends_at": silence.ends_at, "created_by": silence.created_by,
            "comment": silence.comment, "kind": silence.kind.value, "weekly": weekly,
            "created_at": silence.created_at}


def _silence(row: RowMapping) -> Silence:
    weekly = None
    if row["weekly"]:
        data = json.loads(row["weekly"])
        weekly = Weekly(frozenset(data["days"]), time.fromisoformat(data["start"]),
                        time.fromisoformat(data["end"]), data["timezone"])
    return Silence(json.loads(row["matchers"]), row["starts_at"], row["ends_at"], row["created_by"],
                   row["comment"], SilenceKind(row["kind"]), weekly, row["created_at"], row["id"])


def ack_row(ack: Ack) -> dict[str, Any]:
    return {"fingerprint": ack.fingerprint, "active_at": ack.active_at, "by": ack.by,
            "comment": ack.comment, "at": ack.at}


def log_row(key: str, entry: LogEntry) -> dict[str, Any]:
    return {"key": key, "firing": _ids(entry.firing), "resolved": _ids(entry.resolved),
            "sent_at": entry.sent_at}


def _entry(row: RowMapping) -> LogEntry:
    return LogEntry(frozenset(json.loads(row["firing"])), frozenset(json.loads(row["resolved"])),
                    row["sent_at"])


def outgoing_row(item: Outgoing) -> dict[str, Any]:
    entry = item.entry
    return {"log_key": item.log_key, "receiver": item.receiver, "notifier": item.notifier,
            "message": item.message, "firing": _ids(entry.firing),
            "resolved": _ids(entry.resolved), "sent_at": entry.sent_at,
            "queued_at": item.queued_at, "next_at": item.next_at, "attempts": item.attempts,
            "version": item.version, "error": item.error}


def _outgoing(row: RowMapping) -> Outgoing:
    return Outgoing(row["log_key"], row["receiver"], row["notifier"], row["message"], _entry(row),
                    row["queued_at"], row["next_at"], row["attempts"], row["version"], row["error"])


# Every statement is built once: building one (and its cache key) costs several times more than
# running it, and the engine writes alerts by the thousand in a district-wide incident. The
# parameters are named b_*: a name of a column is reserved for the VALUES of an INSERT.
_a = alerts.c
_ACTIVE = _a.ends_at.is_(None)
_FP: BindParameter[str] = bindparam("b_fp")
_ACTIVE_ROWS = select(alerts).where(_ACTIVE).order_by(_a.active_at, _a.fingerprint)
_GET_ACTIVE = select(alerts).where(_a.fingerprint == _FP, _ACTIVE)
_DELETE_ACTIVE = delete(alerts).where(_a.fingerprint == _FP, _ACTIVE)
_UPDATE_INSTANCE = update(alerts).where(_a.fingerprint == _FP, _a.active_at == bindparam("b_active")
                                        ).values(starts_at=bindparam("b_starts"),
                                                 labels=bindparam("b_labels"),
                                                 annotations=bindparam("b_annotations"))
_RESOLVE = update(alerts).where(_a.fingerprint == _FP, _ACTIVE).values(
    ends_at=bindparam("b_ends"), annotations=bindparam("b_annotations"))
_ALL = select(alerts).order_by(_a.active_at, _a.fingerprint)
_ENDED = _a.ends_at.is_not(None)  # the partial index's condition: "nothing to purge" is one lookup
_PURGE = delete(alerts).where(_ENDED, _a.ends_at < bindparam("b_before"))
_OLDEST_END = select(func.min(_a.ends_at)).where(_ENDED)
_SILENCE = select(silences).where(silences.c.id == bindparam("b_id")).with_for_update()
_EXPIRE = update(silences).where(silences.c.id == bindparam("b_id")).values(ends_at=bindparam("b_ends"))
_SILENCES = select(silences).order_by(silences.c.starts_at, silences.c.seq)
_ACKS = select(acks).order_by(acks.c.at, acks.c.fingerprint)
_LOG_ENTRY = select(notification_log).where(notification_log.c.key == bindparam("b_key"))
_o = outbox.c
_KEY: BindParameter[str] = bindparam("b_key")
_QUEUED = select(outbox).where(_o.log_key == _KEY)
# A newer message replaces a queued one only when it tells other news: the same news judged
# again (a restart, a new leader) keeps the queued message, and so its delivery id (a try that
# reached the receiver before a crash is repeated under the same id: server/notify/sender.py).
_REQUEUE = update(outbox).where(_o.log_key == _KEY, or_(
    _o.firing != bindparam("b_firing"), _o.resolved != bindparam("b_resolved"),
    _o.receiver != bindparam("b_receiver"), _o.notifier != bindparam("b_notifier"))).values(
    receiver=bindparam("b_receiver"), notifier=bindparam("b_notifier"), message=bindparam("b_message"),
    firing=bindparam("b_firing"), resolved=bindparam("b_resolved"), sent_at=bindparam("b_sent_at"),
    version=_o.version + 1)
_OUTGOING = select(outbox).order_by(_o.queued_at, _o.log_key)
_DUE = _OUTGOING.where(_o.next_at <= bindparam("b_due"))
_IS_QUEUED = select(_o.log_key).where(_o.log_key == _KEY)
_RETRY = update(outbox).where(_o.log_key == _KEY).values(
    attempts=bindparam("b_attempts"), next_at=bindparam("b_next"), error=bindparam("b_error"))
_UNQUEUE = delete(outbox).where(_o.log_key == _KEY)
_DELIVERED = _UNQUEUE.returning(_o.version)


class _Writes:
    """The statements that differ between SQLite and PostgreSQL, for one store."""

    def __init__(self, engine: Engine) -> None:
        def upsert_of(table: Table, keys: list[str]) -> Insert:
            return upsert(db, table, keys, {c.name: bindparam(c.name) for c in table.c
                                            if c.name != "seq"})  # seq: the store numbers them

        with engine.connect() as db:
            self.alert = upsert_of(alerts, ["fingerprint", "active_at"])
            self.silence = upsert_of(silences, ["id"])
            self.ack = upsert_of(acks, ["fingerprint", "active_at"])
            self.log = upsert_of(notification_log, ["key"])
            # psycopg keeps an INSERT's rowcount only when asked (else -1, as if inserted).
            self.queue = insert_ignore(db, outbox).execution_options(preserve_rowcount=True)


class StoredState:
    """Implements AlertStore, SilenceStore, AckStore, NotificationLog and Outbox on the store."""

    def __init__(self, engine: Engine, *, cache: bool = True) -> None:
        """``engine``: the store (``open_store``), shared with the other tenants and closed by
        whoever opened it. ``cache``: keep the active alerts in memory (the collector only)."""
        self._engine = engine
        self._cache = cache
        self._writes = _Writes(engine)
        self._lock = threading.Lock()
        self._index: ActiveIndex | None = None  # with cache: the active alerts, once read
        # With cache: the earliest end of a resolved alert (None: there is none). The engine
        # purges every tick; mostly there is nothing to purge, and then it costs no query.
        self._oldest_end: datetime | None = None

    def lead(self, leading: bool) -> None:
        """Whether this collector leads (``server/leader.py``): only the leader writes alerts,
        so only it may keep them in memory. Either way what is in memory is dropped: a new
        leader reads what the one before it wrote."""
        with self._lock:
            self._cache = leading
            self._index = None
            self._oldest_end = None

    @classmethod
    def in_memory(cls) -> StoredState:
        """A state of its own in a store in memory: lost on exit (tests, a collector without a
        state dir)."""
        return cls(open_store(None))

    # AlertStore

    def _active_index(self) -> ActiveIndex | None:
        """The active alerts in memory (None without the cache); the caller holds the lock."""
        if not self._cache:
            return None
        if self._index is None:
            with self._engine.connect() as db:
                self._index = ActiveIndex(_alert(row) for row in db.execute(_ACTIVE_ROWS).mappings())
                self._oldest_end = db.execute(_OLDEST_END).scalar()
        return self._index

    def active(self) -> list[Alert]:
        with self._lock:
            index = self._active_index()
            if index is not None:
                return sorted(index, key=lambda a: a.active_at)
            with self._engine.connect() as db:
                return [_alert(row) for row in db.execute(_ACTIVE_ROWS).mappings()]

    @staticmethod
    def _get_active(db: Connection, fingerprint: str) -> Alert | None:
        row = db.execute(_GET_ACTIVE, {"b_fp": fingerprint}).mappings().first()
        return _alert(row) if row is not None else None

    def get_active(self, fingerprint: str) -> Alert | None:
        with self._lock:
            index = self._active_index()
            if index is not None:
                return index.get(fingerprint)
            with self._engine.connect() as db:
                return self._get_active(db, fingerprint)

    def active_for(self, cabinet_keys: Iterable[tuple[str, str]]) -> list[Alert]:
        with self._lock:
            index = self._active_index()
            if index is not None:
                return index.for_cabinets(cabinet_keys)
            wanted = set(cabinet_keys)
            with self._engine.connect() as db:
                return [a for row in db.execute(_ACTIVE_ROWS).mappings()
                        if (a := _alert(row)).cabinet_key in wanted]

    def put_active(self, alert: Alert) -> None:
        if alert.ends_at is not None:
            raise ValueError("an active alert has no ends_at")
        row = alert_row(alert)
        with self._lock:
            index = self._active_index()
            current = index.get(alert.fingerprint) if index is not None else None
            with self._engine.begin() as db:
                if current is not None and current.active_at == alert.active_at:
                    # The same instance with new annotations (the common case): one statement.
                    db.execute(_UPDATE_INSTANCE, {
                        "b_fp": alert.fingerprint, "b_active": alert.active_at,
                        "b_starts": alert.starts_at, "b_labels": row["labels"],
                        "b_annotations": row["annotations"]})
                else:
                    if index is None or current is not None:  # another instance may be active
                        db.execute(_DELETE_ACTIVE, {"b_fp": alert.fingerprint})
                    # The same instance resolved and back (same active_at) is active again.
                    db.execute(self._writes.alert, row)
            if index is not None:  # only after the commit: the index never runs ahead of the store
                index.put(alert)

    def discard_active(self, fingerprint: str) -> None:
        with self._lock:
            index = self._active_index()
            with self._engine.begin() as db:
                db.execute(_DELETE_ACTIVE, {"b_fp": fingerprint})
            if index is not None:
                index.pop(fingerprint)

    def resolve(self, fingerprint: str, ends_at: datetime,
                annotations: Mapping[str, str] | None = None) -> Alert | None:
        with self._lock:
            index = self._active_index()
            with self._engine.begin() as db:
                current = index.get(fingerprint) if index is not None else self._get_active(
                    db, fingerprint)
                if current is None:
                    return None
                merged = {**current.annotations, **(annotations or {})}
                db.execute(_RESOLVE, {"b_fp": fingerprint, "b_ends": ends_at,
                                      "b_annotations": _json(merged)})
            if index is not None:
                index.pop(fingerprint)
                if self._oldest_end is None or ends_at < self._oldest_end:
                    self._oldest_end = ends_at
        return Alert(current.labels, merged, current.active_at, current.starts_at, ends_at)

    def all(self) -> list[Alert]:
        with self._lock, self._engine.connect() as db:
            return [_alert(row) for row in db.execute(_ALL).mappings()]

    def purge_resolved(self, ended_before: datetime) -> int:
        with self._lock:
            index = self._active_index()
            if index is not None and (self._oldest_end is None or self._oldest_end >= ended_before):
                return 0
            with self._engine.begin() as db:
                purged = int(db.execute(_PURGE, {"b_before": ended_before}).rowcount or 0)
                if index is not None:
                    self._oldest_end = db.execute(_OLDEST_END).scalar()
            return purged

    # SilenceStore

    def add_silence(self, silence: Silence) -> None:
        with self._lock, self._engine.begin() as db:
            db.execute(self._writes.silence, silence_row(silence))

    def expire_silence(self, silence_id: str, now: datetime) -> Silence | None:
        with self._lock, self._engine.begin() as db:
            row = db.execute(_SILENCE, {"b_id": silence_id}).mappings().first()
            silence = _silence(row) if row is not None else None
            if silence is None or silence.expired(now):
                return None
            # One that has not begun ends at its start: it was never active.
            ended = replace(silence, ends_at=max(now, silence.starts_at))
            db.execute(_EXPIRE, {"b_id": silence_id, "b_ends": ended.ends_at})
        return ended

    def silences(self) -> list[Silence]:
        with self._lock, self._engine.connect() as db:
            return [_silence(row) for row in db.execute(_SILENCES).mappings()]

    # AckStore

    def acknowledge(self, ack: Ack) -> None:
        with self._lock, self._engine.begin() as db:
            db.execute(self._writes.ack, ack_row(ack))

    def acks(self) -> list[Ack]:
        with self._lock, self._engine.connect() as db:
            return [Ack(r["fingerprint"], r["active_at"], r["by"], r["comment"], r["at"])
                    for r in db.execute(_ACKS).mappings()]

    # NotificationLog

    def log_entry(self, key: str) -> LogEntry | None:
        with self._lock, self._engine.connect() as db:
            row = db.execute(_LOG_ENTRY, {"b_key": key}).mappings().first()
        return _entry(row) if row is not None else None

    def log_sent(self, key: str, entry: LogEntry) -> None:
        with self._lock, self._engine.begin() as db:
            db.execute(self._writes.log, log_row(key, entry))

    # Outbox

    def enqueue(self, item: Outgoing) -> Outgoing:
        row = outgoing_row(item)
        with self._lock, self._engine.begin() as db:
            if not db.execute(self._writes.queue, row).rowcount:
                # A newer message for a queued key keeps the key's tries and back-off.
                db.execute(_REQUEUE, {"b_key": item.log_key, "b_receiver": item.receiver,
                                      "b_notifier": item.notifier, "b_message": item.message,
                                      "b_firing": row["firing"], "b_resolved": row["resolved"],
                                      "b_sent_at": row["sent_at"]})
            stored = db.execute(_QUEUED, {"b_key": item.log_key}).mappings().one()
        return _outgoing(stored)

    def outgoing(self, due_by: datetime | None = None) -> list[Outgoing]:
        with self._lock, self._engine.connect() as db:
            rows = (db.execute(_OUTGOING) if due_by is None
                    else db.execute(_DUE, {"b_due": due_by})).mappings()
            return [_outgoing(row) for row in rows]

    def is_queued(self, log_key: str) -> bool:
        with self._lock, self._engine.connect() as db:
            return db.execute(_IS_QUEUED, {"b_key": log_key}).first() is not None

    def retry_later(self, log_key: str, attempts: int, next_at: datetime, error: str) -> None:
        with self._lock, self._engine.begin() as db:
            db.execute(_RETRY, {"b_key": log_key, "b_attempts": attempts, "b_next": next_at,
                                "b_error": error})

    def delivered(self, item: Outgoing) -> bool:
        with self._lock, self._engine.begin() as db:  # one transaction: logged and unqueued, or neither
            db.execute(self._writes.log, log_row(item.log_key, item.entry))
            version = db.execute(_DELIVERED, {"b_key": item.log_key}).scalar()
        return version is None or version == item.version

    def give_up(self, log_key: str) -> None:
        with self._lock, self._engine.begin() as db:
            db.execute(_UNQUEUE, {"b_key": log_key})
