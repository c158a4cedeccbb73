"""Cases for injunction applications: a reference, a title, exhibits, notes, a timeline and a case-wide hold.

Exhibit references are ``<case reference>/<n:03d>``, numbered in the order items
are added and never reused (items are never removed from a case here), so an
exhibit label quoted in a statement always means the same item. Items come one
at a time or as every sealed item of an incident; both go through
:func:`api.case_records.add_exhibits`. A case bundle is exported by
``POST /api/v1/exports`` with ``case_id``; its custody entries are in
``GET /api/v1/custody/entries?case_id=``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import case_records, custody, holds
from api.access import LawyerDep
from api.case_records import load_case
from api.deps import SessionDep, StoreDep
from api.models import CaseRow
from api.problems import Problem
from api.schemas import LegalHoldOut
from api.schemas_legal import (
    CaseHoldIn,
    CaseHoldOut,
    CaseIn,
    CaseIncidentIn,
    CaseItemIn,
    CaseItemOut,
    CaseNoteIn,
    CaseNoteOut,
    CaseOut,
    CaseSummaryOut,
    TimelineEventOut,
)

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@router.post(
    "",
    response_model=CaseOut,
    status_code=status.HTTP_201_CREATED,
    summary="Open a case (legal, admin)",
    responses={409: {"description": "the reference is taken (problem details)"}},
)
def create_case(session: SessionDep, actor: LawyerDep, body: CaseIn) -> CaseOut:
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
    return case_records.case_out(session, row)


@router.get("", response_model=list[CaseSummaryOut], summary="All cases, newest first (legal, admin)")
def list_cases(session: SessionDep, _actor: LawyerDep) -> list[CaseSummaryOut]:
    return case_records.summaries(session)


@router.get("/{case_id}", response_model=CaseOut, summary="One case with its exhibits (legal, admin)")
def get_case(session: SessionDep, _actor: LawyerDep, case_id: uuid.UUID) -> CaseOut:
    return case_records.case_out(session, load_case(session, case_id))


@router.post(
    "/{case_id}/items",
    response_model=CaseItemOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add an evidence item as the next exhibit; held too if the case is held (legal, admin)",
    responses={409: {"description": "the item is already in the case (problem details)"}},
)
def add_item(
    session: SessionDep, store: StoreDep, actor: LawyerDep, case_id: uuid.UUID, body: CaseItemIn
) -> CaseItemOut:
    case = load_case(session, case_id)
    evidence = case_records.visible_evidence(session, actor, body.evidence_id)
    existing = next((i for i in case.items if i.evidence_id == body.evidence_id), None)
    if existing is None:
        added = case_records.add_exhibits(session, store, actor, case, [evidence], body.reason)
        if added:
            return added[0]
        session.expire_all()  # a concurrent request added it first: answer as if it had been first
        existing = next(i for i in load_case(session, case_id).items if i.evidence_id == body.evidence_id)
    raise Problem(
        409,
        "Already in the case",
        f"evidence {body.evidence_id} is exhibit {existing.exhibit_ref} of case {case.reference}",
    )


@router.post(
    "/{case_id}/incidents",
    response_model=list[CaseItemOut],
    status_code=status.HTTP_201_CREATED,
    summary="Add every sealed item of an incident not yet in the case as the next exhibits, oldest seal "
    "first; held too if the case is held (legal, admin)",
    responses={
        404: {"description": "no such case, or no such incident (or of a camera the caller may not see)"},
        409: {"description": "the incident has no sealed evidence yet, or all of it is in the case already"},
    },
)
def add_incident(
    session: SessionDep, store: StoreDep, actor: LawyerDep, case_id: uuid.UUID, body: CaseIncidentIn
) -> list[CaseItemOut]:
    case = load_case(session, case_id)
    evidence = case_records.incident_evidence(session, actor, case, body.incident_id)
    return case_records.add_exhibits(session, store, actor, case, evidence, body.reason)


@router.post(
    "/{case_id}/notes",
    response_model=CaseNoteOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a note to the case (append-only; legal, admin)",
)
def add_note(session: SessionDep, actor: LawyerDep, case_id: uuid.UUID, body: CaseNoteIn) -> CaseNoteOut:
    load_case(session, case_id)
    return case_records.add_note(session, actor, case_id, body.text)


@router.get(
    "/{case_id}/notes",
    response_model=list[CaseNoteOut],
    summary="The case's notes, oldest first (legal, admin)",
)
def list_notes(session: SessionDep, _actor: LawyerDep, case_id: uuid.UUID) -> list[CaseNoteOut]:
    load_case(session, case_id)
    return case_records.notes(session, case_id)


@router.get(
    "/{case_id}/timeline",
    response_model=list[TimelineEventOut],
    summary="What happened, oldest first: alerts, the case opened, exhibits added, holds, exports, shares, "
    "notes (legal, admin)",
)
def get_timeline(session: SessionDep, _actor: LawyerDep, case_id: uuid.UUID) -> list[TimelineEventOut]:
    return case_records.timeline(session, load_case(session, case_id))


@router.put(
    "/{case_id}/legal-hold",
    response_model=CaseHoldOut,
    summary="Place or release the case's legal hold on every exhibit (legal, admin)",
)
def put_case_hold(
    session: SessionDep, store: StoreDep, actor: LawyerDep, case_id: uuid.UUID, body: CaseHoldIn
) -> CaseHoldOut:
    case = load_case(session, case_id)
    # One id for the request's entries on every exhibit's chain: the timeline shows the request once.
    details = {
        "scope": "case",
        "case_id": str(case_id),
        "case_reference": case.reference,
        "operation": str(uuid.uuid4()),
    }
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
    return CaseHoldOut(case=case_records.case_out(session, load_case(session, case_id)), items=results)


def _kept_by(session: Session, case_id: uuid.UUID, evidence_id: uuid.UUID, own_hold: bool) -> list[str]:
    """What else keeps the store hold on an item when this case releases it: its own hold, other cases."""
    return (["item"] if own_hold else []) + [
        f"case {ref}" for ref in holds.held_cases(session, evidence_id, excluding=case_id)
    ]
