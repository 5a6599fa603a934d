"""Every table of the store, in one place. Changing a table means a new migration in
``migrations/versions`` as well (tests/unit/test_store.py compares the two)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
)

__all__ = ["UtcDateTime", "ipad_moves", "ipads", "metadata", "revisions"]


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

# The district's iPads: identity (asset tag, serial) and where each one lives now. A slot holds at
# most one iPad; an iPad without a place is in the inventory but in no cabinet.
ipads = Table(
    "ipads", metadata,
    Column("id", Integer, primary_key=True),
    Column("asset_tag", String(64), nullable=False, unique=True),
    Column("serial", String(32), nullable=True, unique=True),
    Column("name", String(100), nullable=True),
    Column("site", String(64), nullable=True),
    Column("cabinet", String(64), nullable=True),
    Column("slot", Integer, nullable=True),
    Column("placed_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(100), nullable=False),
    UniqueConstraint("site", "cabinet", "slot", name="uq_ipads_place"),
)

# Every change of place, so an iPad's history follows it across slots (issue 17 reads it).
ipad_moves = Table(
    "ipad_moves", metadata,
    Column("id", Integer, primary_key=True),
    Column("ipad_id", Integer, ForeignKey("ipads.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("from_site", String(64), nullable=True),
    Column("from_cabinet", String(64), nullable=True),
    Column("from_slot", Integer, nullable=True),
    Column("to_site", String(64), nullable=True),
    Column("to_cabinet", String(64), nullable=True),
    Column("to_slot", Integer, nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("by", String(100), nullable=False),
)

# One counter per kind of data, raised by every change: a process that keeps a copy in memory (the
# collector's inventory) reads one row to learn whether another process (the CLI) changed it.
revisions = Table(
    "revisions", metadata,
    Column("kind", String(32), primary_key=True),
    Column("revision", Integer, nullable=False),
)
