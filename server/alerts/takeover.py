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
from datetime import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ServerError
from ..store.legacy import IMPORTED, insert_new, legacy_time, read_only, retire
from ..store.schema_alerts import acks, alerts, notification_log, outbox, silences
from .model import Alert
from .silence import Silence, SilenceKind, Weekly
from .state import ack_row, alert_row, log_row, outgoing_row, silence_row
from .store import Ack, LogEntry, Outgoing

__all__ = ["LEGACY_ALERTS_FILE", "take_over_alerts"]

log = logging.getLogger(__name__)

LEGACY_ALERTS_FILE: Final = "ladewache-alerts.sqlite3"  # before issue 18: a file of its own


def _entry(firing: str, resolved: str, sent_at: str) -> LogEntry:
    return LogEntry(frozenset(json.loads(firing)), frozenset(json.loads(resolved)), legacy_time(sent_at))


def _alert(_fp: str, active_at: str, starts_at: str, ends_at: str | None, labels: str,
           annotations: str) -> dict[str, Any]:
    # The fingerprint is computed again from the labels, as for every alert.
    return alert_row(Alert(json.loads(labels), json.loads(annotations), legacy_time(active_at),
                           legacy_time(starts_at), legacy_time(ends_at) if ends_at else None))


def _silence(silence_id: str, matchers: str, starts_at: str, ends_at: str, created_by: str,
             comment: str, kind: str, weekly: str | None, created_at: str | None) -> dict[str, Any]:
    w = None
    if weekly:
        data = json.loads(weekly)
        w = Weekly(frozenset(data["days"]), time.fromisoformat(data["start"]),
                   time.fromisoformat(data["end"]), data["timezone"])
    return silence_row(Silence(json.loads(matchers), legacy_time(starts_at), legacy_time(ends_at), created_by,
                               comment, SilenceKind(kind), w,
                               legacy_time(created_at) if created_at else None, silence_id))


def _ack(fingerprint: str, active_at: str, by: str, comment: str, at: str) -> dict[str, Any]:
    return ack_row(Ack(fingerprint, legacy_time(active_at), by, comment, legacy_time(at)))


def _log(key: str, firing: str, resolved: str, sent_at: str) -> dict[str, Any]:
    return log_row(key, _entry(firing, resolved, sent_at))


def _outgoing(key: str, receiver: str, notifier: str, message: str, firing: str, resolved: str,
              sent_at: str, queued_at: str, next_at: str, attempts: int, version: int,
              error: str) -> dict[str, Any]:
    return outgoing_row(Outgoing(key, receiver, notifier, message,
                                 _entry(firing, resolved, sent_at), legacy_time(queued_at),
                                 legacy_time(next_at), attempts, version, error))


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
    with read_only(legacy) as old:
        return {table: [convert(*row) for row in old.execute(query)]
                for table, query, convert in _TABLES}


def take_over_alerts(engine: Engine, state_dir: Path) -> int:
    """Take ``ladewache-alerts.sqlite3`` in ``state_dir`` over into the store, if it is there;
    the number of rows taken over (0 without the file). Call it before a ``StoredState`` on the
    same store first reads (its cache of active alerts would miss the ones taken over)."""
    legacy = state_dir / LEGACY_ALERTS_FILE
    if not legacy.exists():
        return 0
    try:
        taken = insert_new(engine, _read(legacy))
        retire(legacy)
    except (OSError, ValueError, KeyError, sqlite3.Error, SQLAlchemyError) as exc:
        raise ServerError(f"cannot take the alert state over from {legacy}: {exc}") from exc
    log.info("took %d alert(s), %d silence(s), %d acknowledgement(s), %d notification log "
             "entr(y/ies) and %d queued notification(s) over from %s into the store; the file is "
             "kept as %s%s", taken["alerts"], taken["silences"], taken["acks"],
             taken["notification_log"], taken["outbox"], legacy, legacy.name, IMPORTED)
    return sum(taken.values())
