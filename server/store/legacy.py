"""Files of an installation from before the store, taken over once: the one way to read such a
file, insert its rows and set it aside. Each tenant says only which rows it holds
(``server/alerts/takeover.py``, ``server/auth/takeover.py``, ``server/events.py``,
``server/sessions.py``).

The file is opened read-only and never written. Its rows go into the store with
``insert_ignore``: a row the store has already is kept, so a takeover cut short (before the
rename) simply runs again at the next start. Then the file is renamed ``<name>.imported`` with
its WAL side files (so it stays a database SQLite opens whole) and kept: the only copy if anything
went wrong.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, Table

from .base import insert_ignore

__all__ = ["IMPORTED", "insert_new", "legacy_time", "read_only", "retire"]

IMPORTED: Final = ".imported"
_SIDE_FILES: Final = ("-wal", "-shm")


def legacy_time(text: str) -> datetime:
    """The old files kept ISO texts of aware times; one without a zone there was UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """The legacy file, opened so that nothing can change it."""
    old = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield old
    finally:
        old.close()


def insert_new(engine: Engine, rows: Mapping[Table, Iterable[dict[str, Any]]]) -> dict[str, int]:
    """Every row in one transaction (the store has all of the file or none of it), tables in the
    order given (a table others refer to first); how many rows of each table were new."""
    taken: dict[str, int] = {}
    with engine.begin() as db:
        for table, table_rows in rows.items():
            statement = insert_ignore(db, table)
            taken[table.name] = sum(int(db.execute(statement, row).rowcount or 0) for row in table_rows)
    return taken


def retire(path: Path) -> Path:
    """Rename the file and its side files ``*.imported``; the new name. Another process that took
    the file over at the same moment has renamed it already: nothing to do then."""
    for suffix in ("", *_SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).rename(path.with_name(f"{path.name}{IMPORTED}{suffix}"))
    return path.with_name(path.name + IMPORTED)
