"""History: slot and cabinet changes, charge sessions, daily roll-ups (issue 17).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cabinet_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("cabinet", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("door", sa.String(length=16), nullable=False),
        sa.Column("mains", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cabinet_changes")),
    )
    op.create_index("ix_cabinet_changes_at", "cabinet_changes", ["at"], unique=False)
    op.create_index("ix_cabinet_changes_place", "cabinet_changes", ["site", "cabinet", "at"], unique=False)
    op.create_table(
        "charge_sessions",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("cabinet", sa.String(length=64), nullable=False),
        sa.Column("boot_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("asset_tag", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("energy_wh", sa.Float(), nullable=False),
        sa.Column("peak_w", sa.Float(), nullable=False),
        sa.Column("end", sa.String(length=16), nullable=False),
        sa.Column("taper_wh", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("site", "cabinet", "boot_id", "seq", name=op.f("pk_charge_sessions")),
    )
    op.create_index("ix_charge_sessions_ended", "charge_sessions", ["ended_at"], unique=False)
    op.create_index(
        "ix_charge_sessions_place", "charge_sessions", ["site", "cabinet", "slot", "ended_at"], unique=False
    )
    op.create_index("ix_charge_sessions_tag", "charge_sessions", ["asset_tag", "ended_at"], unique=False)
    op.create_table(
        "daily_cabinets",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("cabinet", sa.String(length=64), nullable=False),
        sa.Column("online_s", sa.Float(), nullable=False),
        sa.Column("known_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "site", "cabinet", name=op.f("pk_daily_cabinets")),
    )
    op.create_index("ix_daily_cabinets_site", "daily_cabinets", ["site", "day"], unique=False)
    op.create_table(
        "daily_slots",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("cabinet", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("asset_tag", sa.String(length=64), nullable=True),
        sa.Column("school_day", sa.Integer(), nullable=False),
        sa.Column("ready", sa.Integer(), nullable=True),
        sa.Column("returned", sa.Integer(), nullable=True),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("energy_wh", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "site", "cabinet", "slot", name=op.f("pk_daily_slots")),
    )
    op.create_index("ix_daily_slots_site", "daily_slots", ["site", "day"], unique=False)
    op.create_table(
        "slot_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("cabinet", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("certainty", sa.String(length=16), nullable=True),
        sa.Column("asset_tag", sa.String(length=64), nullable=True),
        sa.Column("last_draw_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unseen_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fault", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_changes")),
    )
    op.create_index("ix_slot_changes_at", "slot_changes", ["at"], unique=False)
    op.create_index("ix_slot_changes_place", "slot_changes", ["site", "cabinet", "slot", "at"], unique=False)
    op.create_index("ix_slot_changes_tag", "slot_changes", ["asset_tag", "at"], unique=False)

    op.create_table(
        "daily_schools",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("school_day", sa.Integer(), nullable=False),
        sa.Column("ready", sa.Integer(), nullable=False),
        sa.Column("ready_known", sa.Integer(), nullable=False),
        sa.Column("not_returned", sa.Integer(), nullable=False),
        sa.Column("return_known", sa.Integer(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("energy_wh", sa.Float(), nullable=False),
        sa.Column("online_s", sa.Float(), nullable=False),
        sa.Column("known_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "site", name=op.f("pk_daily_schools")),
    )
    op.create_index("ix_daily_schools_site", "daily_schools", ["site", "day"], unique=False)
    op.create_table(
        "rollup_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "site", name=op.f("pk_rollup_days")),
    )


def downgrade() -> None:
    op.drop_table("rollup_days")
    op.drop_index("ix_daily_schools_site", table_name="daily_schools")
    op.drop_table("daily_schools")
    op.drop_index("ix_slot_changes_tag", table_name="slot_changes")
    op.drop_index("ix_slot_changes_place", table_name="slot_changes")
    op.drop_index("ix_slot_changes_at", table_name="slot_changes")
    op.drop_table("slot_changes")
    op.drop_index("ix_daily_slots_site", table_name="daily_slots")
    op.drop_table("daily_slots")
    op.drop_index("ix_daily_cabinets_site", table_name="daily_cabinets")
    op.drop_table("daily_cabinets")
    op.drop_index("ix_charge_sessions_tag", table_name="charge_sessions")
    op.drop_index("ix_charge_sessions_place", table_name="charge_sessions")
    op.drop_index("ix_charge_sessions_ended", table_name="charge_sessions")
    op.drop_table("charge_sessions")
    op.drop_index("ix_cabinet_changes_place", table_name="cabinet_changes")
    op.drop_index("ix_cabinet_changes_at", table_name="cabinet_changes")
    op.drop_table("cabinet_changes")
