"""The ``rejected`` layer: features an import set aside, as read, with their problems.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    srid = int(op.get_context().config.attributes["srid"])  # type: ignore[union-attr]
    op.create_table(
        "rejected",
        sa.Column("fid", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("geom", Geometry("GEOMETRY", srid=srid, spatial_index=False)),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column("import_id", sa.Integer, nullable=False),
        sa.Column("row_in_file", sa.Integer, nullable=False),
        sa.Column("problems", sa.Text, nullable=False),
        sa.Column("attributes", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("rejected")
