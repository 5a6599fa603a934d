"""The cluster's table of the store (``server/lease.py``): leases, one row per duty that only one
collector at a time may do (the alert leader: rules, notifications, history).

``term`` is raised whenever a lease changes hands: a fencing number that tells a new holder from
an old one that still believes it holds the lease.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from .base import UtcDateTime, metadata

__all__ = ["leases"]

leases = Table(
    "leases", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),  # the collector's [cluster] node
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("term", BigInteger, nullable=False),
)
