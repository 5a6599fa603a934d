"""The store a test runs on: SQLite (the default) or a real PostgreSQL.

``LADEWACHE_TEST_STORE=postgresql`` runs the tests on PostgreSQL (``make test-postgresql``, and
the store tests within ``make test``): the session starts one server (tests/support/postgres.py)
with a migrated template database. Then

* every test gets the suite's database, emptied before it, as ``LADEWACHE_STATE__URL``: the
  ``[state] url`` of every collector and command the test starts, in process or not;
* ``store_at(directory)`` is that same database (the place a collector with that state dir keeps its
  store, so a test reopens what a collector wrote);
* ``new_store()`` is a database of its own, like an in-memory SQLite: nothing else sees it.

On SQLite, ``store_at`` is ``ladewache.sqlite3`` in the directory and ``new_store`` in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, text

from server.store import open_store
from server.store.schema import metadata

from .postgres import Postgres, start_postgres

__all__ = ["KIND", "STORE_ENV", "TestStores", "close_all", "new_store", "on_postgres", "store_at"]

KIND: Final = os.environ.get("LADEWACHE_TEST_STORE", "sqlite")
STORE_ENV: Final = "LADEWACHE_STATE__URL"  # the [state] url, as the server's settings read it
TEMPLATE: Final = "ladewache_template"
SUITE: Final = "ladewache_suite"

if KIND not in ("sqlite", "postgresql"):
    raise RuntimeError(f"LADEWACHE_TEST_STORE={KIND}: use sqlite or postgresql")


def on_postgres() -> bool:
    return KIND == "postgresql"


class TestStores:
    """The session's PostgreSQL with its template and suite databases."""

    __test__ = False  # not a test class

    def __init__(self) -> None:
        self.server: Postgres = start_postgres()
        open_store(self.server.create_database(TEMPLATE)).dispose()  # migrated once
        self.suite_url = self.server.create_database(SUITE, TEMPLATE)
        self._suite = open_store(self.suite_url)
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        self._truncate = text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")

    def empty_suite(self) -> None:
        """The suite's database as the migrations left it."""
        with self._suite.begin() as db:
            db.execute(self._truncate)

    def stop(self) -> None:
        self._suite.dispose()
        self.server.stop()


_session: TestStores | None = None
_opened: list[Engine] = []  # disposed after each test (tests/conftest.py), so no connection leaks


def start_session() -> TestStores | None:
    """Called once by tests/conftest.py: the PostgreSQL of this session, or None on SQLite."""
    global _session
    if on_postgres() and _session is None:
        _session = TestStores()
    return _session


def _stores() -> TestStores:
    if _session is None:
        raise RuntimeError("the PostgreSQL session is not started (tests/conftest.py)")
    return _session


def _opening(engine: Engine) -> Engine:
    _opened.append(engine)
    return engine


def new_store() -> Engine:
    """A store nothing else sees: in-memory SQLite, or a fresh PostgreSQL database."""
    if not on_postgres():
        return _opening(open_store(None))
    return _opening(open_store(_stores().server.new_database(TEMPLATE)))


def store_at(directory: Path) -> Engine:
    """The store a collector with ``[state] dir = directory`` keeps (see the module's note)."""
    if not on_postgres():
        return _opening(open_store(directory))
    return _opening(open_store(_stores().suite_url))


def close_all() -> None:
    """Close what this test opened through ``new_store`` and ``store_at``."""
    while _opened:
        _opened.pop().dispose()
