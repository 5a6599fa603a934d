"""Open the store: SQLite in the state dir (or in memory), or PostgreSQL by URL; the connection
settings of each in one place, and the schema migrated to the newest revision before anything
reads it."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, make_url, select
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from ..errors import ServerError

__all__ = ["DB_FILE", "MIGRATIONS", "StoreError", "StoreUrlError", "check_url", "is_ephemeral", "open_store",
           "where"]

DB_FILE: Final = "ladewache.sqlite3"
MIGRATIONS: Final = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS: Final = 5000  # a reader (the CLI) and the collector may write at the same time
# PostgreSQL: the collector's threads (ingest, alerts, notifier, web) each hold at most one
# connection for a short transaction; more would only queue on the server.
PG_POOL_SIZE: Final = 4
PG_MAX_OVERFLOW: Final = 8
PG_CONNECT_TIMEOUT_S: Final = 10

MIGRATION_LOCK: Final = 0x4C414445  # "LADE": PostgreSQL advisory lock id while migrating

_migrating = threading.Lock()


class StoreError(ServerError):
    """The store cannot be opened or migrated; the message names it (a URL without password)."""


class StoreUrlError(ValueError):
    """A store URL that names no database this store runs on."""


def check_url(url: str) -> str:
    """The URL's dialect, or StoreUrlError saying what is wrong (without the password)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUrlError("not a database URL (postgresql+psycopg://user:password@host/db)") from None
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise StoreUrlError(f"{parsed.get_backend_name()}: the store runs on postgresql or sqlite")
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() not in ("psycopg", "psycopg2"):
        raise StoreUrlError("use the psycopg driver: postgresql+psycopg://…")
    return parsed.get_backend_name()


def where(location: Path | str | None) -> str:
    """The store's place for a log line: the file, or the URL without its password."""
    if location is None:
        return "memory"
    if isinstance(location, Path):
        return str(location / DB_FILE)
    return make_url(location).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; WAL keeps it consistent
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class _Ephemeral:
    """Where a store without a place lives (no ``[state] dir``, and tests): a private SQLite file
    in this process's temp directory, removed with its engine and at exit. Not ``:memory:``: a
    memory database is one connection, and threads sharing one connection end each other's
    transactions. Each is a copy of one template migrated once per process (a copy takes
    milliseconds, the migrations a tenth of a second)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._count = 0

    def _template(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="ladewache-store-"))
            atexit.register(shutil.rmtree, self._dir, True)
            engine = _sqlite(f"sqlite:///{self._dir / 'template.sqlite3'}")
            migrate(engine)
            engine.dispose()  # the last connection folds the WAL into the file
        return self._dir / "template.sqlite3"

    def open(self) -> Engine:
        with self._lock:
            template = self._template()
            self._count += 1
            path = template.with_name(f"store-{self._count}.sqlite3")
            shutil.copyfile(template, path)
        engine = _sqlite(f"sqlite:///{path}")
        weakref.finalize(engine, _remove, path)
        return engine

    def holds(self, engine: Engine) -> bool:
        database = engine.url.database
        return (engine.dialect.name == "sqlite" and self._dir is not None and database is not None
                and Path(database).parent == self._dir)


def _remove(path: Path) -> None:
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        path.with_name(name).unlink(missing_ok=True)


_ephemeral = _Ephemeral()


def is_ephemeral(engine: Engine) -> bool:
    """Whether ``engine`` is a store without a place (``open_store(None)``): gone at exit."""
    return _ephemeral.holds(engine)


def _engine(location: Path | str | None) -> Engine:
    if location is None:
        return _ephemeral.open()
    if isinstance(location, Path):
        location.mkdir(parents=True, exist_ok=True)
        return _sqlite(f"sqlite:///{location / DB_FILE}")
    if check_url(location) == "sqlite":
        if make_url(location).database in (None, "", ":memory:"):
            return _ephemeral.open()
        return _sqlite(location)
    return create_engine(location, pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW,
                         pool_pre_ping=True,  # a restarted PostgreSQL leaves dead connections
                         connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already). On PostgreSQL
    several collectors may start at once: an advisory lock held by the transaction makes the
    second wait, then find the schema there."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migrating, engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # one migrating collector at a time
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(location: Path | str | None) -> Engine:
    """The store, migrated: a database URL (``[state] url``: PostgreSQL, or SQLite), the
    ``ladewache.sqlite3`` file in a directory (the ``[state] dir``), or, when None, one that
    lasts as long as this process (see ``_Ephemeral``). ``StoreError`` when it cannot be."""
    try:
        engine = _engine(location)
        if not is_ephemeral(engine):  # a copy of the migrated template
            migrate(engine)
    except (OSError, SQLAlchemyError) as exc:
        raise StoreError(f"cannot open the store ({where(location)}): {exc}") from exc
    return engine
