"""Retracted imports: who retracted them, when and why, and their features kept in archives.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    srid = int(op.get_context().config.attributes["srid"])  # type: ignore[union-attr]
    op.add_column("imports", sa.Column("retracted_at", sa.Text))
    op.add_column("imports", sa.Column("retracted_by", sa.Text))
    op.add_column("imports", sa.Column("retraction_reason", sa.Text))
    op.create_table(
        "hazards_retracted",
        sa.Column("fid", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=srid, spatial_index=False)),
        sa.Column("hazard_id", sa.Text), sa.Column("status", sa.Text),
        sa.Column("recorded_on", sa.Date), sa.Column("found_after_eif", sa.Boolean),
        sa.Column("region", sa.Text), sa.Column("munition_type", sa.Text),
        sa.Column("source_file", sa.Text), sa.Column("import_id", sa.Integer),
        sa.Column("fid_was", sa.Integer, nullable=False))
    op.create_table(
        "releases_retracted",
        sa.Column("fid", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=srid, spatial_index=False)),
        sa.Column("release_id", sa.Text), sa.Column("method", sa.Text),
        sa.Column("released_on", sa.Date), sa.Column("hazard_id", sa.Text),
        sa.Column("organisation", sa.Text), sa.Column("items_destroyed", sa.Integer),
        sa.Column("depth_cm", sa.Float), sa.Column("source_file", sa.Text),
        sa.Column("import_id", sa.Integer), sa.Column("fid_was", sa.Integer, nullable=False))


def downgrade() -> None:
    for table in ("releases_retracted", "hazards_retracted"):
        op.drop_table(table)
    for column in ("retraction_reason", "retracted_by", "retracted_at"):
        op.drop_column("imports", column)
