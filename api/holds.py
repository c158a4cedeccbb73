"""Legal holds and retention extensions: the store's Object Lock first, then the database and custody log.

Order and why: the store is changed (and read back, by :mod:`evidence_store.retention`)
before anything is recorded, so the custody log never says "hold placed" for a
version the store does not hold. Both store operations are idempotent, so a
request that failed part-way is simply repeated. A part-way failure is still
recorded (``result: partial`` with the versions changed and not changed), because
the store did change for some versions.

Holds: ``evidence.legal_hold`` is the item's own hold and ``cases.legal_hold`` a
case's; the store holds an item's versions while either says so. So releasing a
case keeps the store hold on items that are also held on their own or by another
case, and an item held by a case cannot be released on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api import custody
from api.custody import Actor
from api.models import CaseItemRow, CaseRow, EvidenceArtifactRow, EvidenceRow
from api.problems import Problem, not_found
from api.schemas import LockStatusOut
from evidence_store.custody import CustodyAction, CustodyEntry
from evidence_store.retention import (
    LockStatus,
    ObjectVersion,
    RetentionError,
    extend_retention,
    lock_status,
    set_legal_hold,
)
from evidence_store.store import retain_until_for

NEVER_SHORTENED = "retention can be extended, never shortened"


def load_evidence(session: Session, evidence_id: uuid.UUID) -> EvidenceRow:
    row = session.scalar(
        select(EvidenceRow)
        .where(EvidenceRow.evidence_id == evidence_id)
        .options(selectinload(EvidenceRow.artifacts))
    )
    if row is None:
        raise not_found("evidence", evidence_id)
    return row


def held_cases(session: Session, evidence_id: uuid.UUID, *, excluding: uuid.UUID | None = None) -> list[str]:
    """References of the held cases that contain the item (optionally not counting one case)."""
    query = (
        select(CaseRow.reference)
        .join(CaseItemRow, CaseItemRow.case_id == CaseRow.case_id)
        .where(CaseItemRow.evidence_id == evidence_id, CaseRow.legal_hold.is_(True))
    )
    if excluding is not None:
        query = query.where(CaseRow.case_id != excluding)
    return sorted(session.scalars(query))


def _versions(evidence: EvidenceRow) -> list[tuple[EvidenceArtifactRow, ObjectVersion]]:
    missing = [a.kind for a in evidence.artifacts if not a.version_id]
    if missing:
        raise Problem(
            409,
            "Evidence not versioned",
            f"artifacts {missing} of evidence {evidence.evidence_id} have no version id; "
            "locks apply per version",
        )
    return [(a, ObjectVersion(a.key, a.version_id or "")) for a in evidence.artifacts]


def _status_out(artifact: EvidenceArtifactRow, status: LockStatus) -> LockStatusOut:
    return LockStatusOut(
        kind=artifact.kind,
        key=artifact.key,
        version_id=artifact.version_id or "",
        mode=status.mode,
        retain_until=status.retain_until,
        legal_hold=status.legal_hold,
    )


def _artifact_details(statuses: Sequence[LockStatusOut]) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json") for s in statuses]


@dataclass(frozen=True)
class StoreChange:
    """What the store now says about every artifact version of one item."""

    statuses: list[LockStatusOut]

    @property
    def all_held(self) -> bool:
        return all(s.legal_hold for s in self.statuses)


def _store_failure(
    session: Session,
    evidence: EvidenceRow,
    action: CustodyAction,
    actor: Actor,
    reason: str | None,
    exc: RetentionError,
    details: dict[str, Any],
) -> Problem:
    """Record what the store did change before it failed, and the problem to answer with."""
    if exc.changed:
        evidence_id = evidence.evidence_id

        def work(s: Session) -> CustodyEntry:
            return custody.append(
                s,
                evidence_id,
                action,
                actor,
                at=datetime.now(UTC),
                reason=reason,
                details={
                    **details,
                    "result": "partial",
                    "changed": [str(v) for v in exc.changed],
                    "unchanged": [str(v) for v in exc.unchanged],
                    "error": str(exc),
                },
            )

        custody.commit_with_retry(session, work)
    return Problem(
        502, "Evidence store refused the change", f"{exc}", extra={"evidence_id": str(evidence.evidence_id)}
    )


def store_hold(
    session: Session,
    store: Minio,
    evidence: EvidenceRow,
    on: bool,
    actor: Actor,
    reason: str,
    details: dict[str, Any],
) -> StoreChange:
    """Set the store's legal hold on every artifact version of the item (read back)."""
    pairs = _versions(evidence)
    action = CustodyAction.HOLD_PLACED if on else CustodyAction.HOLD_RELEASED
    try:
        statuses = set_legal_hold(store, evidence.bucket, [v for _, v in pairs], on)
    except RetentionError as exc:
        raise _store_failure(session, evidence, action, actor, reason, exc, details) from exc
    return StoreChange([_status_out(a, s) for (a, _), s in zip(pairs, statuses, strict=True)])


