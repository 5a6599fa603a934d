"""The iPad inventory: identity, place, moves; and the change counters.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ipads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("asset_tag", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(32), nullable=True),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("site", sa.String(64), nullable=True),
        sa.Column("cabinet", sa.String(64), nullable=True),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ipads"),
        sa.UniqueConstraint("asset_tag", name="uq_ipads_asset_tag"),
        sa.UniqueConstraint("serial", name="uq_ipads_serial"),
        sa.UniqueConstraint("site", "cabinet", "slot", name="uq_ipads_place"),
    )
    op.create_table(
        "ipad_moves",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ipad_id", sa.Integer(), nullable=False),
        sa.Column("from_site", sa.String(64), nullable=True),
        sa.Column("from_cabinet", sa.String(64), nullable=True),
        sa.Column("from_slot", sa.Integer(), nullable=True),
        sa.Column("to_site", sa.String(64), nullable=True),
        sa.Column("to_cabinet", sa.String(64), nullable=True),
        sa.Column("to_slot", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ipad_moves"),
        sa.ForeignKeyConstraint(["ipad_id"], ["ipads.id"], ondelete="CASCADE",
                                name="fk_ipad_moves_ipad_id_ipads"),
    )
    op.create_index("ix_ipad_moves_ipad_id", "ipad_moves", ["ipad_id"])
    op.create_table(
        "revisions",
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name="pk_revisions"),
    )


def downgrade() -> None:
    op.drop_table("revisions")
    op.drop_index("ix_ipad_moves_ipad_id", "ipad_moves")
    op.drop_table("ipad_moves")
    op.drop_table("ipads")
