"""Users of an installation from before the store: ``users.sqlite`` in the state dir is read once,
its users, API tokens and login sessions inserted into the store, and the file renamed
``users.sqlite.imported`` (kept, not deleted: the only copy if anything went wrong). The collector
and the ``cabinet-server user`` CLI both call this, whichever starts first after the upgrade."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, Table
from sqlalchemy.exc import SQLAlchemyError

from ..store.legacy import IMPORTED, insert_new, legacy_time, read_only, retire
from ..store.schema_auth import api_tokens, login_sessions, users

__all__ = ["LEGACY_USERS_FILE", "TakeoverError", "take_over_users"]

log = logging.getLogger(__name__)

LEGACY_USERS_FILE: Final = "users.sqlite"  # before issue 18: a file of its own


class TakeoverError(Exception):
    """The old file could not be read, stored or renamed; it is left where it was."""


def _read(legacy: Path) -> dict[Table, list[dict[str, Any]]]:
    with read_only(legacy) as old:
        return {
            users: [{"name": name, "role": role, "municipality": municipality, "school": school,
                     "password": password, "created_at": legacy_time(created)}
                    for name, role, municipality, school, password, created in old.execute(
                        "SELECT name, role, municipality, school, password, created_at FROM users")],
            api_tokens: [{"id": token_id, "user_name": user, "label": label,
                          "secret_sha256": secret, "created_at": legacy_time(created)}
                         for token_id, user, label, secret, created in old.execute(
                             "SELECT id, user, label, secret_sha256, created_at FROM tokens")],
            login_sessions: [{"id_sha256": id_sha256, "user_name": user, "csrf": csrf,
                              "expires_at": legacy_time(expires)}
                             for id_sha256, user, csrf, expires in old.execute(
                                 "SELECT id_sha256, user, csrf, expires_at FROM sessions")],
        }


def take_over_users(engine: Engine, state_dir: Path) -> int:
    """Take ``users.sqlite`` in ``state_dir`` over into the store, if it is there; the number of
    users taken over (0 without the file)."""
    legacy = state_dir / LEGACY_USERS_FILE
    if not legacy.exists():
        return 0
    try:
        taken = insert_new(engine, _read(legacy))  # users first: the others refer to them
        retire(legacy)
    except (OSError, ValueError, sqlite3.Error, SQLAlchemyError) as exc:
        raise TakeoverError(f"cannot take the users over from {legacy}: {exc}") from exc
    log.info("took %d user(s), %d API token(s) and %d login session(s) over from %s into the store; "
             "the file is kept as %s%s", taken["users"], taken["api_tokens"], taken["login_sessions"],
             legacy, legacy.name, IMPORTED)
    return taken["users"]
