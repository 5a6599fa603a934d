"""The event log's table: every ``event`` message once, under the key the agent gives it.

(site, cabinet, boot_id, seq) is the identity of a message: an agent's outbox delivers at least
once, so a repeat (a lost PUBACK, a re-sent backlog, a collector restart) meets the primary key.
``seq`` is a BigInteger: the protocol allows up to 2**63 - 1, and PostgreSQL's INTEGER stops at
2**31 - 1. The bounds of the strings are the protocol's (cabinet_agent/common/protocol.py).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table

from .base import UtcDateTime, metadata

__all__ = ["events"]

events = Table(
    "events", metadata,
    Column("site", String(64), primary_key=True),
    Column("cabinet", String(64), primary_key=True),
    Column("boot_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", UtcDateTime(), nullable=False),  # the agent's time
    Column("received_at", UtcDateTime(), nullable=False),  # the collector's
    Column("kind", String(32), nullable=False),
    Column("slot", Integer, nullable=True),
    Column("device", String(64), nullable=True),
    Column("old", String(32), nullable=True),
    Column("new", String(32), nullable=True),
    Column("replayed", Boolean, nullable=False),
    # a cabinet's events in time: the event log's pages and the history backfill read them so
    Index("ix_events_place", "site", "cabinet", "ts"),
)
