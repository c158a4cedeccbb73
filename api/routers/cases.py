"""Cases (minimal): a reference, a title, evidence items as numbered exhibits, and a case-wide legal hold.

Exhibit references are ``<case reference>/<n:03d>``, numbered in the order items
are added and never reused (items are never removed from a case here), so an
exhibit label quoted in a statement always means the same item.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api import custody, holds
from api.deps import LegalActorDep, SessionDep, StoreDep
from api.models import CaseItemRow, CaseRow, EvidenceRow
from api.problems import Problem, not_found
from api.schemas import (
    CaseHoldIn,
    CaseHoldOut,
    CaseIn,
    CaseItemIn,
    CaseItemOut,
    CaseOut,
    CaseSummaryOut,
    LegalHoldOut,
)
from evidence_store.custody import CustodyAction

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def _case(session: Session, case_id: uuid.UUID) -> CaseRow:
    row = session.scalar(
        select(CaseRow)
        .where(CaseRow.case_id == case_id)
        .options(selectinload(CaseRow.items).selectinload(CaseItemRow.evidence))
    )
    if row is None:
        raise not_found("case", case_id)
    return row


def _summary(row: CaseRow, item_count: int) -> dict[str, Any]:
    return {
        "case_id": row.case_id,
        "reference": row.reference,
        "title": row.title,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "legal_hold": row.legal_hold,
        "item_count": item_count,
    }


def _item_out(item: CaseItemRow, evidence: EvidenceRow | None = None) -> CaseItemOut:
    evidence = evidence or item.evidence
    return CaseItemOut(
        evidence_id=item.evidence_id,
        number=item.number,
        exhibit_ref=item.exhibit_ref,
        added_at=item.added_at,
        added_by=item.added_by,
        incident_id=evidence.incident_id,
        camera_id=evidence.camera_id,
        sealed_at=evidence.sealed_at,
    )


def case_out(row: CaseRow) -> CaseOut:
    return CaseOut(**_summary(row, len(row.items)), items=[_item_out(i) for i in row.items])


@router.post(
    "",
    response_model=CaseOut,
    status_code=status.HTTP_201_CREATED,
    summary="Open a case (legal, admin)",
    responses={409: {"description": "the reference is taken (problem details)"}},
)
def create_case(session: SessionDep, actor: LegalActorDep, body: CaseIn) -> CaseOut:
    if session.scalar(select(CaseRow.case_id).where(CaseRow.reference == body.reference)) is not None:
        raise Problem(409, "Case reference taken", f"a case with reference {body.reference!r} already exists")
    row = CaseRow(
        case_id=uuid.uuid4(),
        reference=body.reference,
        title=body.title,
        created_at=datetime.now(UTC),
        created_by=actor.name,
        legal_hold=False,
        items=[],
    )
    session.add(row)
    session.commit()
    return CaseOut(**_summary(row, 0), items=[])


@router.get("", response_model=list[CaseSummaryOut], summary="All cases, newest first (legal, admin)")
def list_cases(session: SessionDep, _actor: LegalActorDep) -> list[CaseSummaryOut]:
    counts = select(CaseItemRow.case_id, func.count().label("n")).group_by(CaseItemRow.case_id).subquery()
    rows = session.execute(
        select(CaseRow, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.case_id == CaseRow.case_id)
        .order_by(CaseRow.created_at.desc())
    )
    return [CaseSummaryOut(**_summary(row, n)) for row, n in rows]


@router.get("/{case_id}", response_model=CaseOut, summary="One case with its exhibits (legal, admin)")
def get_case(session: SessionDep, _actor: LegalActorDep, case_id: uuid.UUID) -> CaseOut:
    return case_out(_case(session, case_id))


@router.post(
    "/{case_id}/items",
    response_model=CaseItemOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add an evidence item as the next exhibit; held too if the case is held (legal, admin)",
    responses={409: {"description": "the item is already in the case (problem details)"}},
)
def add_item(
    session: SessionDep, store: StoreDep, actor: LegalActorDep, case_id: uuid.UUID, body: CaseItemIn
) -> CaseItemOut:
    case = _case(session, case_id)
    evidence = holds.load_evidence(session, body.evidence_id)
    existing = next((i for i in case.items if i.evidence_id == body.evidence_id), None)
    if existing is not None:
        raise Problem(
            409,
            "Already in the case",
            f"evidence {body.evidence_id} is exhibit {existing.exhibit_ref} of case {case.reference}",
        )
    reference, held = case.reference, case.legal_hold
    hold_details = {"scope": "case", "case_id": str(case_id), "case_reference": reference}
    change = (
        holds.store_hold(session, store, evidence, True, actor, body.reason or "", hold_details)
        if held
        else None
    )

    def work(s: Session) -> CaseItemRow:
        number = (
            s.scalar(select(func.max(CaseItemRow.number)).where(CaseItemRow.case_id == case_id)) or 0
        ) + 1
        item = CaseItemRow(
            case_id=case_id,
            evidence_id=body.evidence_id,
            number=number,
            exhibit_ref=f"{reference}/{number:03d}",
            added_at=datetime.now(UTC),
            added_by=actor.name,
        )
        s.add(item)
        s.flush()
        custody.append(
            s,
            body.evidence_id,
            CustodyAction.ADDED_TO_CASE,
            actor,
            at=item.added_at,
            reason=body.reason,
            details={"case_id": str(case_id), "case_reference": reference, "exhibit_ref": item.exhibit_ref},
        )
        if change is not None:
            hold_reason = body.reason or f"case {reference} is under legal hold"
            holds.record_hold(s, body.evidence_id, True, actor, hold_reason, change, hold_details)
        return item

    item = custody.commit_with_retry(session, work)
    return _item_out(item, evidence)


@router.put(
    "/{case_id}/legal-hold",
    response_model=CaseHoldOut,
    summary="Place or release the case's legal hold on every exhibit (legal, admin)",
)
def put_case_hold(
    session: SessionDep, store: StoreDep, actor: LegalActorDep, case_id: uuid.UUID, body: CaseHoldIn
) -> CaseHoldOut:
    case = _case(session, case_id)
    details = {"scope": "case", "case_id": str(case_id), "case_reference": case.reference}
    planned = []
    for item in case.items:
        evidence = holds.load_evidence(session, item.evidence_id)
        kept_by = _kept_by(session, case_id, evidence.evidence_id, evidence.legal_hold)
        if body.on or not kept_by:
            change = holds.store_hold(session, store, evidence, body.on, actor, body.reason, details)
        else:
            change = holds.current_statuses(store, evidence)
        planned.append((evidence.evidence_id, kept_by, change))

    def work(s: Session) -> list[LegalHoldOut]:
        row = s.get(CaseRow, case_id)
        assert row is not None
        row.legal_hold = body.on
        results = []
        for evidence_id, kept_by, change in planned:
            extra: dict[str, Any] = {} if body.on else {"store_hold_kept_by": kept_by}
            entry = holds.record_hold(s, evidence_id, body.on, actor, body.reason, change, details | extra)
            results.append(
                LegalHoldOut(
                    evidence_id=evidence_id,
                    legal_hold="item" in kept_by,
                    held_by_cases=holds.held_cases(s, evidence_id),
                    store_legal_hold=change.all_held,
                    artifacts=change.statuses,
                    entry=entry,
                )
            )
        return results

    results = custody.commit_with_retry(session, work)
    session.expire_all()
    return CaseHoldOut(case=case_out(_case(session, case_id)), items=results)


def _kept_by(session: Session, case_id: uuid.UUID, evidence_id: uuid.UUID, own_hold: bool) -> list[str]:
    """What else keeps the store hold on an item when this case releases it: its own hold, other cases."""
    return (["item"] if own_hold else []) + [
        f"case {ref}" for ref in holds.held_cases(session, evidence_id, excluding=case_id)
    ]
