"""Evidence: metadata, hash-verified downloads, the custody log, legal hold and retention.

Every access writes a custody entry with who (the authenticated user or API key), their role
and why: viewing the item (``viewed``), each download (``downloaded``, a reason
is required) and each refused download (``download_refused``: integrity failure
or store error, nothing served). The entry is committed before a byte is sent:
no custody record, no download.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api import custody, holds
from api.access import LawyerDep, Principal, ViewerDep
from api.deps import MetricsDep, SessionDep, StoreDep
from api.models import (
    EvidenceArtifactRow,
    EvidenceRow,
)
from api.problems import Problem, not_found
from api.schemas import (
    ArtifactOut,
    ChainVerificationOut,
    CustodyLogOut,
    EvidenceOut,
    LegalHoldIn,
    LegalHoldOut,
    RetentionIn,
    RetentionOut,
)
from api.serving import ObjectRef, checked_download, client_details, record_each, required_reason
from cctv.contracts import ArtifactKind
from evidence_store.custody import CustodyAction, CustodyEntry

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
    str | None,
    Query(
        max_length=1000,
        description="why the evidence is being accessed (required for downloads; custody log)",
    ),
]


def visible_evidence(session: SessionDep, viewer: Principal, evidence_id: uuid.UUID) -> EvidenceRow:
    """The item, if the caller may see its camera; another camera's evidence does not exist for them."""
    evidence = holds.load_evidence(session, evidence_id)
    if not viewer.may_see(evidence.camera_id):
        raise not_found("evidence", evidence_id)
    return evidence


def evidence_out(row: EvidenceRow) -> EvidenceOut:
    artifacts = []
    for artifact in row.artifacts:
        out = ArtifactOut.model_validate(artifact)
        if (route := PATH_OF_KIND.get(artifact.kind)) is not None:
            out = out.model_copy(update={"download_path": f"/api/v1/evidence/{row.evidence_id}/{route}"})
        artifacts.append(out)
    return EvidenceOut.model_validate(row).model_copy(update={"artifacts": artifacts})


@router.get(
    "/{evidence_id}",
    response_model=EvidenceOut,
    summary="One sealed evidence item with its artifacts (recorded as 'viewed')",
)
def get_evidence(
    session: SessionDep,
    actor: ViewerDep,
    evidence_id: uuid.UUID,
    request: Request,
    reason: ReasonQuery = None,
) -> EvidenceOut:
    evidence = visible_evidence(session, actor, evidence_id)
    out = evidence_out(evidence)
    record_each(
        session,
        [evidence_id],
        CustodyAction.VIEWED,
        actor,
        reason=reason,
        obj=None,
        details=client_details(request),
    )
    return out


@router.get(
    "/{evidence_id}/custody",
    response_model=CustodyLogOut,
    summary="The item's custody log (hash chain) and whether it verifies",
)
def get_custody(session: SessionDep, viewer: ViewerDep, evidence_id: uuid.UUID) -> CustodyLogOut:
    visible_evidence(session, viewer, evidence_id)
    check = custody.check_chain(session, evidence_id)
    return CustodyLogOut(
        evidence_id=evidence_id,
        entries=custody.read_chain(session, evidence_id),
        verification=ChainVerificationOut(ok=check.ok, problems=check.problems),
    )


@router.put(
    "/{evidence_id}/legal-hold",
    response_model=LegalHoldOut,
    summary="Place or release the item's own legal hold on every stored version (legal, admin)",
    responses={409: {"description": "the item is held by a case (problem details)"}},
)
def put_legal_hold(
    session: SessionDep, store: StoreDep, actor: LawyerDep, evidence_id: uuid.UUID, body: LegalHoldIn
) -> LegalHoldOut:
    evidence = holds.load_evidence(session, evidence_id)
    cases = holds.held_cases(session, evidence_id)
    if not body.on and cases:
        raise Problem(
            409,
            "Evidence held by a case",
            f"evidence {evidence_id} is in case {', '.join(cases)} under legal hold; "
            "release the case's hold instead",
            extra={"cases": cases},
        )
    details: dict[str, Any] = {"scope": "item"}
    change = holds.store_hold(session, store, evidence, body.on, actor, body.reason, details)

    def work(s: Session) -> CustodyEntry:
        row = s.get(EvidenceRow, evidence_id)
        assert row is not None
        row.legal_hold = body.on
        return holds.record_hold(s, evidence_id, body.on, actor, body.reason, change, details)

    entry = custody.commit_with_retry(session, work)
    return LegalHoldOut(
        evidence_id=evidence_id,
        legal_hold=body.on,
        held_by_cases=cases,
        store_legal_hold=change.all_held,
        artifacts=change.statuses,
        entry=entry,
    )


