"""Charge sessions: ``seq`` as a 64-bit integer, like the events' (the protocol allows up to 2⁶³;
PostgreSQL's INTEGER stops at 2³¹).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("charge_sessions") as table:
        table.alter_column("seq", existing_type=sa.Integer(), type_=sa.BigInteger(),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("charge_sessions") as table:
        table.alter_column("seq", existing_type=sa.BigInteger(), type_=sa.Integer(),
                           existing_nullable=False)
