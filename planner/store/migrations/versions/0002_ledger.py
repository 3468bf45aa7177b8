"""The stored ledger: the area of each feature's piece and of each overlap of pieces.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table, layer in (("ledger_hazards", "hazards"), ("ledger_releases", "releases")):
        op.create_table(
            table,
            sa.Column("fid", sa.Integer, sa.ForeignKey(f"{layer}.fid"), primary_key=True),
            sa.Column("area_m2", sa.Float, nullable=False),
            sa.Column("raw_area_m2", sa.Float, nullable=False),
            sa.Column("changed_by", sa.Integer, nullable=False))
    op.create_table(
        "ledger_overlaps",
        sa.Column("hazard_fid", sa.Integer, sa.ForeignKey("hazards.fid"), primary_key=True),
        sa.Column("release_fid", sa.Integer, sa.ForeignKey("releases.fid"), primary_key=True),
        sa.Column("area_m2", sa.Float, nullable=False))
    op.create_index("ledger_overlaps_release", "ledger_overlaps", ["release_fid"])
    for table in ("ledger_hazards", "ledger_releases"):
        op.create_index(f"{table}_changed", table, ["changed_by"])


def downgrade() -> None:
    for table in ("ledger_overlaps", "ledger_releases", "ledger_hazards"):
        op.drop_table(table)
