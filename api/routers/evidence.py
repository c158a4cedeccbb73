"""Evidence: metadata and hash-verified downloads; every download attempt is written to the access log."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from api.deps import MetricsDep, SessionDep, StoreDep
from api.integrity import IntegrityFailure, StoreUnavailable, fetch_verified
from api.models import (
    ACCESS_INTEGRITY_FAILURE,
    ACCESS_OK,
    ACCESS_STORE_ERROR,
    EvidenceAccessRow,
    EvidenceArtifactRow,
    EvidenceRow,
)
from api.problems import Problem, not_found
from api.schemas import ArtifactOut, EvidenceOut
from cctv.contracts import ArtifactKind

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])

# route name -> (artifact kind, media type, file suffix)
DOWNLOADS: dict[str, tuple[ArtifactKind, str, str]] = {
    "clip": (ArtifactKind.WORKING_COPY, "video/mp4", "clip.mp4"),
    "master": (ArtifactKind.MASTER, "application/x-tar", "master.tar"),
    "manifest": (ArtifactKind.MANIFEST, "application/json", "manifest.json"),
}
PATH_OF_KIND = {kind.value: name for name, (kind, _, _) in DOWNLOADS.items()}

ReasonQuery = Annotated[
    str | None, Query(max_length=500, description="why the evidence is being accessed (custody log)")
]


def evidence_out(row: EvidenceRow) -> EvidenceOut:
    artifacts = []
    for artifact in row.artifacts:
        out = ArtifactOut.model_validate(artifact)
        if (route := PATH_OF_KIND.get(artifact.kind)) is not None:
            out = out.model_copy(update={"download_path": f"/api/v1/evidence/{row.evidence_id}/{route}"})
        artifacts.append(out)
    return EvidenceOut.model_validate(row).model_copy(update={"artifacts": artifacts})


def _evidence(session: SessionDep, evidence_id: uuid.UUID) -> EvidenceRow:
    row = session.scalar(
        select(EvidenceRow)
        .where(EvidenceRow.evidence_id == evidence_id)
        .options(selectinload(EvidenceRow.artifacts))
    )
    if row is None:
        raise not_found("evidence", evidence_id)
    return row


@router.get(
    "/{evidence_id}", response_model=EvidenceOut, summary="One sealed evidence item with its artifacts"
)
def get_evidence(session: SessionDep, evidence_id: uuid.UUID) -> EvidenceOut:
    return evidence_out(_evidence(session, evidence_id))


def _download(
    route: str,
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    reason: str | None,
) -> StreamingResponse:
    kind, media_type, suffix = DOWNLOADS[route]
    evidence = _evidence(session, evidence_id)
    artifact: EvidenceArtifactRow | None = next((a for a in evidence.artifacts if a.kind == kind.value), None)
    if artifact is None:
        raise not_found(f"{kind.value} artifact of evidence", evidence_id)
    access = EvidenceAccessRow(
        evidence_id=evidence_id,
        artifact_kind=kind.value,
        action="download",
        client_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        reason=reason,
        at=datetime.now(UTC),
        expected_sha256=artifact.sha256,
    )
    try:
        verified = fetch_verified(store, evidence.bucket, artifact.key, artifact.version_id, artifact.sha256)
    except IntegrityFailure as exc:
        access.sha256_read, access.result = exc.actual, ACCESS_INTEGRITY_FAILURE
        _record(session, access, metrics)
        metrics.integrity_failures.labels(kind=kind.value).inc()
        log.error("INTEGRITY FAILURE evidence %s %s: %s", evidence_id, kind.value, exc)
        raise Problem(
            502,
            "Evidence integrity check failed",
            f"the stored {kind.value} of evidence {evidence_id} does not match its sealed SHA-256; "
            "nothing was served and the failure was recorded",
            extra={"expected_sha256": exc.expected, "actual_sha256": exc.actual},
        ) from exc
    except StoreUnavailable as exc:
        access.result = ACCESS_STORE_ERROR
        _record(session, access, metrics)
        log.error("evidence %s %s unreadable: %s", evidence_id, kind.value, exc)
        raise Problem(502, "Evidence store unavailable", str(exc)) from exc
    access.sha256_read = access.sha256_served = verified.sha256
    access.result = ACCESS_OK
    try:
        _record(session, access, metrics)
    except BaseException:
        verified.file.close()  # no custody record, no download
        raise
    filename = f"{evidence.camera_id}_{evidence_id}_{suffix}"
    headers = {
        "Content-Length": str(verified.size),
        "ETag": f'"{verified.sha256}"',
        "Repr-Digest": verified.repr_digest,
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(verified.iter_and_close(), media_type=media_type, headers=headers)


def _record(session: SessionDep, access: EvidenceAccessRow, metrics: MetricsDep) -> None:
    session.add(access)
    session.commit()
    metrics.downloads.labels(kind=access.artifact_kind, result=access.result).inc()


def _download_responses(media_type: str) -> dict[int | str, dict[str, object]]:
    return {
        200: {
            "content": {media_type: {}},
            "description": "the artifact, verified against its sealed SHA-256",
        },
        502: {"description": "integrity check failed or store unavailable (problem details)"},
    }


@router.get(
    "/{evidence_id}/clip",
    summary="Download the working copy (H.264 MP4)",
    response_class=StreamingResponse,
    responses=_download_responses("video/mp4"),
)
def download_clip(
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    reason: ReasonQuery = None,
) -> StreamingResponse:
    return _download("clip", evidence_id, request, session, store, metrics, reason)


@router.get(
    "/{evidence_id}/master",
    summary="Download the master (original frames, tar)",
    response_class=StreamingResponse,
    responses=_download_responses("application/x-tar"),
)
def download_master(
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    reason: ReasonQuery = None,
) -> StreamingResponse:
    return _download("master", evidence_id, request, session, store, metrics, reason)


@router.get(
    "/{evidence_id}/manifest",
    summary="Download the signed manifest (JSON)",
    response_class=StreamingResponse,
    responses=_download_responses("application/json"),
)
def download_manifest(
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    reason: ReasonQuery = None,
) -> StreamingResponse:
    return _download("manifest", evidence_id, request, session, store, metrics, reason)
