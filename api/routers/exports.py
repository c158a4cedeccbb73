"""Court export bundles (legal, admin): make one, list them, and download one hash-checked.

``contents: redacted`` makes a disclosure for a third party: redacted copies only, the master and
working copy withheld (and not read); see :mod:`api.exports`.

How a bundle is made and why in that order: :mod:`api.exports`. A download is
recorded as ``downloaded`` on the chain of every item in the bundle (object =
the bundle's key, version and SHA-256), committed before a byte is sent.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from api.access import LawyerDep
from api.deps import MetricsDep, SessionDep, SettingsDep, SignerDep, StoreDep
from api.exports import Exporter, bundle_ref, exported_ids
from api.models import ExportRow
from api.problems import not_found
from api.schemas import MAX_OFFSET
from api.schemas_legal import ExportIn, ExportItemOut, ExportOut, ExportPage
from api.serving import checked_download, client_details, required_reason
from evidence_store.custody import CustodyAction

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

BUNDLE_MEDIA_TYPE = "application/zip"


def export_out(row: ExportRow) -> ExportOut:
    return ExportOut(
        export_id=row.export_id,
        created_at=row.created_at,
        actor=row.actor,
        role=row.role,
        reason=row.reason,
        recipient=row.recipient,
        organisation=row.organisation,
        case_id=row.case_id,
        case_reference=row.case_reference,
        contents=row.contents,
        items=[ExportItemOut.model_validate(i) for i in row.items],
        bucket=row.bucket,
        key=row.key,
        version_id=row.version_id,
        sha256=row.sha256,
        size=row.size,
        download_path=f"/api/v1/exports/{row.export_id}/download",
    )


def load_export(session: SessionDep, export_id: uuid.UUID) -> ExportRow:
    row = session.get(ExportRow, export_id)
    if row is None:
        raise not_found("export", export_id)
    return row


@router.post(
    "",
    response_model=ExportOut,
    status_code=status.HTTP_201_CREATED,
    summary="Export items or a whole case as a signed, locked court bundle, in full or as a redacted "
    "disclosure (legal, admin; reason required)",
    responses={
        404: {"description": "an item, the case or a named redaction does not exist (problem details)"},
        409: {
            "description": "an item is incomplete, or a redacted export names an item without a done "
            "redaction or a redaction that is not done or not of an exported item (problem details)"
        },
        502: {"description": "an artifact failed its integrity check, or the store failed (problem details)"},
    },
)
def create_export(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    signer: SignerDep,
    metrics: MetricsDep,
    actor: LawyerDep,
    body: ExportIn,
) -> ExportOut:
    row = Exporter(session, store, settings, signer, metrics).export(actor, body)
    return export_out(row)


@router.get("", response_model=ExportPage, summary="Export bundles, newest first (legal, admin)")
def list_exports(
    session: SessionDep,
    _actor: LawyerDep,
    case_id: Annotated[uuid.UUID | None, Query(description="only exports of this case")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0,
) -> ExportPage:
    query = select(ExportRow)
    if case_id is not None:
        query = query.where(ExportRow.case_id == case_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ExportRow.created_at.desc(), ExportRow.export_id.desc()).limit(limit).offset(offset)
    ).all()
    return ExportPage(items=[export_out(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{export_id}", response_model=ExportOut, summary="One export bundle's record (legal, admin)")
def get_export(session: SessionDep, _actor: LawyerDep, export_id: uuid.UUID) -> ExportOut:
    return export_out(load_export(session, export_id))


@router.get(
    "/{export_id}/download",
    summary="Download the bundle (ZIP), verified against its SHA-256; reason required (legal, admin)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {BUNDLE_MEDIA_TYPE: {}}, "description": "the bundle, hash-checked"},
        400: {"description": "no reason given (problem details); nothing served"},
        502: {"description": "integrity check failed or store unavailable (problem details)"},
    },
)
def download_export(
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    actor: LawyerDep,
    export_id: uuid.UUID,
    request: Request,
    reason: Annotated[
        str | None, Query(max_length=1000, description="why the bundle is downloaded (custody log)")
    ] = None,
) -> StreamingResponse:
    row = load_export(session, export_id)
    why = required_reason(reason)
    obj, items = bundle_ref(row), exported_ids(row)
    details = {"export_id": str(export_id), **client_details(request)}
    return checked_download(
        session,
        store,
        metrics,
        obj,
        items,
        actor,
        action=CustodyAction.DOWNLOADED,
        reason=why,
        details=details,
        media_type=BUNDLE_MEDIA_TYPE,
        filename=f"export-{export_id}.zip",
    )
