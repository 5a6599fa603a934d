"""Charge sessions: how the energy was measured (protocol revision 5: the meter's energy
counter, or power integrated over time); null for the sessions of older agents.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("charge_sessions") as table:
        table.add_column(sa.Column("energy_method", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("charge_sessions") as table:
        table.drop_column("energy_method")