def current_statuses(store: Minio, evidence: EvidenceRow) -> StoreChange:
    """The store's lock status of every version, unchanged (a case release that keeps the hold)."""
    pairs = _versions(evidence)
    try:
        return StoreChange([_status_out(a, lock_status(store, evidence.bucket, v)) for a, v in pairs])
    except RetentionError as exc:
        raise Problem(502, "Evidence store unavailable", str(exc)) from exc


def record_hold(
    session: Session,
    evidence_id: uuid.UUID,
    on: bool,
    actor: Actor,
    reason: str,
    change: StoreChange,
    details: dict[str, Any],
) -> CustodyEntry:
    """Append hold_placed / hold_released for one item (within the caller's unit of work)."""
    return custody.append(
        session,
        evidence_id,
        CustodyAction.HOLD_PLACED if on else CustodyAction.HOLD_RELEASED,
        actor,
        at=datetime.now(UTC),
        reason=reason,
        details={
            **details,
            "result": "ok",
            "store_legal_hold": change.all_held,
            "artifacts": _artifact_details(change.statuses),
        },
    )


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class Extension:
    previous: datetime
    retain_until: datetime
    change: StoreChange
    entry: CustodyEntry


def extend(
    session: Session, store: Minio, evidence: EvidenceRow, target: datetime, actor: Actor, reason: str
) -> Extension:
    """Extend COMPLIANCE retention of every version to ``target``; 409 if that would shorten it."""
    previous = evidence.retain_until
    target = retain_until_for(target, 0)  # the store keeps whole seconds; round up, never down
    if target < previous:
        raise Problem(
            409,
            "Retention cannot be shortened",
            f"{NEVER_SHORTENED}: evidence {evidence.evidence_id} is retained until {previous.isoformat()}, "
            f"asked for {target.isoformat()}; nothing was changed",
            extra={"retain_until": previous.isoformat()},
        )
    if target <= datetime.now(UTC):
        raise Problem(
            422, "Retention date in the past", f"retain_until {target.isoformat()} is not in the future"
        )
    pairs = _versions(evidence)
    details = {"previous_retain_until": previous.isoformat(), "retain_until": target.isoformat()}
    try:
        statuses = extend_retention(store, evidence.bucket, [v for _, v in pairs], target)
    except RetentionError as exc:
        if NEVER_SHORTENED in str(exc):
            raise Problem(409, "Retention cannot be shortened", str(exc)) from exc
        raise _store_failure(
            session, evidence, CustodyAction.RETENTION_EXTENDED, actor, reason, exc, details
        ) from exc
    change = StoreChange([_status_out(a, s) for (a, _), s in zip(pairs, statuses, strict=True)])
    evidence_id = evidence.evidence_id

    def work(s: Session) -> CustodyEntry:
        row = s.get(EvidenceRow, evidence_id)
        assert row is not None
        row.retain_until = max(row.retain_until, target)
        return custody.append(
            s,
            evidence_id,
            CustodyAction.RETENTION_EXTENDED,
            actor,
            at=datetime.now(UTC),
            reason=reason,
            details={**details, "result": "ok", "artifacts": _artifact_details(change.statuses)},
        )

    entry = custody.commit_with_retry(session, work)
    return Extension(previous, target, change, entry)
