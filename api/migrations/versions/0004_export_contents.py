"""exports.contents: "full" or "redacted" (redacted copies only, master and working copy withheld).

A redacted export is a disclosure to a third party under the ICO's CCTV guidance,
so the disclosure log must say which kind each export was. Every export made
before this revision carried the master: the server default "full" is true of
all of them, so no data needs rewriting. ``downgrade`` drops the column (batch
mode, so SQLite can too).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "exports",
        sa.Column("contents", sa.String(length=16), nullable=False, server_default="full"),
    )


def downgrade() -> None:
    with op.batch_alter_table("exports") as batch:
        batch.drop_column("contents")
