"""Every table of the store, here or in a ``schema_<tenant>.py`` imported at the end of this
file. Changing a table means a new migration in ``migrations/versions`` as well
(tests/unit/test_inventory.py compares the two)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from .base import UtcDateTime, metadata

__all__ = ["UtcDateTime", "cabinet_changes", "charge_sessions", "daily_cabinets", "daily_schools",
           "daily_slots",
           "ipad_moves", "ipads", "metadata", "revisions", "rollup_days", "slot_changes"]


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


# -- history (issue 17) --------------------------------------------------------------------------
# A slot's state as the collector judged it, one row per change of state, certainty or iPad (the
# inventory's tag): what the slot and iPad pages draw and the daily roll-ups are computed from.
# Kept [history] keep_days (two school years); the dense power curves stay in the TSDB.
slot_changes = Table(
    "slot_changes", metadata,
    Column("id", Integer, primary_key=True),
    Column("site", String(64), nullable=False),
    Column("cabinet", String(64), nullable=False),
    Column("slot", Integer, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("certainty", String(16), nullable=True),
    Column("asset_tag", String(64), nullable=True),
    Column("last_draw_at", UtcDateTime(), nullable=True),
    Column("unseen_since", UtcDateTime(), nullable=True),
    Column("fault", String(32), nullable=True),
    Index("ix_slot_changes_place", "site", "cabinet", "slot", "at"),
    Index("ix_slot_changes_tag", "asset_tag", "at"),
    Index("ix_slot_changes_at", "at"),
)

# A cabinet's agent status, door and mains, one row per change of any of them.
cabinet_changes = Table(
    "cabinet_changes", metadata,
    Column("id", Integer, primary_key=True),
    Column("site", String(64), nullable=False),
    Column("cabinet", String(64), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("door", String(16), nullable=False),
    Column("mains", String(16), nullable=False),
    Index("ix_cabinet_changes_place", "site", "cabinet", "at"),
    Index("ix_cabinet_changes_at", "at"),
)

# Every finished charge session, once (an agent may deliver one twice), under the inventory's tag.
charge_sessions = Table(
    "charge_sessions", metadata,
    Column("site", String(64), primary_key=True),
    Column("cabinet", String(64), primary_key=True),
    Column("boot_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("slot", Integer, nullable=False),
    Column("asset_tag", String(64), nullable=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("energy_wh", Float, nullable=False),
    Column("peak_w", Float, nullable=False),
    Column("end", String(16), nullable=False),
    Column("taper_wh", Float, nullable=True),
    # counter, mixed or integrated (protocol revision 5); null from older agents: integrated.
    Column("energy_method", String(16), nullable=True),
    Index("ix_charge_sessions_tag", "asset_tag", "ended_at"),
    Index("ix_charge_sessions_place", "site", "cabinet", "slot", "ended_at"),
    Index("ix_charge_sessions_ended", "ended_at"),
)

# One row per slot and local day, computed once the day is over: what the reports add up. Kept
# [history] rollup_keep_days (five years). ready/returned: 1 yes, 0 no, null could not tell or
# not asked (no school day, no iPad belongs there, a one-to-one school's readiness).
daily_slots = Table(
    "daily_slots", metadata,
    Column("day", Date, primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("cabinet", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("asset_tag", String(64), nullable=True),
    Column("school_day", Integer, nullable=False),
    Column("ready", Integer, nullable=True),
    Column("returned", Integer, nullable=True),
    Column("sessions", Integer, nullable=False),
    Column("energy_wh", Float, nullable=False),
    Index("ix_daily_slots_site", "site", "day"),
)

daily_cabinets = Table(
    "daily_cabinets", metadata,
    Column("day", Date, primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("cabinet", String(64), primary_key=True),
    Column("online_s", Float, nullable=False),
    Column("known_s", Float, nullable=False),
    Index("ix_daily_cabinets_site", "site", "day"),
)

# Per school and day, the sums of its slots' and cabinets' roll-ups: what a report reads (a
# district's year is 46 × 365 rows, not 800,000).
daily_schools = Table(
    "daily_schools", metadata,
    Column("day", Date, primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("school_day", Integer, nullable=False),
    Column("ready", Integer, nullable=False),
    Column("ready_known", Integer, nullable=False),
    Column("not_returned", Integer, nullable=False),
    Column("return_known", Integer, nullable=False),
    Column("sessions", Integer, nullable=False),
    Column("energy_wh", Float, nullable=False),
    Column("online_s", Float, nullable=False),
    Column("known_s", Float, nullable=False),
    Index("ix_daily_schools_site", "site", "day"),
)

# The days rolled up already, per school (a day without any cabinet is one too).
rollup_days = Table(
    "rollup_days", metadata,
    Column("day", Date, primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("computed_at", UtcDateTime(), nullable=False),
)


# -- the other tenants: their tables register on the same metadata ---------------------------------
from . import schema_alerts, schema_auth, schema_cluster, schema_events  # noqa: E402,F401
