"""The ``hazard_versions`` view: every version of every hazard, numbered (QGIS shows it).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE VIEW hazard_versions AS SELECT fid, geom, hazard_id, row_number() OVER "
        "(PARTITION BY hazard_id ORDER BY recorded_on, fid) AS version, count(*) OVER "
        "(PARTITION BY hazard_id) AS versions, status, recorded_on, found_after_eif, region, "
        "munition_type, source_file, import_id FROM hazards")


def downgrade() -> None:
    op.execute("DROP VIEW hazard_versions")
