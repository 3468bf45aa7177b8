"""The first schema: programme settings, imports, hazards, releases, users.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    srid = int(op.get_context().config.attributes["srid"])  # type: ignore[union-attr]
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table("programme", sa.Column("key", sa.Text, primary_key=True),
                    sa.Column("value", sa.Text, nullable=False))
    op.create_table(
        "imports",
        sa.Column("import_id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False, unique=True),
        sa.Column("crs_read", sa.Text), sa.Column("crs_given", sa.Text),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Text, nullable=False),
        sa.Column("imported_at", sa.Text, nullable=False))
    op.create_table(
        "hazards",
        sa.Column("fid", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=srid, spatial_index=False),
                  nullable=False),
        sa.Column("hazard_id", sa.Text, nullable=False, unique=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("recorded_on", sa.Date, nullable=False),
        sa.Column("found_after_eif", sa.Boolean, nullable=False),
        sa.Column("region", sa.Text), sa.Column("munition_type", sa.Text),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.import_id"), nullable=False))
    op.create_table(
        "releases",
        sa.Column("fid", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("geom", Geometry("MULTIPOLYGON", srid=srid, spatial_index=False),
                  nullable=False),
        sa.Column("release_id", sa.Text, nullable=False, unique=True),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("released_on", sa.Date, nullable=False),
        sa.Column("hazard_id", sa.Text), sa.Column("organisation", sa.Text),
        sa.Column("items_destroyed", sa.Integer), sa.Column("depth_cm", sa.Float),
        sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.import_id"), nullable=False))
    for table in ("hazards", "releases"):
        op.execute(f"CREATE INDEX {table}_geom_gist ON {table} USING GIST (geom)")
        op.create_index(f"{table}_import_id", table, ["import_id"])
    op.create_table(
        "users",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("token_sha256", sa.Text, nullable=False, unique=True),
        sa.Column("created_at", sa.Text, nullable=False))


def downgrade() -> None:
    for table in ("users", "releases", "hazards", "imports", "programme"):
        op.drop_table(table)
