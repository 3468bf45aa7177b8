"""Hazard versions: a re-survey adds a row with the same ``hazard_id``, so ids may repeat.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE hazards DROP CONSTRAINT IF EXISTS hazards_hazard_id_key")
    op.create_index("hazards_hazard_id", "hazards", ["hazard_id"])


def downgrade() -> None:
    op.drop_index("hazards_hazard_id", "hazards")
    op.create_unique_constraint("hazards_hazard_id_key", "hazards", ["hazard_id"])
