"""Alert state of an installation from before the store: ``ladewache-alerts.sqlite3`` in the state
dir is read once, its alerts, silences, acknowledgements, notification log and outbox inserted
into the store, and the file renamed ``ladewache-alerts.sqlite3.imported`` (kept, not deleted:
the only copy if anything went wrong). The collector and ``cabinet-server alerts`` both call this,
whichever starts first after the upgrade.

Every row goes through the model (``Alert``, ``Silence``, ...) and the same row functions as
``StoredState``: what is taken over is what the state would have written itself. A row the store
has already is kept as it is, so a takeover cut short (before the rename) can simply run again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ServerError
from ..store.base import insert_ignore
from ..store.schema_alerts import acks, alerts, notification_log, outbox, silences
from .model import Alert
from .silence import Silence, SilenceKind, Weekly
from .state import ack_row, alert_row, log_row, outgoing_row, silence_row
from .store import Ack, LogEntry, Outgoing

__all__ = ["LEGACY_ALERTS_FILE", "take_over_alerts"]

log = logging.getLogger(__name__)

LEGACY_ALERTS_FILE: Final = "ladewache-alerts.sqlite3"  # before issue 18: a file of its own
IMPORTED: Final = ".imported"
# The old file ran in WAL mode: its side files are renamed with it, so the .imported file stays a
# database SQLite opens whole.
_SIDE_FILES: Final = ("-wal", "-shm")


def _time(text: str) -> datetime:
    """The old file kept ISO texts of aware times; one without a zone would have been UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _entry(firing: str, resolved: str, sent_at: str) -> LogEntry:
    return LogEntry(frozenset(json.loads(firing)), frozenset(json.loads(resolved)), _time(sent_at))


def _alert(_fp: str, active_at: str, starts_at: str, ends_at: str | None, labels: str,
           annotations: str) -> dict[str, Any]:
    # The fingerprint is computed again from the labels, as for every alert.
    return alert_row(Alert(json.loads(labels), json.loads(annotations), _time(active_at),
                           _time(starts_at), _time(ends_at) if ends_at else None))


def _silence(silence_id: str, matchers: str, starts_at: str, ends_at: str, created_by: str,
             comment: str, kind: str, weekly: str | None, created_at: str | None) -> dict[str, Any]:
    w = None
    if weekly:
        data = json.loads(weekly)
        w = Weekly(frozenset(data["days"]), time.fromisoformat(data["start"]),
                   time.fromisoformat(data["end"]), data["timezone"])
    return silence_row(Silence(json.loads(matchers), _time(starts_at), _time(ends_at), created_by,
                               comment, SilenceKind(kind), w,
                               _time(created_at) if created_at else None, silence_id))


def _ack(fingerprint: str, active_at: str, by: str, comment: str, at: str) -> dict[str, Any]:
    return ack_row(Ack(fingerprint, _time(active_at), by, comment, _time(at)))


def _log(key: str, firing: str, resolved: str, sent_at: str) -> dict[str, Any]:
    return log_row(key, _entry(firing, resolved, sent_at))


def _outgoing(key: str, receiver: str, notifier: str, message: str, firing: str, resolved: str,
              sent_at: str, queued_at: str, next_at: str, attempts: int, version: int,
              error: str) -> dict[str, Any]:
    return outgoing_row(Outgoing(key, receiver, notifier, message,
                                 _entry(firing, resolved, sent_at), _time(queued_at),
                                 _time(next_at), attempts, version, error))


# Table of the store ← (the old file's query, a row of it to the store's row).
_TABLES: Final[list[tuple[Table, str, Callable[..., dict[str, Any]]]]] = [
    (alerts, "SELECT fingerprint, active_at, starts_at, ends_at, labels, annotations FROM alerts",
     _alert),
    (silences, "SELECT id, matchers, starts_at, ends_at, created_by, comment, kind, weekly, "
               "created_at FROM silences ORDER BY rowid", _silence),  # in the order added
    (acks, "SELECT fingerprint, active_at, by, comment, at FROM acks", _ack),
    (notification_log, "SELECT key, firing, resolved, sent_at FROM nflog", _log),
    (outbox, "SELECT log_key, receiver, notifier, message, firing, resolved, sent_at, queued_at, "
             "next_at, attempts, version, error FROM outbox", _outgoing),
]


def _read(legacy: Path) -> dict[Table, list[dict[str, Any]]]:
    old = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
    try:
        return {table: [convert(*row) for row in old.execute(query)]
                for table, query, convert in _TABLES}
    finally:
        old.close()


def _insert(engine: Engine, rows: dict[Table, list[dict[str, Any]]]) -> dict[str, int]:
    """All in one transaction: the store has all of the file or none of it."""
    taken = {}
    with engine.begin() as db:
        for table, table_rows in rows.items():
            # Without the option psycopg's INSERT rowcount is not kept (-1): count the new rows.
            statement = insert_ignore(db, table).execution_options(preserve_rowcount=True)
            taken[table.name] = sum(int(db.execute(statement, row).rowcount or 0) for row in table_rows)
    return taken


def take_over_alerts(engine: Engine, state_dir: Path) -> int:
    """Take ``ladewache-alerts.sqlite3`` in ``state_dir`` over into the store, if it is there;
    the number of rows taken over (0 without the file). Call it before a ``StoredState`` on the
    same store first reads (its cache of active alerts would miss the ones taken over)."""
    legacy = state_dir / LEGACY_ALERTS_FILE
    if not legacy.exists():
        return 0
    try:
        taken = _insert(engine, _read(legacy))
        legacy.rename(legacy.with_name(legacy.name + IMPORTED))
        for side in _SIDE_FILES:
            old_side = legacy.with_name(legacy.name + side)
            if old_side.exists():
                old_side.rename(legacy.with_name(legacy.name + IMPORTED + side))
    except (OSError, ValueError, KeyError, sqlite3.Error, SQLAlchemyError) as exc:
        raise ServerError(f"cannot take the alert state over from {legacy}: {exc}") from exc
    log.info("took %d alert(s), %d silence(s), %d acknowledgement(s), %d notification log "
             "entr(y/ies) and %d queued notification(s) over from %s into the store; the file is "
             "kept as %s%s", taken["alerts"], taken["silences"], taken["acks"],
             taken["notification_log"], taken["outbox"], legacy, legacy.name, IMPORTED)
    return sum(taken.values())
