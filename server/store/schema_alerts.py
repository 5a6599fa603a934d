"""The alerts tables of the store (``server/alerts/state.py``): alerts, silences,
acknowledgements, the notification log and the outbox of notifications waiting for delivery.

Label sets, matchers and the alert sets of a log entry are JSON texts: they are written and read
whole, never searched by the store. Free text (authors, comments, messages, keys built from
labels) is ``Text``: the API bounds it, not the store.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table, Text

from .base import UtcDateTime, metadata

__all__ = ["acks", "alerts", "metadata", "notification_log", "outbox", "silences"]

FINGERPRINT = 16  # server/alerts/model.py: 16 hex digits of the labels' SHA-256

# Every instance of an alert: the active one (ends_at null, at most one per fingerprint) and the
# resolved ones until [alerts] resolved_retention_s purges them.
alerts = Table(
    "alerts", metadata,
    Column("fingerprint", String(FINGERPRINT), primary_key=True),
    Column("active_at", UtcDateTime(), primary_key=True),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=True),
    Column("labels", Text, nullable=False),  # JSON object
    Column("annotations", Text, nullable=False),  # JSON object
)
# Both partial: the active alerts are found by fingerprint, the resolved ones purged by their end.
Index("ix_alerts_one_active", alerts.c.fingerprint, unique=True,
      sqlite_where=alerts.c.ends_at.is_(None), postgresql_where=alerts.c.ends_at.is_(None))
Index("ix_alerts_ended", alerts.c.ends_at,
      sqlite_where=alerts.c.ends_at.is_not(None), postgresql_where=alerts.c.ends_at.is_not(None))

# Expiring a silence sets its end: the row stays for the audit trail. Listed by start, then in the
# order they were added (seq: the dashboard's list does not reshuffle).
silences = Table(
    "silences", metadata,
    Column("seq", Integer, primary_key=True),
    Column("id", String(64), nullable=False, unique=True),  # new_silence_id(): 16 hex digits
    Column("matchers", Text, nullable=False),  # JSON object
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # SilenceKind
    Column("weekly", Text, nullable=True),  # JSON: days, start, end, timezone
    Column("created_at", UtcDateTime(), nullable=True),
)

# One per alert instance (fingerprint + active_at): an alert that comes back is not acknowledged.
acks = Table(
    "acks", metadata,
    Column("fingerprint", String(FINGERPRINT), primary_key=True),
    Column("active_at", UtcDateTime(), primary_key=True),
    Column("by", Text, nullable=False),
    Column("comment", Text, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)

# What was last sent per log key (group or digest, notifier): Alertmanager's nflog.
notification_log = Table(
    "notification_log", metadata,
    Column("key", Text, primary_key=True),
    Column("firing", Text, nullable=False),  # JSON list of fingerprints
    Column("resolved", Text, nullable=False),  # JSON list of fingerprints
    Column("sent_at", UtcDateTime(), nullable=False),
)

# The retry queue: at most one message per log key (server/alerts/store.py, Outgoing).
outbox = Table(
    "outbox", metadata,
    Column("log_key", Text, primary_key=True),
    Column("receiver", Text, nullable=False),
    Column("notifier", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("firing", Text, nullable=False),
    Column("resolved", Text, nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
    Column("queued_at", UtcDateTime(), nullable=False),
    Column("next_at", UtcDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("error", Text, nullable=False),
    Index("ix_outbox_next_at", "next_at"),
)
