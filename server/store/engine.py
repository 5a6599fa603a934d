"""Open the store: the engine with its SQLite pragmas, and the schema migrated to the newest
revision before anything reads it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool

__all__ = ["DB_FILE", "MIGRATIONS", "open_store"]

DB_FILE: Final = "ladewache.sqlite3"
MIGRATIONS: Final = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS: Final = 5000  # a reader (the CLI) and the collector may write at the same time

_migrating = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; WAL keeps it consistent
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _engine(directory: Path | None) -> Engine:
    if directory is None:  # one connection shared by every thread, or each would see its own empty DB
        engine = create_engine("sqlite://", poolclass=StaticPool,
                               connect_args={"check_same_thread": False})
    else:
        directory.mkdir(parents=True, exist_ok=True)
        engine = create_engine(f"sqlite:///{directory / DB_FILE}",
                               connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migrating, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(directory: Path | None) -> Engine:
    """The store in ``directory`` (``ladewache.sqlite3``), or in memory when None; migrated."""
    engine = _engine(directory)
    migrate(engine)
    return engine
