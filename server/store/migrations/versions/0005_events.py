"""The event log (issue 18): every event message once, keyed by (site, cabinet, boot_id, seq).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("cabinet", sa.String(length=64), nullable=False),
        sa.Column("boot_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("old", sa.String(length=32), nullable=True),
        sa.Column("new", sa.String(length=32), nullable=True),
        sa.Column("replayed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("site", "cabinet", "boot_id", "seq", name=op.f("pk_events")),
    )
    op.create_index("ix_events_place", "events", ["site", "cabinet", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_place", table_name="events")
    op.drop_table("events")