@router.post(
    "/{evidence_id}/retention",
    response_model=RetentionOut,
    summary="Extend the COMPLIANCE retention of every stored version (legal, admin; never shortens)",
    responses={409: {"description": "the date would shorten retention (problem details)"}},
)
def post_retention(
    session: SessionDep, store: StoreDep, actor: LawyerDep, evidence_id: uuid.UUID, body: RetentionIn
) -> RetentionOut:
    evidence = holds.load_evidence(session, evidence_id)
    extension = holds.extend(session, store, evidence, body.retain_until, actor, body.reason)
    return RetentionOut(
        evidence_id=evidence_id,
        previous_retain_until=extension.previous,
        retain_until=extension.retain_until,
        artifacts=extension.change.statuses,
        entry=extension.entry,
    )


# --------------------------------------------------------------------------- downloads


def _download(
    route: str,
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    actor: Principal,
    reason: str | None,
) -> StreamingResponse:
    """The one download path (shared with exports and redactions via :mod:`api.serving`)."""
    kind, media_type, suffix = DOWNLOADS[route]
    evidence = visible_evidence(session, actor, evidence_id)
    artifact: EvidenceArtifactRow | None = next((a for a in evidence.artifacts if a.kind == kind.value), None)
    if artifact is None:
        raise not_found(f"{kind.value} artifact of evidence", evidence_id)
    reason = required_reason(reason)
    obj = ObjectRef(kind.value, evidence.bucket, artifact.key, artifact.version_id, artifact.sha256)
    return checked_download(
        session,
        store,
        metrics,
        obj,
        [evidence_id],
        actor,
        action=CustodyAction.DOWNLOADED,
        reason=reason,
        details=client_details(request),
        media_type=media_type,
        filename=f"{evidence.camera_id}_{evidence_id}_{suffix}",
    )


def _download_responses(media_type: str) -> dict[int | str, dict[str, object]]:
    return {
        200: {
            "content": {media_type: {}},
            "description": "the artifact, verified against its sealed SHA-256",
        },
        400: {"description": "no reason given (problem details); nothing served"},
        401: {"description": "no valid credentials (problem details)"},
        502: {"description": "integrity check failed or store unavailable (problem details)"},
    }


@router.get(
    "/{evidence_id}/clip",
    summary="Download the working copy (H.264 MP4); reason required",
    response_class=StreamingResponse,
    responses=_download_responses("video/mp4"),
)
def download_clip(
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    actor: ViewerDep,
    reason: ReasonQuery = None,
) -> StreamingResponse:
    return _download("clip", evidence_id, request, session, store, metrics, actor, reason)


@router.get(
    "/{evidence_id}/master",
    summary="Download the master (original frames, tar); reason required",
    response_class=StreamingResponse,
    responses=_download_responses("application/x-tar"),
)
def download_master(
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    actor: ViewerDep,
    reason: ReasonQuery = None,
) -> StreamingResponse:
    return _download("master", evidence_id, request, session, store, metrics, actor, reason)


@router.get(
    "/{evidence_id}/manifest",
    summary="Download the signed manifest (JSON); reason required",
    response_class=StreamingResponse,
    responses=_download_responses("application/json"),
)
def download_manifest(
    evidence_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    metrics: MetricsDep,
    actor: ViewerDep,
    reason: ReasonQuery = None,
) -> StreamingResponse:
    return _download("manifest", evidence_id, request, session, store, metrics, actor, reason)
