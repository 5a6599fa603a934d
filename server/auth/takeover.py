"""Users of an installation from before the store: ``users.sqlite`` in the state dir is read once,
its users, API tokens and login sessions inserted into the store, and the file renamed
``users.sqlite.imported`` (kept, not deleted: the only copy if anything went wrong). The collector
and the ``cabinet-server user`` CLI both call this, whichever starts first after the upgrade."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from ..store.base import insert_ignore
from ..store.schema_auth import api_tokens, login_sessions, users

__all__ = ["LEGACY_USERS_FILE", "TakeoverError", "take_over_users"]

log = logging.getLogger(__name__)

LEGACY_USERS_FILE: Final = "users.sqlite"  # before issue 18: a file of its own
IMPORTED: Final = ".imported"
# The old file ran in WAL mode: its side files are renamed with it, so the .imported file stays
# a database SQLite opens whole.
_SIDE_FILES: Final = ("-wal", "-shm")


class TakeoverError(Exception):
    """The old file could not be read, stored or renamed; it is left where it was."""


def _time(text: str) -> datetime:
    """The old file kept ISO texts; a time without a zone there was UTC (``utcnow``)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _read(legacy: Path) -> dict[Table, list[dict[str, Any]]]:
    old = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
    try:
        return {
            users: [{"name": name, "role": role, "municipality": municipality, "school": school,
                     "password": password, "created_at": _time(created)}
                    for name, role, municipality, school, password, created in old.execute(
                        "SELECT name, role, municipality, school, password, created_at FROM users")],
            api_tokens: [{"id": token_id, "user_name": user, "label": label,
                          "secret_sha256": secret, "created_at": _time(created)}
                         for token_id, user, label, secret, created in old.execute(
                             "SELECT id, user, label, secret_sha256, created_at FROM tokens")],
            login_sessions: [{"id_sha256": id_sha256, "user_name": user, "csrf": csrf,
                              "expires_at": _time(expires)}
                             for id_sha256, user, csrf, expires in old.execute(
                                 "SELECT id_sha256, user, csrf, expires_at FROM sessions")],
        }
    finally:
        old.close()


def _insert(engine: Engine, rows: dict[Table, list[dict[str, Any]]]) -> dict[str, int]:
    """All in one transaction, users first (the others refer to them). A row the store has
    already (the same user name, token or session) is kept as it is."""
    taken = {}
    with engine.begin() as db:
        for table, table_rows in rows.items():
            # rowcount of an INSERT is kept only when asked for (psycopg's is gone with its cursor)
            statement = insert_ignore(db, table).execution_options(preserve_rowcount=True)
            taken[table.name] = sum(int(db.execute(statement, row).rowcount or 0) for row in table_rows)
    return taken


def take_over_users(engine: Engine, state_dir: Path) -> int:
    """Take ``users.sqlite`` in ``state_dir`` over into the store, if it is there; the number of
    users taken over (0 without the file)."""
    legacy = state_dir / LEGACY_USERS_FILE
    if not legacy.exists():
        return 0
    try:
        taken = _insert(engine, _read(legacy))
        legacy.rename(legacy.with_name(legacy.name + IMPORTED))
        for side in _SIDE_FILES:
            old_side = legacy.with_name(legacy.name + side)
            if old_side.exists():
                old_side.rename(legacy.with_name(legacy.name + IMPORTED + side))
    except (OSError, ValueError, sqlite3.Error, SQLAlchemyError) as exc:
        raise TakeoverError(f"cannot take the users over from {legacy}: {exc}") from exc
    log.info("took %d user(s), %d API token(s) and %d login session(s) over from %s into the store; "
             "the file is kept as %s%s", taken["users"], taken["api_tokens"], taken["login_sessions"],
             legacy, legacy.name, IMPORTED)
    return taken["users"]
