"""Hearing: which collectors receive from the broker, so a leader that hears nothing hands the
lead to one that does (issue 19).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hearing",
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node", name="pk_hearing"),
    )


def downgrade() -> None:
    op.drop_table("hearing")
