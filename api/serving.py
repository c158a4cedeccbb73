"""Hash-checked downloads of everything stored (evidence artifacts, export bundles, redacted
copies) with their custody entries: the one path every download route takes.

The object is read completely and hashed before a byte is sent (:func:`api.integrity.fetch_verified`);
a mismatch or an unreadable store is recorded as refused and answered 502; an
access that succeeded is committed to every affected item's chain before the
response starts (no custody record, no bytes). One object may concern several
evidence items (an export bundle of a case): each item's chain gets its entry,
all in one transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import StreamingResponse
from minio import Minio
from sqlalchemy.orm import Session

from api import custody
from api.custody import Actor
from api.integrity import IntegrityFailure, StoreUnavailable, VerifiedObject, fetch_verified
from api.metrics import ApiMetrics
from api.models import ACCESS_INTEGRITY_FAILURE, ACCESS_OK, ACCESS_STORE_ERROR
from api.problems import Problem
from evidence_store.custody import CustodyAction, CustodyEntry

log = logging.getLogger(__name__)

REASON_REQUIRED_DETAIL = "a reason is required to download evidence; it is recorded in the custody log"


class NamedObject(Protocol):
    """What a custody entry names: one stored object version and its SHA-256 (if recorded)."""

    @property
    def key(self) -> str: ...
    @property
    def version_id(self) -> str | None: ...
    @property
    def sha256(self) -> str | None: ...


@dataclass(frozen=True)
class ObjectRef:
    """One stored object version and the SHA-256 it must have."""

    kind: str
    bucket: str
    key: str
    version_id: str | None
    sha256: str


def client_details(request: Request) -> dict[str, Any]:
    return {
        "client_address": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent"),
    }


def required_reason(reason: str | None) -> str:
    """The stripped reason, or 400 before anything is read."""
    reason = (reason or "").strip()
    if not reason:
        raise Problem(400, "Reason required", REASON_REQUIRED_DETAIL)
    return reason


def record_each(
    session: Session,
    evidence_ids: Sequence[uuid.UUID],
    action: CustodyAction,
    actor: Actor,
    *,
    reason: str | None,
    obj: NamedObject | None,
    details: dict[str, Any],
    at: datetime | None = None,
    also: Callable[[Session], None] | None = None,
) -> list[CustodyEntry]:
    """The same entry appended to every item's chain, in one transaction (retried on a lost race);
    ``also`` changes something else in that same transaction (a share row, its use count)."""
    moment = at or datetime.now(UTC)

    def work(s: Session) -> list[CustodyEntry]:
        if also is not None:
            also(s)
        return [
            custody.append(
                s,
                evidence_id,
                action,
                actor,
                at=moment,
                reason=reason,
                object_key=obj.key if obj else None,
                object_version=obj.version_id if obj else None,
                object_sha256=obj.sha256 if obj else None,
                details=details,
            )
            for evidence_id in evidence_ids
        ]

    return custody.commit_with_retry(session, work)


def fetch_or_refuse(
    session: Session,
    store: Minio,
    metrics: ApiMetrics,
    obj: ObjectRef,
    evidence_ids: Sequence[uuid.UUID],
    actor: Actor,
    *,
    reason: str | None,
    details: dict[str, Any],
    refused_action: CustodyAction = CustodyAction.DOWNLOAD_REFUSED,
) -> VerifiedObject:
    """The verified object; on a mismatch or store error the refusal is recorded and 502 raised."""
    base = {**details, "artifact_kind": obj.kind, "expected_sha256": obj.sha256}
    try:
        return fetch_verified(store, obj.bucket, obj.key, obj.version_id, obj.sha256)
    except IntegrityFailure as exc:
        refused = base | {
            "result": ACCESS_INTEGRITY_FAILURE,
            "sha256_read": exc.actual,
            "sha256_served": None,
        }
        record_each(session, evidence_ids, refused_action, actor, reason=reason, obj=obj, details=refused)
        metrics.downloads.labels(kind=obj.kind, result=ACCESS_INTEGRITY_FAILURE).inc()
        metrics.integrity_failures.labels(kind=obj.kind).inc()
        log.error("INTEGRITY FAILURE %s %s@%s: %s", obj.kind, obj.key, obj.version_id, exc)
        raise Problem(
            502,
            "Evidence integrity check failed",
            f"the stored {obj.kind} {obj.key} does not match its recorded SHA-256; "
            "nothing was served and the failure was recorded",
            extra={"expected_sha256": exc.expected, "actual_sha256": exc.actual},
        ) from exc
    except StoreUnavailable as exc:
        refused = base | {
            "result": ACCESS_STORE_ERROR,
            "sha256_read": None,
            "sha256_served": None,
            "error": str(exc),
        }
        record_each(session, evidence_ids, refused_action, actor, reason=reason, obj=obj, details=refused)
        metrics.downloads.labels(kind=obj.kind, result=ACCESS_STORE_ERROR).inc()
        log.error("%s %s unreadable: %s", obj.kind, obj.key, exc)
        raise Problem(502, "Evidence store unavailable", str(exc)) from exc


def checked_download(
    session: Session,
    store: Minio,
    metrics: ApiMetrics,
    obj: ObjectRef,
    evidence_ids: Sequence[uuid.UUID],
    actor: Actor,
    *,
    action: CustodyAction,
    reason: str | None,
    details: dict[str, Any],
    media_type: str,
    filename: str,
    refused_action: CustodyAction = CustodyAction.DOWNLOAD_REFUSED,
    also: Callable[[Session], None] | None = None,
) -> StreamingResponse:
    """Read ``obj`` hash-checked (a refusal is recorded and answered 502), record ``action`` on every
    item's chain, then stream the verified bytes as an attachment."""
    verified = fetch_or_refuse(
        session,
        store,
        metrics,
        obj,
        evidence_ids,
        actor,
        reason=reason,
        details=details,
        refused_action=refused_action,
    )
    ok = details | {
        "artifact_kind": obj.kind,
        "result": ACCESS_OK,
        "expected_sha256": obj.sha256,
        "sha256_read": verified.sha256,
        "sha256_served": verified.sha256,
        "size": verified.size,
    }
    try:
        record_each(session, evidence_ids, action, actor, reason=reason, obj=obj, details=ok, also=also)
    except BaseException:
        verified.file.close()  # no custody record, no download
        raise
    metrics.downloads.labels(kind=obj.kind, result=ACCESS_OK).inc()
    headers = {
        "Content-Length": str(verified.size),
        "ETag": f'"{verified.sha256}"',
        "Repr-Digest": verified.repr_digest,
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(verified.iter_and_close(), media_type=media_type, headers=headers)
