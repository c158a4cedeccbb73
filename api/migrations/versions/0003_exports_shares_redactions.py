"""exports, share links and redaction jobs: the disclosure side of the custody log.

- ``exports``: every court export bundle stored in the WORM bucket (key, version,
  SHA-256, size) with who made it, why, for whom and which items (exhibit refs).
- ``shares``: expiring, revocable links to an export for an external recipient;
  only the SHA-256 of a link's token is stored (``UNIQUE``: it is the lookup key).
- ``redactions``: redaction jobs and, once done, the locked objects they stored.

Nothing existing changes, so ``downgrade`` only drops the three tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=True),
        sa.Column("organisation", sa.String(length=300), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("case_reference", sa.String(length=64), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("bucket", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("version_id", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"]),
        sa.PrimaryKeyConstraint("export_id"),
    )
    op.create_index("ix_exports_created_at", "exports", ["created_at"], unique=False)
    op.create_table(
        "shares",
        sa.Column("share_id", sa.Uuid(), nullable=False),
        sa.Column("export_id", sa.Uuid(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("organisation", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME, nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["export_id"], ["exports.export_id"]),
        sa.PrimaryKeyConstraint("share_id"),
        sa.UniqueConstraint("token_sha256"),
    )
    op.create_index("ix_shares_created_at", "shares", ["created_at"], unique=False)
    op.create_index("ix_shares_export_id", "shares", ["export_id"], unique=False)
    op.create_table(
        "redactions",
        sa.Column("redaction_id", sa.Uuid(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        *(
            sa.Column(f"{obj}_{field}", column_type, nullable=True)
            for obj in ("video", "record", "signature")
            for field, column_type in (
                ("key", sa.String(length=1024)),
                ("version", sa.String(length=255)),
                ("sha256", sa.String(length=64)),
            )
        ),
        sa.Column("video_size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.evidence_id"]),
        sa.PrimaryKeyConstraint("redaction_id"),
    )
    op.create_index("ix_redactions_evidence_id", "redactions", ["evidence_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_redactions_evidence_id", table_name="redactions")
    op.drop_table("redactions")
    op.drop_index("ix_shares_export_id", table_name="shares")
    op.drop_index("ix_shares_created_at", table_name="shares")
    op.drop_table("shares")
    op.drop_index("ix_exports_created_at", table_name="exports")
    op.drop_table("exports")
