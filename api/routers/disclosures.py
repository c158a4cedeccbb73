"""The disclosure log (legal, admin): every time evidence was given to someone outside, in date order.

The ICO's CCTV guidance asks controllers to keep a record of each disclosure:
when, to whom (person and organisation), why, and what. A row per share link
(the link is the disclosure; its expiry, revocation and use count follow it) and
a row per export that names a recipient (a bundle handed over by other means).
Exports without a recipient are internal copies and not listed. ``contents``
says what was disclosed: ``full`` footage, or ``redacted`` copies only (master
and working copy withheld, as the guidance expects for most third parties).
Oldest first, as a register is read; ``?format=csv`` gives the same rows as a
spreadsheet (:mod:`api.csv_export`). A list page pages the JSON with ``limit`` and
``offset`` and reads the number of matching rows from ``X-Total-Count``; without
``limit`` every row comes back, as before. ``case_id`` keeps one case's disclosures.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from api.access import LawyerDep
from api.csv_export import attachment, to_csv
from api.deps import SessionDep
from api.models import ExportRow, ShareRow
from api.schemas import MAX_OFFSET
from api.schemas_legal import DisclosureOut

router = APIRouter(prefix="/api/v1/disclosures", tags=["disclosures"])

CSV_COLUMNS = (
    "date",
    "kind",
    "contents",
    "recipient",
    "organisation",
    "reason",
    "shared_by",
    "role",
    "exhibit_refs",
    "evidence_ids",
    "export_id",
    "share_id",
    "expires_at",
    "revoked_at",
    "uses",
)


def _share_row(share: ShareRow) -> DisclosureOut:
    export = share.export
    return DisclosureOut(
        date=share.created_at,
        kind="share",
        contents=export.contents,
        recipient=share.recipient,
        organisation=share.organisation,
        reason=share.reason,
        shared_by=share.created_by,
        role=share.role,
        exhibit_refs=export.exhibit_refs,
        evidence_ids=export.evidence_ids,
        export_id=export.export_id,
        share_id=share.share_id,
        expires_at=share.expires_at,
        revoked_at=share.revoked_at,
        uses=share.use_count,
    )


def _export_row(export: ExportRow) -> DisclosureOut:
    return DisclosureOut(
        date=export.created_at,
        kind="export",
        contents=export.contents,
        recipient=export.recipient,
        organisation=export.organisation,
        reason=export.reason,
        shared_by=export.actor,
        role=export.role,
        exhibit_refs=export.exhibit_refs,
        evidence_ids=export.evidence_ids,
        export_id=export.export_id,
        share_id=None,
        expires_at=None,
        revoked_at=None,
        uses=None,
    )


def disclosures(
    session: Session, since: datetime | None, until: datetime | None, case_id: uuid.UUID | None = None
) -> list[DisclosureOut]:
    shares = select(ShareRow).options(selectinload(ShareRow.export))
    exports = select(ExportRow).where(
        or_(ExportRow.recipient.is_not(None), ExportRow.organisation.is_not(None))
    )
    if case_id is not None:
        shares = shares.join(ExportRow, ExportRow.export_id == ShareRow.export_id).where(
            ExportRow.case_id == case_id
        )
        exports = exports.where(ExportRow.case_id == case_id)
    if since is not None:
        shares, exports = (
            shares.where(ShareRow.created_at >= since),
            exports.where(ExportRow.created_at >= since),
        )
    if until is not None:
        shares, exports = (
            shares.where(ShareRow.created_at < until),
            exports.where(ExportRow.created_at < until),
        )
    rows = [_share_row(s) for s in session.scalars(shares)] + [
        _export_row(e) for e in session.scalars(exports)
    ]
    return sorted(rows, key=lambda r: (r.date, r.kind, str(r.share_id or r.export_id)))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get(
    "",
    response_model=list[DisclosureOut],
    summary="The disclosure log: date, recipient, organisation, reason, what and by whom (legal, admin)",
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": "JSON rows (X-Total-Count: rows matching before limit and offset), or CSV with "
            "?format=csv (the whole filtered log: limit and offset page the JSON only)",
        }
    },
)
def get_disclosures(
    session: SessionDep,
    _actor: LawyerDep,
    response: Response,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
    since: Annotated[
        datetime | None, Query(description="disclosed at or after, ISO 8601 (UTC if no offset)")
    ] = None,
    until: Annotated[datetime | None, Query(description="disclosed before, ISO 8601")] = None,
    case_id: Annotated[uuid.UUID | None, Query(description="only disclosures of this case's exports")] = None,
    limit: Annotated[int | None, Query(ge=1, le=500, description="page size (JSON); all when absent")] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip (JSON)")] = 0,
) -> Any:
    rows = disclosures(session, _utc(since), _utc(until), case_id)
    if format == "csv":
        return attachment(to_csv((r.model_dump() for r in rows), CSV_COLUMNS), "disclosure-log")
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[offset : None if limit is None else offset + limit]
