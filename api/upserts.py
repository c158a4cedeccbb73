"""Idempotent upserts of the pipeline's messages into the database.

Every function is safe to call again with the same message (Kafka delivers at
least once) and tolerates messages arriving out of order across topics: an
older lifecycle event never overwrites a newer one, a heartbeat older than the
stored one is ignored, and evidence that overtakes its incident gets a pending
stub incident that the first lifecycle message fills in.

New evidence starts its custody chain here, in the same transaction as the
evidence row: ``sealed`` (by the evidence worker, at the manifest's seal time)
then ``created`` (the API received it). A redelivery adds nothing.

Every change of an incident row bumps its ``revision`` (the live alert feed
pushes each revision once): a new row starts at 1 and later changes add 1 in SQL
(``revision = revision + 1``), so a review action committed concurrently by
another replica is never overwritten. A redelivered lifecycle message returns
before touching the row, so it bumps nothing; a stale (older) one still records
its event and the row's ``updated_at``, and so bumps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from api import custody
from api.custody import EVIDENCE_WORKER, PERSISTER
from api.models import (
    INCIDENT_CLOSED,
    INCIDENT_OPEN,
    INCIDENT_PENDING,
    CameraRow,
    CameraStatusRow,
    EvidenceArtifactRow,
    EvidenceRow,
    IncidentEventRow,
    IncidentRow,
)
from cctv.config import Camera, CameraRegistry
from cctv.contracts import ArtifactKind, CameraStatus, EvidenceSealed, IncidentEvent, IncidentMessage
from evidence_store.custody import CustodyAction

EVENT_RANK = {IncidentEvent.OPENED.value: 0, IncidentEvent.UPDATED.value: 1, IncidentEvent.CLOSED.value: 2}


@dataclass(frozen=True)
class Applied:
    """What one message changed; ``changed`` is False for a redelivery or a stale message."""

    kind: str  # "incident" | "evidence" | "status"
    changed: bool
    rule: str | None = None
    event: str | None = None
    # Set when this message was the incident's first lifecycle message: feeds the latency histogram.
    alert_latency_s: float | None = None


def source_scheme(source: str) -> str:
    """Only the scheme of a camera source is stored: RTSP URLs often carry credentials."""
    if "://" not in source:
        return "file"  # an absolute path
    return urlsplit(source).scheme.lower()


def upsert_cameras(session: Session, registry: CameraRegistry, now: datetime) -> None:
    """Make the cameras table match the registry; cameras that left it are kept (incidents refer to them)."""
    wanted = registry.by_id()
    for camera in registry.cameras:
        row = session.get(CameraRow, camera.id)
        if row is None:
            row = CameraRow(id=camera.id)
            session.add(row)
        _fill_camera(row, camera, now)
    session.execute(
        update(CameraRow)
        .where(CameraRow.id.not_in(list(wanted)), CameraRow.in_registry.is_(True))
        .values(in_registry=False, updated_at=now)
    )


def _fill_camera(row: CameraRow, camera: Camera, now: datetime) -> None:
    row.name, row.location = camera.name, camera.location
    row.source_scheme = source_scheme(camera.source)
    row.fps, row.enabled, row.in_registry = camera.fps, camera.enabled, True
    row.zones = [zone.model_dump(mode="json") for zone in camera.zones]
    row.updated_at = now


def apply_incident(
    session: Session,
    msg: IncidentMessage,
    now: datetime,
    partition: int | None = None,
    offset: int | None = None,
) -> Applied:
    event = msg.event.value
    seen = session.scalar(
        select(IncidentEventRow.id).where(
            IncidentEventRow.incident_id == msg.incident_id,
            IncidentEventRow.event == event,
            IncidentEventRow.event_at == msg.event_at,
        )
    )
    if seen is not None:
        return Applied("incident", changed=False, rule=msg.rule, event=event)
    boxes = [box.model_dump(mode="json") for box in msg.boxes]
    frames = msg.frames.model_dump(mode="json")
    incident = session.get(IncidentRow, msg.incident_id)
    latency: float | None = None
    if incident is None:
        incident = IncidentRow(incident_id=msg.incident_id, has_snapshot=False, has_before_snapshot=False)
        session.add(incident)
    if incident.first_received_at is None:
        incident.first_received_at = now
        latency = (now - msg.threshold_at).total_seconds()
    if _is_newer(msg, incident):
        incident.camera_id, incident.rule, incident.zone_id = msg.camera_id, msg.rule, msg.zone_id
        incident.started_at, incident.threshold_at = msg.started_at, msg.threshold_at
        incident.summary, incident.dwell_s = msg.summary, msg.dwell_s
        incident.track_ids, incident.boxes, incident.frames = list(msg.track_ids), boxes, frames
        incident.detector = msg.detector.model_dump(mode="json")
        if msg.ended_at is not None:
            incident.ended_at = msg.ended_at
        if msg.snapshot_jpeg is not None:
            incident.snapshot, incident.has_snapshot = msg.snapshot_jpeg, True
        if msg.change_region is not None:
            incident.change_region = msg.change_region.model_dump(mode="json")
        if msg.before_snapshot_jpeg is not None:
            incident.before_snapshot, incident.has_before_snapshot = msg.before_snapshot_jpeg, True
        incident.last_event, incident.last_event_at = event, msg.event_at
    # Closed is final: a late "updated" never reopens an incident whose evidence may be sealed.
    if msg.event is IncidentEvent.CLOSED or incident.status == INCIDENT_CLOSED:
        incident.status = INCIDENT_CLOSED
    else:
        incident.status = INCIDENT_OPEN
    incident.updated_at = now
    bump_revision(incident)
    session.add(
        IncidentEventRow(
            incident_id=msg.incident_id,
            event=event,
            event_at=msg.event_at,
            summary=msg.summary,
            dwell_s=msg.dwell_s,
            track_ids=list(msg.track_ids),
            boxes=boxes,
            frames=frames,
            received_at=now,
            source_partition=partition,
            source_offset=offset,
        )
    )
    return Applied("incident", changed=True, rule=msg.rule, event=event, alert_latency_s=latency)


def bump_revision(incident: IncidentRow) -> None:
    """Count one change of the row: in SQL for a stored row (concurrent bumps add up), else from 0."""
    if inspect(incident).persistent:
        incident.revision = IncidentRow.revision + 1
    else:
        incident.revision = (incident.revision or 0) + 1


def _is_newer(msg: IncidentMessage, incident: IncidentRow) -> bool:
    if incident.last_event is None or incident.last_event_at is None:
        return True
    stored = (incident.last_event_at, EVENT_RANK[incident.last_event])
    return (msg.event_at, EVENT_RANK[msg.event.value]) > stored


def apply_evidence(session: Session, msg: EvidenceSealed, now: datetime) -> Applied:
    if session.get(EvidenceRow, msg.evidence_id) is not None:
        return Applied("evidence", changed=False)  # sealed evidence is immutable: redelivery
    if session.get(IncidentRow, msg.incident_id) is None:
        at = msg.first_capture_ts or msg.sealed_at
        session.add(
            IncidentRow(
                incident_id=msg.incident_id,
                camera_id=msg.camera_id,
                rule="",
                status=INCIDENT_PENDING,
                started_at=at,
                threshold_at=at,
                summary="evidence arrived before the incident's lifecycle messages",
                track_ids=[],
                boxes=[],
                updated_at=now,
                revision=1,
            )
        )
    evidence = EvidenceRow(
        evidence_id=msg.evidence_id,
        incident_id=msg.incident_id,
        camera_id=msg.camera_id,
        bucket=msg.bucket,
        manifest_sha256=msg.manifest_sha256,
        frame_count=msg.frame_count,
        first_capture_ts=msg.first_capture_ts,
        last_capture_ts=msg.last_capture_ts,
        sealed_at=msg.sealed_at,
        retain_until=msg.retain_until,
        signing_key_id=msg.signing_key_id,
        received_at=now,
        artifacts=[
            EvidenceArtifactRow(
                kind=a.kind.value,
                key=a.key,
                version_id=a.version_id,
                sha256=a.sha256,
                size=a.size,
                content_type=a.content_type,
            )
            for a in msg.artifacts
        ],
    )
    session.add(evidence)
    session.flush()  # the chain's rows refer to the evidence row
    if custody.head(session, msg.evidence_id) is None:
        _start_chain(session, msg, now)
    return Applied("evidence", changed=True)


def _start_chain(session: Session, msg: EvidenceSealed, now: datetime) -> None:
    manifest = next((a for a in msg.artifacts if a.kind is ArtifactKind.MANIFEST), None)
    custody.append(
        session,
        msg.evidence_id,
        CustodyAction.SEALED,
        EVIDENCE_WORKER,
        at=msg.sealed_at,
        object_key=manifest.key if manifest else None,
        object_version=manifest.version_id if manifest else None,
        object_sha256=msg.manifest_sha256,
        details={
            "artifacts": {
                a.kind.value: {"key": a.key, "version_id": a.version_id, "sha256": a.sha256, "size": a.size}
                for a in msg.artifacts
            },
            "bucket": msg.bucket,
            "signing_key_id": msg.signing_key_id,
            "retain_until": msg.retain_until.isoformat(),
            "frame_count": msg.frame_count,
        },
    )
    custody.append(
        session,
        msg.evidence_id,
        CustodyAction.CREATED,
        PERSISTER,
        at=now,
        details={"incident_id": str(msg.incident_id), "camera_id": msg.camera_id},
    )


def apply_status(session: Session, msg: CameraStatus, now: datetime) -> Applied:
    row = session.get(CameraStatusRow, msg.camera_id)
    if row is not None and msg.at <= row.at:
        return Applied("status", changed=False)  # redelivered or older than what is stored
    if row is None:
        row = CameraStatusRow(camera_id=msg.camera_id)
        session.add(row)
    row.state, row.at, row.fps, row.last_frame_at = msg.state.value, msg.at, msg.fps, msg.last_frame_at
    row.frames_sent, row.frames_dropped, row.reconnects = msg.frames_sent, msg.frames_dropped, msg.reconnects
    row.error, row.worker = msg.error, msg.worker
    row.received_at = now
    return Applied("status", changed=True)
