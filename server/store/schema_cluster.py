"""The cluster's tables of the store: ``leases`` (``server/lease.py``), one row per duty that only
one collector at a time may do (the alert leader: rules, notifications, history); ``hearing``
(``server/hearing.py``), one row per collector saying until when it is known to hear the broker.

``term`` is raised whenever a lease changes hands: a fencing number that tells a new holder from
an old one that still believes it holds the lease.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from .base import UtcDateTime, metadata

__all__ = ["hearing", "leases"]

leases = Table(
    "leases", metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(128), nullable=False),  # the collector's [cluster] node
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("term", BigInteger, nullable=False),
)

hearing = Table(
    "hearing", metadata,
    Column("node", String(128), primary_key=True),  # the collector's [cluster] node
    # it received from a broker when it last said so; counts until then (past: it hears nothing)
    Column("until", UtcDateTime(), nullable=False),
)
