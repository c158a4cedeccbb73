"""The custody log as a whole: verification against the signed WORM checkpoints, writing one now, and
the log view (every item's entries, filtered and paged, or as a CSV) that legal staff read and export.

The view shows entries exactly as hashed (``at`` is the hashed text), so a row in
the CSV can be checked against the chain and the checkpoints. ``case_id`` keeps
the entries of the case's exhibits (all of each exhibit's chain, before and after
it joined the case, as a court expects continuity) and names each row's exhibit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from minio.error import S3Error
from sqlalchemy import func, null, select
from urllib3.exceptions import HTTPError

from api.access import LawyerDep, ViewerDep
from api.checkpoints import CustodyVerification, published_keys, verify_against_checkpoints, write_checkpoint
from api.csv_export import attachment, to_csv
from api.custody import entry_of
from api.deps import SessionDep, SettingsDep, SignerDep, StoreDep
from api.models import CaseItemRow, CaseRow, CustodyEntryRow, EvidenceRow
from api.problems import Problem, not_found
from api.schemas import (
    MAX_OFFSET,
    CheckpointOut,
    CheckpointWrittenOut,
    CustodyLogEntryOut,
    CustodyLogPage,
    CustodyVerifyOut,
)
from evidence_store.custody import CustodyAction

STORE_ERRORS = (S3Error, HTTPError, OSError)

router = APIRouter(prefix="/api/v1/custody", tags=["custody"])

CSV_COLUMNS = (
    "at",
    "evidence_id",
    "exhibit_ref",
    "seq",
    "action",
    "actor",
    "role",
    "reason",
    "object_key",
    "object_version",
    "object_sha256",
    "details",
    "prev_hash",
    "entry_hash",
)


def verification_out(result: CustodyVerification) -> CustodyVerifyOut:
    return CustodyVerifyOut(
        ok=result.ok,
        chains_checked=result.chains_checked,
        entries_checked=result.entries_checked,
        checkpoints=[
            CheckpointOut(
                key=c.key,
                version_id=c.version_id,
                sha256=c.sha256,
                at=c.document.get("at"),
                items=len(c.document.get("items", {})),
                signature_ok=c.signature_ok,
                key_id=c.key_id,
                problems=c.problems,
            )
            for c in result.checkpoints
        ],
        problems=result.problems,
        warnings=result.warnings,
    )


@router.get(
    "/verify",
    response_model=CustodyVerifyOut,
    summary="Verify every custody chain and check it against the newest signed checkpoints in the bucket",
)
def verify(
    session: SessionDep, store: StoreDep, settings: SettingsDep, signer: SignerDep, _actor: ViewerDep
) -> CustodyVerifyOut:
    try:
        result = verify_against_checkpoints(session, store, settings, published_keys(signer, settings))
    except STORE_ERRORS as exc:
        raise Problem(502, "Evidence store unavailable", f"cannot read custody checkpoints: {exc}") from exc
    return verification_out(result)


@router.post(
    "/checkpoints",
    response_model=CheckpointWrittenOut,
    status_code=201,
    summary="Write a signed checkpoint of every chain head to the WORM bucket now (legal, admin)",
)
def post_checkpoint(
    session: SessionDep, store: StoreDep, settings: SettingsDep, signer: SignerDep, _actor: LawyerDep
) -> CheckpointWrittenOut:
    try:
        row = write_checkpoint(session, store, settings, signer)
    except STORE_ERRORS as exc:
        raise Problem(502, "Evidence store unavailable", f"cannot write the checkpoint: {exc}") from exc
    return CheckpointWrittenOut.model_validate(row)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get(
    "/entries",
    response_model=CustodyLogPage,
    summary="The custody log view: entries of every item, filtered, paged, or as CSV (legal, admin)",
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": "a page of entries, or with ?format=csv every matching entry (limit and offset "
            "page the JSON only) as an attachment with a header row",
        },
        404: {"description": "case_id names no case (problem details)"},
    },
)
def list_entries(
    session: SessionDep,
    principal: LawyerDep,
    evidence_id: Annotated[uuid.UUID | None, Query(description="only this item's chain")] = None,
    case_id: Annotated[uuid.UUID | None, Query(description="only the chains of this case's exhibits")] = None,
    actor: Annotated[
        str | None, Query(max_length=200, description="only entries by this actor (exact)")
    ] = None,
    action: Annotated[
        list[CustodyAction] | None, Query(description="only these actions (repeatable)")
    ] = None,
    since: Annotated[datetime | None, Query(description="at or after, ISO 8601 (UTC if no offset)")] = None,
    until: Annotated[datetime | None, Query(description="before, ISO 8601 (UTC if no offset)")] = None,
    order: Annotated[
        Literal["asc", "desc"], Query(description="oldest (asc, default) or newest first")
    ] = "asc",
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
    limit: Annotated[int, Query(ge=1, le=500, description="page size (JSON)")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="entries to skip (JSON)")] = 0,
) -> Any:
    reference = None
    if case_id is not None:
        reference = session.scalar(select(CaseRow.reference).where(CaseRow.case_id == case_id))
        if reference is None:
            raise not_found("case", case_id)
        query = select(CustodyEntryRow, CaseItemRow.exhibit_ref).join(
            CaseItemRow,
            (CaseItemRow.evidence_id == CustodyEntryRow.evidence_id) & (CaseItemRow.case_id == case_id),
        )
    else:
        query = select(CustodyEntryRow, null().label("exhibit_ref"))
    if principal.cameras is not None:  # entries of items from cameras the caller may not see do not exist
        query = query.join(EvidenceRow, EvidenceRow.evidence_id == CustodyEntryRow.evidence_id).where(
            principal.camera_clause(EvidenceRow.camera_id)
        )
    if evidence_id is not None:
        query = query.where(CustodyEntryRow.evidence_id == evidence_id)
    if actor is not None:
        query = query.where(CustodyEntryRow.actor == actor)
    if action:
        query = query.where(CustodyEntryRow.action.in_([a.value for a in action]))
    if (start := _utc(since)) is not None:
        query = query.where(CustodyEntryRow.at >= start)
    if (end := _utc(until)) is not None:
        query = query.where(CustodyEntryRow.at < end)
    keys = (CustodyEntryRow.at, CustodyEntryRow.id)
    query = query.order_by(*(k.desc() if order == "desc" else k for k in keys))
    if format == "csv":
        rows = [_entry_out(row, ref) for row, ref in session.execute(query)]
        stem = f"custody-log-{reference}" if reference else "custody-log"
        return attachment(to_csv((r.model_dump(mode="json") for r in rows), CSV_COLUMNS), stem)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    page = session.execute(query.limit(limit).offset(offset))
    return CustodyLogPage(
        items=[_entry_out(row, ref) for row, ref in page], total=total, limit=limit, offset=offset
    )


def _entry_out(row: CustodyEntryRow, exhibit_ref: str | None) -> CustodyLogEntryOut:
    return CustodyLogEntryOut(**entry_of(row).model_dump(), id=row.id, exhibit_ref=exhibit_ref)
