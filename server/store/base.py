"""What every table of the store shares: the metadata with its naming convention, the time type,
and the few statements that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Dialect, Insert, MetaData, Table, TypeDecorator
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["UtcDateTime", "insert_ignore", "metadata", "upsert"]


class UtcDateTime(TypeDecorator[datetime]):
    """An aware time, stored in UTC and read back aware (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime for the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


def insert_ignore(connection: Connection, table: Table) -> Insert:
    """``INSERT`` that skips a row whose key exists already (SQLite and PostgreSQL alike); its
    ``rowcount`` says whether the row was new."""
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    # psycopg reports no row count for an INSERT unless asked to keep it
    return module.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)


def upsert(connection: Connection, table: Table, keys: list[str], values: dict[str, Any]) -> Insert:
    """``INSERT`` of ``values`` that updates the other columns when a row with the same ``keys``
    exists (SQLite and PostgreSQL alike)."""
    module: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = module.insert(table).values(**values)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={k: statement.excluded[k] for k in values if k not in keys})
