"""custody log: hash-chained custody entries, checkpoints, cases, legal holds; access log folded in.

Every evidence item already stored gets its chain here: ``sealed`` (time from the
evidence row), ``created`` (when the API received it), then one ``downloaded`` /
``download_refused`` entry per ``evidence_access`` row in id order, with every
column of that row in the entry's details (its id, artifact, client address, user
agent, result, expected/read/served SHA-256). ``evidence_access`` is then DROPPED.

Why drop instead of keeping it read-only: two access logs, one chained and one
not, would sooner or later disagree, and a court would be shown the wrong one.
After the copy nothing of it is lost (``downgrade`` rebuilds it from the chains).

The hashes come from :mod:`evidence_store.custody` (``next_entry``), the same code
the API and the offline verifier use; the chain format is versioned there
(``CHAIN_VERSION``), so this migration keeps producing the same chains.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from evidence_store.custody import ActorRole, CustodyAction, CustodyEntry, next_entry

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRE_LOG_ACTOR = "unknown (before custody log)"
# Downloads before this revision did not require a reason; the chain format does (REASON_REQUIRED).
NO_REASON_RECORDED = "(no reason recorded: downloaded before reasons were required)"


def upgrade() -> None:
    op.add_column(
        "evidence", sa.Column("legal_hold", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_table(
        "custody_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("object_key", sa.String(length=1024), nullable=True),
        sa.Column("object_version", sa.String(length=255), nullable=True),
        sa.Column("object_sha256", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.evidence_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("evidence_id", "seq", name="uq_custody_entries_seq"),
    )
    op.create_index("ix_custody_entries_at", "custody_entries", ["at"], unique=False)
    op.create_table(
        "custody_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_key", sa.String(length=1024), nullable=False),
        sa.Column("version_id", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("signature_key", sa.String(length=1024), nullable=False),
        sa.Column("signature_version_id", sa.String(length=255), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_custody_checkpoints_at", "custody_checkpoints", ["at"], unique=False)
    op.create_table(
        "cases",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_table(
        "case_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("exhibit_ref", sa.String(length=100), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.case_id"]),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.evidence_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "evidence_id", name="uq_case_items_evidence"),
        sa.UniqueConstraint("case_id", "exhibit_ref", name="uq_case_items_exhibit_ref"),
        sa.UniqueConstraint("case_id", "number", name="uq_case_items_number"),
    )
    op.create_index("ix_case_items_evidence_id", "case_items", ["evidence_id"], unique=False)
    _chain_existing_evidence(op.get_bind())
    op.drop_index("ix_evidence_access_evidence_at", table_name="evidence_access")
    op.drop_table("evidence_access")


# Lightweight table views with the ORM's column types (not reflection): uuids and times then
# convert the same way on SQLite (CHAR(32) hex, naive UTC text) and PostgreSQL (uuid, timestamptz).
_TIME = sa.DateTime(timezone=True)
EVIDENCE = sa.table(
    "evidence",
    sa.column("evidence_id", sa.Uuid()),
    sa.column("bucket", sa.String()),
    sa.column("manifest_sha256", sa.String()),
    sa.column("sealed_at", _TIME),
    sa.column("received_at", _TIME),
    sa.column("signing_key_id", sa.String()),
)
ARTIFACTS = sa.table(
    "evidence_artifacts",
    *(sa.column(name, sa.String()) for name in ("kind", "key", "version_id", "sha256")),
    sa.column("evidence_id", sa.Uuid()),
    sa.column("size", sa.BigInteger()),
)
ACCESS = sa.table(
    "evidence_access",
    sa.column("id", sa.Integer()),
    sa.column("evidence_id", sa.Uuid()),
    sa.column("at", _TIME),
    *(
        sa.column(name, sa.String())
        for name in (
            "artifact_kind",
            "action",
            "client_address",
            "user_agent",
            "reason",
            "expected_sha256",
            "sha256_read",
            "sha256_served",
            "result",
        )
    ),
)
ENTRIES = sa.table(
    "custody_entries",
    sa.column("id", sa.Integer()),
    sa.column("evidence_id", sa.Uuid()),
    sa.column("seq", sa.Integer()),
    sa.column("at", _TIME),
    sa.column("details", sa.JSON()),
    *(
        sa.column(name, sa.String())
        for name in (
            "action",
            "actor",
            "role",
            "reason",
            "object_key",
            "object_version",
            "object_sha256",
            "prev_hash",
            "entry_hash",
        )
    ),
)


def _utc(moment: datetime) -> datetime:
    """A stored time as UTC-aware (SQLite hands back naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _chain_existing_evidence(bind: sa.Connection) -> None:
    for item in bind.execute(sa.select(EVIDENCE).order_by(EVIDENCE.c.received_at)).mappings().all():
        evidence_id: uuid.UUID = item["evidence_id"]
        arts = bind.execute(sa.select(ARTIFACTS).where(ARTIFACTS.c.evidence_id == evidence_id))
        chain = _sealed_and_created(evidence_id, item, list(arts.mappings()))
        rows = bind.execute(
            sa.select(ACCESS).where(ACCESS.c.evidence_id == evidence_id).order_by(ACCESS.c.id)
        )
        for row in rows.mappings():
            chain.append(_access_entry(chain[-1], evidence_id, row))
        bind.execute(sa.insert(ENTRIES), [_row(evidence_id, e) for e in chain])


def _sealed_and_created(evidence_id: uuid.UUID, item: Any, artifacts: list[Any]) -> list[CustodyEntry]:
    manifest = next((a for a in artifacts if a["kind"] == "manifest"), None)
    sealed = next_entry(
        None,
        evidence_id,
        CustodyAction.SEALED,
        actor="evidence-worker",
        role=ActorRole.SYSTEM,
        at=_utc(item["sealed_at"]),
        object_key=manifest["key"] if manifest else None,
        object_version=manifest["version_id"] if manifest else None,
        object_sha256=item["manifest_sha256"],
        details={
            "artifacts": {
                a["kind"]: {
                    "key": a["key"],
                    "version_id": a["version_id"],
                    "sha256": a["sha256"],
                    "size": a["size"],
                }
                for a in artifacts
            },
            "signing_key_id": item["signing_key_id"],
            "bucket": item["bucket"],
            "recorded_by": "migration 0002 (item sealed before the custody log)",
        },
    )
    created = next_entry(
        sealed,
        evidence_id,
        CustodyAction.CREATED,
        actor="api-persister",
        role=ActorRole.SYSTEM,
        at=_utc(item["received_at"]),
        details={"recorded_by": "migration 0002 (item received before the custody log)"},
    )
    return [sealed, created]


def _access_entry(previous: CustodyEntry, evidence_id: uuid.UUID, row: Any) -> CustodyEntry:
    ok = row["result"] == "ok"
    return next_entry(
        previous,
        evidence_id,
        CustodyAction.DOWNLOADED if ok else CustodyAction.DOWNLOAD_REFUSED,
        actor=PRE_LOG_ACTOR,
        role=ActorRole.SYSTEM,
        at=_utc(row["at"]),
        reason=row["reason"] if (row["reason"] or "").strip() or not ok else NO_REASON_RECORDED,
        object_sha256=row["expected_sha256"],
        details={
            "artifact_kind": row["artifact_kind"],
            "client_address": row["client_address"],
            "user_agent": row["user_agent"],
            "result": row["result"],
            "expected_sha256": row["expected_sha256"],
            "sha256_read": row["sha256_read"],
            "sha256_served": row["sha256_served"],
            "evidence_access_id": row["id"],
            "evidence_access_action": row["action"],
            "reason_recorded": bool((row["reason"] or "").strip()),
        },
    )


def _row(evidence_id: uuid.UUID, entry: CustodyEntry) -> dict[str, Any]:
    return {
        "evidence_id": evidence_id,
        "seq": entry.seq,
        "action": entry.action.value,
        "actor": entry.actor,
        "role": entry.role.value,
        "at": datetime.fromisoformat(entry.at),
        "reason": entry.reason,
        "object_key": entry.object_key,
        "object_version": entry.object_version,
        "object_sha256": entry.object_sha256,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "entry_hash": entry.entry_hash,
    }


def downgrade() -> None:
    """Back to 0001: the access log is rebuilt from the chains' download entries; the rest is dropped."""
    access = op.create_table(
        "evidence_access",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("evidence_id", sa.Uuid(), nullable=False),
        sa.Column("artifact_kind", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("client_address", sa.String(length=255), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expected_sha256", sa.String(length=64), nullable=False),
        sa.Column("sha256_read", sa.String(length=64), nullable=True),
        sa.Column("sha256_served", sa.String(length=64), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["evidence_id"], ["evidence.evidence_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_evidence_access_evidence_at", "evidence_access", ["evidence_id", "at"], unique=False)
    bind = op.get_bind()
    downloads = bind.execute(
        sa.select(ENTRIES)
        .where(ENTRIES.c.action.in_(["downloaded", "download_refused"]))
        .order_by(ENTRIES.c.at, ENTRIES.c.id)
    ).mappings()
    rows = [_access_row(e) for e in downloads]
    if rows:
        bind.execute(sa.insert(access), rows)
    op.drop_index("ix_case_items_evidence_id", table_name="case_items")
    op.drop_table("case_items")
    op.drop_table("cases")
    op.drop_index("ix_custody_checkpoints_at", table_name="custody_checkpoints")
    op.drop_table("custody_checkpoints")
    op.drop_index("ix_custody_entries_at", table_name="custody_entries")
    op.drop_table("custody_entries")
    # Plain ALTER (SQLite >= 3.35 has DROP COLUMN): a batch rebuild of ``evidence`` would drop a
    # table that other tables' foreign keys point at, which SQLite refuses with foreign keys on.
    op.execute("ALTER TABLE evidence DROP COLUMN legal_hold")


def _access_row(entry: Any) -> dict[str, Any]:
    details = entry["details"] or {}
    return {
        "evidence_id": entry["evidence_id"],
        "artifact_kind": details.get("artifact_kind") or "unknown",
        "action": "download",
        "client_address": details.get("client_address"),
        "user_agent": details.get("user_agent"),
        "reason": entry["reason"] if details.get("reason_recorded", True) else None,
        "at": _utc(entry["at"]),
        "expected_sha256": details.get("expected_sha256") or entry["object_sha256"] or "",
        "sha256_read": details.get("sha256_read"),
        "sha256_served": details.get("sha256_served"),
        "result": details.get("result") or ("ok" if entry["action"] == "downloaded" else "unknown"),
    }
