"""Redaction jobs: a redacted copy is made in the background, never inside a request.

Why a background executor: the person detector (HOG) costs about 0.3 s a frame
on a CPU, so a clip of a minute would hold a request for minutes. A request
stores a ``pending`` row and returns 202; :class:`RedactionRunner` (a small
thread pool owned by the app) runs the job; clients poll the row.

A job: read the master, manifest and its signature hash-checked
(:func:`api.integrity.fetch_verified`), check the signature with the published
key that signed it and the master frame by frame (:func:`load_master`), plan and
encode (:func:`build_redaction`; default subjects = the incident's OPENED event
boxes at that event's time), store the three locked objects
(:func:`store_redaction`, the item's retain-until), then in ONE transaction mark
the row ``done`` with the objects' keys and append ``redacted`` to the item's
chain. A job that fails keeps ``failed`` with the error and references nothing:
objects a failed job may already have written stay locked but unreferenced
(the record is written last, so no half-written redaction has a record).

Stopping: queued jobs are cancelled and marked failed ("API stopped before the
job ran") when the app stops; a job still running finishes in its thread. At
start-up every job still ``pending`` is marked failed ("API stopped before the
job finished"): jobs live in this process, so a pending row left by a stopped
process would otherwise never end. Completion only turns a row that is still
``pending`` into ``done``, so a job marked failed meanwhile never becomes a
half-referenced redaction; with several API replicas a restart may fail a
neighbour's running job this way, and it is simply requested again.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from api import custody, holds
from api.checkpoints import published_keys
from api.custody import Actor
from api.integrity import IntegrityFailure, StoreUnavailable, fetch_verified
from api.models import (
    ACCESS_INTEGRITY_FAILURE,
    ACCESS_STORE_ERROR,
    REDACTION_DONE,
    REDACTION_FAILED,
    REDACTION_PENDING,
    EvidenceRow,
    IncidentEventRow,
    RedactionRow,
)
from api.problems import Problem
from api.serving import ObjectRef, record_each
from cctv.config import Settings
from cctv.contracts import ArtifactKind, Box, IncidentEvent, StoredArtifact
from evidence_store.custody import ActorRole, CustodyAction
from evidence_store.redact import RedactionRequest
from evidence_store.redaction_record import StoredRedaction, build_redaction, load_master, store_redaction
from evidence_store.signing import ManifestSigner, verify_manifest
from evidence_store.store import EvidenceStore

log = logging.getLogger(__name__)

WORKERS = 1  # CPU-bound (HOG, x264): one job at a time keeps the API's own threads responsive
MAX_QUEUED = 8
STOPPED_BEFORE_RUN = "API stopped before the job ran; request the redaction again"
STOPPED_WHILE_RUNNING = "API stopped before the job finished; request the redaction again"
MAX_ERROR_CHARS = 4000


class RunnerBusy(RuntimeError):
    """Too many jobs queued: the request is refused (503) instead of queueing without bound."""


class Abandoned(RuntimeError):
    """The row stopped being pending while the job ran (marked failed at a stop): keep nothing."""


def check_request(request: RedactionRequest, frame_count: int) -> None:
    """422 before queueing for frames outside the clip (box sizes are checked by the job)."""
    last = frame_count - 1
    problems = [
        f"boxes[{i}] frames {box.frame_from}..{box.frame_to}"
        for i, box in enumerate(request.boxes)
        if box.frame_to > last
    ]
    problems += [
        f"keep[{i}] frame {keep.frame}" for i, keep in enumerate(request.keep or ()) if keep.frame > last
    ]
    if problems:
        raise Problem(
            422,
            "Redaction request out of range",
            f"the evidence has {frame_count} frames (0..{last}); out of range: {'; '.join(problems)}",
        )


def mark_failed(session: Session, redaction_id: uuid.UUID, error: str) -> bool:
    """Pending -> failed with ``error``; False when the row was no longer pending."""
    result = session.execute(
        update(RedactionRow)
        .where(RedactionRow.redaction_id == redaction_id, RedactionRow.status == REDACTION_PENDING)
        .values(status=REDACTION_FAILED, error=error[:MAX_ERROR_CHARS], finished_at=datetime.now(UTC))
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0))


def fail_abandoned(session: Session) -> int:
    """At start-up: every job still pending belonged to a stopped process and never ends."""
    result = session.execute(
        update(RedactionRow)
        .where(RedactionRow.status == REDACTION_PENDING)
        .values(status=REDACTION_FAILED, error=STOPPED_WHILE_RUNNING, finished_at=datetime.now(UTC))
    )
    session.commit()
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.warning("%d redaction job(s) left pending by a stopped API marked failed", count)
    return count


@dataclass(frozen=True)
class _Sources:
    master: bytes
    manifest: bytes
    signature: bytes


class RedactionRunner:
    """The app's bounded pool of redaction jobs (see the module docstring for stopping)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        store: Minio,
        settings: Settings,
        signer: ManifestSigner,
        workers: int = WORKERS,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self.sessions, self.store, self.settings, self.signer = sessions, store, settings, signer
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="redaction")
        self._slots = threading.BoundedSemaphore(workers + max_queued)
        self._capacity = workers + max_queued
        self._futures: dict[uuid.UUID, concurrent.futures.Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, redaction_id: uuid.UUID) -> None:
        if not self._slots.acquire(blocking=False):
            raise RunnerBusy(f"{self._capacity} redaction jobs are already running or queued")
        try:
            future = self._executor.submit(self.run, redaction_id)
        except RuntimeError:  # the executor is shut down: the app is stopping
            self._slots.release()
            raise
        with self._lock:
            self._futures[redaction_id] = future
        future.add_done_callback(lambda _: self._done(redaction_id))

    def _done(self, redaction_id: uuid.UUID) -> None:
        with self._lock:
            self._futures.pop(redaction_id, None)
        self._slots.release()

    def shutdown(self, timeout_s: float) -> None:
        """Cancel queued jobs (marked failed), give a running one ``timeout_s`` to finish."""
        with self._lock:
            futures = dict(self._futures)
        self._executor.shutdown(wait=False, cancel_futures=True)
        cancelled = [rid for rid, future in futures.items() if future.cancelled()]
        with self.sessions() as session:
            for redaction_id in cancelled:
                mark_failed(session, redaction_id, STOPPED_BEFORE_RUN)
        running = [f for f in futures.values() if not f.cancelled()]
        _, still = concurrent.futures.wait(running, timeout=timeout_s)
        if still:
            log.warning("%d redaction job(s) still running at shutdown", len(still))

    # ------------------------------------------------------------------ the job

    def run(self, redaction_id: uuid.UUID) -> None:
        """One job, start to end; never raises (the outcome is the row's status)."""
        with self.sessions() as session:
            try:
                stored = self._redact(session, redaction_id)
                if stored is not None:
                    log.info("redaction %s done: %s", redaction_id, stored.video.key)
            except Abandoned:
                log.warning("redaction %s was marked failed while running; nothing referenced", redaction_id)
            except Exception as exc:
                session.rollback()
                log.error("redaction %s failed: %s", redaction_id, exc)
                detail = exc.detail if isinstance(exc, Problem) else f"{exc}"
                mark_failed(session, redaction_id, f"{type(exc).__name__}: {detail}")

    def _redact(self, session: Session, redaction_id: uuid.UUID) -> StoredRedaction | None:
        row = session.get(RedactionRow, redaction_id)
        if row is None or row.status != REDACTION_PENDING:
            return None
        row.started_at = datetime.now(UTC)
        session.commit()
        evidence = holds.load_evidence(session, row.evidence_id)
        sources = self._read_sources(session, evidence, row)
        clip = load_master(sources.master, sources.manifest, sources.signature, self._signing_key(sources))
        boxes, boxes_at = self._incident_boxes(session, evidence)
        built = build_redaction(
            clip,
            RedactionRequest.model_validate(row.request),
            self.signer,
            actor=row.requested_by,
            role=ActorRole(row.role),
            reason=row.reason,
            detector_settings=self.settings.detector,
            incident_boxes=boxes,
            boxes_at=boxes_at,
            redaction_id=row.redaction_id,
        )
        s3 = self.settings.s3.model_copy(update={"evidence_bucket": evidence.bucket})
        manifest = _artifact(evidence, ArtifactKind.MANIFEST)
        prefix = manifest.key.rsplit("/", 1)[0]
        stored = store_redaction(
            EvidenceStore(self.store, s3), prefix, built, retain_until=evidence.retain_until
        )
        self._finish(session, row, evidence, stored, built.document)
        return stored

    def _read_sources(self, session: Session, evidence: EvidenceRow, row: RedactionRow) -> _Sources:
        data: dict[ArtifactKind, bytes] = {}
        actor = Actor(row.requested_by, ActorRole(row.role))
        for kind in (ArtifactKind.MASTER, ArtifactKind.MANIFEST, ArtifactKind.SIGNATURE):
            artifact = _artifact(evidence, kind)
            obj = ObjectRef(kind.value, evidence.bucket, artifact.key, artifact.version_id, artifact.sha256)
            try:
                verified = fetch_verified(self.store, obj.bucket, obj.key, obj.version_id, obj.sha256)
            except (IntegrityFailure, StoreUnavailable) as exc:
                failure = isinstance(exc, IntegrityFailure)
                details: dict[str, Any] = {
                    "purpose": "redaction",
                    "redaction_id": str(row.redaction_id),
                    "artifact_kind": kind.value,
                    "expected_sha256": artifact.sha256,
                    "result": ACCESS_INTEGRITY_FAILURE if failure else ACCESS_STORE_ERROR,
                    "error": str(exc),
                }
                record_each(
                    session,
                    [evidence.evidence_id],
                    CustodyAction.DOWNLOAD_REFUSED,
                    actor,
                    reason=row.reason,
                    obj=obj,
                    details=details,
                )
                raise
            with verified.file:
                verified.file.seek(0)
                data[kind] = verified.file.read()
        return _Sources(data[ArtifactKind.MASTER], data[ArtifactKind.MANIFEST], data[ArtifactKind.SIGNATURE])

    def _signing_key(self, sources: _Sources) -> str:
        """The published key (current or retired) whose signature the manifest carries."""
        for key in published_keys(self.signer, self.settings):
            if verify_manifest(sources.manifest, sources.signature, key.public_key):
                return key.public_key
        raise Problem(409, "Manifest signature", "the manifest's signature verifies with no published key")

    @staticmethod
    def _incident_boxes(session: Session, evidence: EvidenceRow) -> tuple[list[Box], datetime | None]:
        """The subjects: the boxes of the incident's OPENED event, at that event's time."""
        opened = session.scalar(
            select(IncidentEventRow)
            .where(
                IncidentEventRow.incident_id == evidence.incident_id,
                IncidentEventRow.event == IncidentEvent.OPENED.value,
            )
            .order_by(IncidentEventRow.event_at)
            .limit(1)
        )
        if opened is None:
            return [], None
        return [Box.model_validate(b) for b in opened.boxes], opened.event_at

    @staticmethod
    def _finish(
        session: Session,
        row: RedactionRow,
        evidence: EvidenceRow,
        stored: StoredRedaction,
        document: dict[str, Any],
    ) -> None:
        """Row done with its objects and ``redacted`` on the chain, together or not at all."""
        redaction_id, evidence_id = row.redaction_id, evidence.evidence_id
        actor, reason = Actor(row.requested_by, ActorRole(row.role)), row.reason
        finished = datetime.now(UTC)
        columns: dict[str, Any] = {
            "status": REDACTION_DONE,
            "finished_at": finished,
            "video_size": stored.video.size,
        }
        for name, obj in (
            ("video", stored.video),
            ("record", stored.record),
            ("signature", stored.signature),
        ):
            columns |= {
                f"{name}_key": obj.key,
                f"{name}_version": obj.version_id,
                f"{name}_sha256": obj.sha256,
            }
        details = {
            "redaction_id": str(redaction_id),
            "mode": document["mode"],
            "video": _object(stored.video),
            "signature": _object(stored.signature),
            "master_sha256": document["master_sha256"],
            "manifest_sha256": document["manifest_sha256"],
        }
        record = stored.record

        def work(s: Session) -> None:
            changed = s.execute(
                update(RedactionRow)
                .where(RedactionRow.redaction_id == redaction_id, RedactionRow.status == REDACTION_PENDING)
                .values(**columns)
            )
            if not getattr(changed, "rowcount", 0):
                raise Abandoned(str(redaction_id))
            custody.append(
                s,
                evidence_id,
                CustodyAction.REDACTED,
                actor,
                at=finished,
                reason=reason,
                object_key=record.key,
                object_version=record.version_id,
                object_sha256=record.sha256,
                details=details,
            )

        try:
            custody.commit_with_retry(session, work)
        except Abandoned:
            session.rollback()
            raise


def _object(obj: StoredArtifact) -> dict[str, Any]:
    return {"key": obj.key, "version_id": obj.version_id, "sha256": obj.sha256, "size": obj.size}


def _artifact(evidence: EvidenceRow, kind: ArtifactKind) -> Any:
    artifact = next((a for a in evidence.artifacts if a.kind == kind.value), None)
    if artifact is None:
        raise Problem(
            409, "Evidence incomplete", f"evidence {evidence.evidence_id} has no {kind.value} artifact"
        )
    return artifact
