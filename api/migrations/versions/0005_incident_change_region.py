"""incidents.change_region, before_snapshot, has_before_snapshot: the vandalism rules' before/after.

Camera tamper, protected-area change and object removal report the pixel region
that changed and a snapshot from before the change (the existing snapshot is the
"after"). Every incident before this revision is a loitering one, which has
neither: nullable columns and a false flag are true of all of them, so no data
needs rewriting. ``downgrade`` drops the columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("change_region", sa.JSON(), nullable=True))
    op.add_column("incidents", sa.Column("before_snapshot", sa.LargeBinary(), nullable=True))
    op.add_column(
        "incidents",
        sa.Column("has_before_snapshot", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # Plain ALTER TABLE DROP COLUMN (SQLite >= 3.35 has it): batch mode would copy the table, and
    # evidence and events rows reference incidents by foreign key.
    for column in ("has_before_snapshot", "before_snapshot", "change_region"):
        op.drop_column("incidents", column)
