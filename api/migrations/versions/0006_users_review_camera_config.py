"""Users, sessions, API keys and the auth log; alert review on incidents; versioned camera settings.

- ``users``: argon2id password hashes (never the password), role, optional camera
  allow-list, lockout counters. ``auth_sessions`` and ``api_keys`` store only the
  SHA-256 of their bearer secrets. ``auth_events`` records every login, failure,
  lockout and account or key change: who, when, from where.
- Alert review: ``incidents.review_status`` (new, acknowledged, escalated,
  dismissed, resolved), ``assignee`` and ``revision`` (bumped on every change, so
  the live feed can tell a row it already pushed from a changed one);
  ``incident_actions`` is the append-only review timeline (acknowledge, escalate,
  dismiss with its reason, notes, assignment). Existing incidents start as ``new``
  with revision 0: nothing needs rewriting.
- ``case_notes``: a case's notes, append-only like everything else a court may see.
- ``camera_configs``: every edit of a camera's zones and rule settings as a new
  version (never updated in place); the newest version is the one applied.

``downgrade`` drops all of it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from api.db import UtcDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Uuid(), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("password_changed_at", UtcDateTime(), nullable=False),
        sa.Column("last_login_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("session_id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.user_id"), nullable=False, index=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("ends_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("client", sa.String(200), nullable=True),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "auth_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("username", sa.String(200), nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("client", sa.String(200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
    )
    op.add_column(
        "incidents", sa.Column("review_status", sa.String(16), nullable=False, server_default="new")
    )
    op.add_column("incidents", sa.Column("assignee", sa.String(200), nullable=True))
    op.add_column("incidents", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_incidents_review_status", "incidents", ["review_status"])
    op.create_index("ix_incidents_updated_at", "incidents", ["updated_at"])
    op.create_table(
        "incident_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "incident_id", sa.Uuid(), sa.ForeignKey("incidents.incident_id"), nullable=False, index=True
        ),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("assignee", sa.String(200), nullable=True),
    )
    op.create_table(
        "case_notes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("cases.case_id"), nullable=False, index=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    op.create_table(
        "camera_configs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.UniqueConstraint("camera_id", "version", name="uq_camera_configs_version"),
    )


def downgrade() -> None:
    op.drop_table("camera_configs")
    op.drop_table("case_notes")
    op.drop_table("incident_actions")
    op.drop_index("ix_incidents_updated_at", table_name="incidents")
    op.drop_index("ix_incidents_review_status", table_name="incidents")
    for column in ("revision", "assignee", "review_status"):
        op.drop_column("incidents", column)
    op.drop_table("auth_events")
    op.drop_table("api_keys")
    op.drop_table("auth_sessions")
    op.drop_table("users")
