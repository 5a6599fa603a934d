"""Alerts, silences, acknowledgements, the notification log and outbox (issue 18).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("active_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("annotations", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", "active_at", name="pk_alerts"),
    )
    op.create_index("ix_alerts_one_active", "alerts", ["fingerprint"], unique=True,
                    sqlite_where=sa.text("ends_at IS NULL"),
                    postgresql_where=sa.text("ends_at IS NULL"))
    op.create_index("ix_alerts_ended", "alerts", ["ends_at"],
                    sqlite_where=sa.text("ends_at IS NOT NULL"),
                    postgresql_where=sa.text("ends_at IS NOT NULL"))
    op.create_table(
        "silences",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("matchers", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("weekly", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_silences"),
        sa.UniqueConstraint("id", name="uq_silences_id"),
    )
    op.create_table(
        "acks",
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("active_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", "active_at", name="pk_acks"),
    )
    op.create_table(
        "notification_log",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("firing", sa.Text(), nullable=False),
        sa.Column("resolved", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_notification_log"),
    )
    op.create_table(
        "outbox",
        sa.Column("log_key", sa.Text(), nullable=False),
        sa.Column("receiver", sa.Text(), nullable=False),
        sa.Column("notifier", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("firing", sa.Text(), nullable=False),
        sa.Column("resolved", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("log_key", name="pk_outbox"),
    )
    op.create_index("ix_outbox_next_at", "outbox", ["next_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_next_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("notification_log")
    op.drop_table("acks")
    op.drop_table("silences")
    op.drop_index("ix_alerts_ended", table_name="alerts")
    op.drop_index("ix_alerts_one_active", table_name="alerts")
    op.drop_table("alerts")
