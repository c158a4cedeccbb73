"""Redacted copies of an evidence item (legal, admin): request one, poll it, download its video.

A request is checked (reason, request shape, frames inside the clip) and queued;
the work runs in the app's :class:`api.redaction_jobs.RedactionRunner`, never in
the request. The video download is hash-checked and recorded as ``downloaded``
(object = the video's key, version and SHA-256) like every evidence download.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api import holds
from api.access import LawyerDep
from api.deps import MetricsDep, RunnerDep, SessionDep, StoreDep
from api.models import REDACTION_DONE, REDACTION_PENDING, RedactionRow
from api.problems import Problem, not_found
from api.redaction_jobs import RunnerBusy, check_request, mark_failed
from api.schemas_legal import RedactionIn, RedactionOut, StoredObjectOut
from api.serving import ObjectRef, checked_download, client_details, required_reason
from cctv.contracts import ArtifactKind
from evidence_store.custody import CustodyAction

router = APIRouter(prefix="/api/v1/evidence", tags=["redactions"])

RETRY_AFTER_S = 30


def _path(row: RedactionRow) -> str:
    return f"/api/v1/evidence/{row.evidence_id}/redactions/{row.redaction_id}"


def redaction_out(row: RedactionRow) -> RedactionOut:
    done = row.status == REDACTION_DONE

    def stored(
        key: str | None, version: str | None, sha256: str | None, size: int | None = None
    ) -> StoredObjectOut | None:
        if not done or key is None or sha256 is None:
            return None
        return StoredObjectOut(key=key, version_id=version, sha256=sha256, size=size)

    return RedactionOut(
        redaction_id=row.redaction_id,
        evidence_id=row.evidence_id,
        status=row.status,  # type: ignore[arg-type]
        error=row.error,
        mode=row.mode,
        request=row.request,
        requested_by=row.requested_by,
        role=row.role,
        reason=row.reason,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        video=stored(row.video_key, row.video_version, row.video_sha256, row.video_size),
        record=stored(row.record_key, row.record_version, row.record_sha256),
        signature=stored(row.signature_key, row.signature_version, row.signature_sha256),
        video_path=f"{_path(row)}/video" if done else None,
    )


def _load(session: SessionDep, evidence_id: uuid.UUID, redaction_id: uuid.UUID) -> RedactionRow:
    row = session.get(RedactionRow, redaction_id)
    if row is None or row.evidence_id != evidence_id:
        raise not_found(f"redaction of evidence {evidence_id}", redaction_id)
    return row


@router.post(
    "/{evidence_id}/redactions",
    response_model=RedactionOut,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Request a redacted copy (blur people but the subjects, or given boxes); runs in the background",
    responses={
        422: {"description": "invalid request, no reason, or frames outside the clip (problem details)"},
        503: {"description": "too many redaction jobs queued; retry later (problem details)"},
    },
)
def post_redaction(
    session: SessionDep,
    runner: RunnerDep,
    actor: LawyerDep,
    evidence_id: uuid.UUID,
    body: RedactionIn,
    response: Response,
) -> RedactionOut:
    evidence = holds.load_evidence(session, evidence_id)
    check_request(body.request, evidence.frame_count)
    row = RedactionRow(
        redaction_id=uuid.uuid4(),
        evidence_id=evidence_id,
        status=REDACTION_PENDING,
        mode=body.request.mode,
        request=body.request.model_dump(mode="json"),
        requested_by=actor.name,
        role=actor.role.value,
        reason=body.reason,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.commit()
    try:
        runner.submit(row.redaction_id)
    except (RunnerBusy, RuntimeError) as exc:
        mark_failed(session, row.redaction_id, f"not queued: {exc}")
        raise Problem(
            503,
            "Redaction queue full",
            f"{exc}; request it again later",
            extra={"retry_after_s": RETRY_AFTER_S},
        ) from exc
    response.headers["Location"] = _path(row)
    return redaction_out(row)


@router.get(
    "/{evidence_id}/redactions",
    response_model=list[RedactionOut],
    summary="The item's redactions, oldest first (legal, admin)",
)
def list_redactions(session: SessionDep, _actor: LawyerDep, evidence_id: uuid.UUID) -> list[RedactionOut]:
    holds.load_evidence(session, evidence_id)
    rows = session.scalars(
        select(RedactionRow).where(RedactionRow.evidence_id == evidence_id).order_by(RedactionRow.created_at)
    ).all()
    return [redaction_out(r) for r in rows]


@router.get(
    "/{evidence_id}/redactions/{redaction_id}",
    response_model=RedactionOut,
    summary="One redaction's status (pending, done, failed with the error) (legal, admin)",
)
def get_redaction(
    session: SessionDep, _actor: LawyerDep, evidence_id: uuid.UUID, redaction_id: uuid.UUID
) -> RedactionOut:
    return redaction_out(_load(session, evidence_id, redaction_id))


@router.get(
    "/{evidence_id}/redactions/{redaction_id}/video",
    summary="Download the redacted MP4, hash-checked; reason required (legal, admin)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "the redacted copy"},
        400: {"description": "no reason given (problem details); nothing served"},
        409: {"description": "the redaction is not done (problem details)"},
        502: {"description": "integrity check failed or store unavailable (problem details)"},
    },
)
def download_video(
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    actor: LawyerDep,
    evidence_id: uuid.UUID,
    redaction_id: uuid.UUID,
    request: Request,
    reason: Annotated[str | None, Query(max_length=1000, description="why (custody log)")] = None,
) -> StreamingResponse:
    row = _load(session, evidence_id, redaction_id)
    if row.status != REDACTION_DONE or row.video_key is None or row.video_sha256 is None:
        raise Problem(409, "Redaction not done", f"redaction {redaction_id} is {row.status}")
    why = required_reason(reason)
    evidence = holds.load_evidence(session, evidence_id)
    obj = ObjectRef(
        ArtifactKind.REDACTED_COPY.value, evidence.bucket, row.video_key, row.video_version, row.video_sha256
    )
    details = {"redaction_id": str(redaction_id), **client_details(request)}
    return checked_download(
        session,
        store,
        metrics,
        obj,
        [evidence_id],
        actor,
        action=CustodyAction.DOWNLOADED,
        reason=why,
        details=details,
        media_type="video/mp4",
        filename=f"{evidence.camera_id}_{evidence_id}_redacted_{redaction_id}.mp4",
    )
