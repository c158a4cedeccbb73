"""The ORM: what the API persists from the pipeline's topics.

Design notes:
- every time is UTC-aware (:class:`api.db.UtcDateTime`);
- ``incident_events`` is unique on (incident, event, event_at) and ``evidence``
  is keyed by its evidence id, so a redelivered Kafka message inserts nothing;
- ``evidence_access`` is append-only with a monotonically increasing id: the
  custody log turns it into a hash chain by adding the previous entry's hash
  and the entry's own hash over exactly these columns, in id order.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from api.db import UtcDateTime

INCIDENT_OPEN = "open"
INCIDENT_CLOSED = "closed"
# Evidence overtook its incident's lifecycle messages (different topics): a stub row
# keeps the foreign key valid until the first lifecycle message fills it in.
INCIDENT_PENDING = "pending"

ACCESS_OK = "ok"
ACCESS_INTEGRITY_FAILURE = "integrity_failure"
ACCESS_STORE_ERROR = "store_error"


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class CameraRow(Base):
    """A camera of the registry, upserted at start-up; only the source's scheme, never its URL."""

    __tablename__ = "cameras"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(500), default="")
    source_scheme: Mapped[str] = mapped_column(String(16))
    fps: Mapped[float]
    enabled: Mapped[bool]
    in_registry: Mapped[bool] = mapped_column(default=True)
    zones: Mapped[list[Any]]
    updated_at: Mapped[datetime]


class CameraStatusRow(Base):
    """The newest heartbeat of each camera (older or repeated heartbeats change nothing)."""

    __tablename__ = "camera_status"
    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    fps: Mapped[float]
    last_frame_at: Mapped[datetime | None]
    frames_sent: Mapped[int]
    frames_dropped: Mapped[int]
    reconnects: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime]


class IncidentRow(Base):
    __tablename__ = "incidents"
    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    rule: Mapped[str] = mapped_column(String(32), index=True)
    zone_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime]
    threshold_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    dwell_s: Mapped[float | None]
    summary: Mapped[str] = mapped_column(Text)
    track_ids: Mapped[list[Any]]
    boxes: Mapped[list[Any]]
    frames: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    snapshot: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    has_snapshot: Mapped[bool] = mapped_column(default=False)
    detector: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_event: Mapped[str | None] = mapped_column(String(16))
    last_event_at: Mapped[datetime | None]
    # When the API first persisted a lifecycle message: alert latency = this - threshold_at.
    first_received_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    @property
    def alert_latency_s(self) -> float | None:
        """Seconds from the rule's threshold to the API persisting the incident (None for a stub)."""
        if self.first_received_at is None or self.last_event is None:
            return None
        return (self.first_received_at - self.threshold_at).total_seconds()

    events: Mapped[list[IncidentEventRow]] = relationship(
        back_populates="incident", order_by="IncidentEventRow.event_at", cascade="all, delete-orphan"
    )
    evidence: Mapped[list[EvidenceRow]] = relationship(back_populates="incident")


class IncidentEventRow(Base):
    __tablename__ = "incident_events"
    __table_args__ = (UniqueConstraint("incident_id", "event", "event_at", name="uq_incident_events_event"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.incident_id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(16))
    event_at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(Text)
    dwell_s: Mapped[float | None]
    track_ids: Mapped[list[Any]]
    boxes: Mapped[list[Any]]
    frames: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime]
    source_partition: Mapped[int | None]
    source_offset: Mapped[int | None] = mapped_column(BigInteger)

    incident: Mapped[IncidentRow] = relationship(back_populates="events")


class EvidenceRow(Base):
    __tablename__ = "evidence"
    evidence_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.incident_id"), index=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    bucket: Mapped[str] = mapped_column(String(255))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    frame_count: Mapped[int]
    first_capture_ts: Mapped[datetime | None]
    last_capture_ts: Mapped[datetime | None]
    sealed_at: Mapped[datetime]
    retain_until: Mapped[datetime]
    signing_key_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[datetime]

    incident: Mapped[IncidentRow] = relationship(back_populates="evidence")
    artifacts: Mapped[list[EvidenceArtifactRow]] = relationship(
        back_populates="evidence", order_by="EvidenceArtifactRow.kind", cascade="all, delete-orphan"
    )


class EvidenceArtifactRow(Base):
    __tablename__ = "evidence_artifacts"
    __table_args__ = (UniqueConstraint("evidence_id", "kind", name="uq_evidence_artifacts_kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evidence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evidence.evidence_id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(1024))
    version_id: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(255))

    evidence: Mapped[EvidenceRow] = relationship(back_populates="artifacts")


class EvidenceAccessRow(Base):
    """One access to an evidence artifact (append-only; never updated or deleted)."""

    __tablename__ = "evidence_access"
    __table_args__ = (Index("ix_evidence_access_evidence_at", "evidence_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evidence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evidence.evidence_id"))
    artifact_kind: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    client_address: Mapped[str | None] = mapped_column(String(255))
    user_agent: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    expected_sha256: Mapped[str] = mapped_column(String(64))
    # What the store returned, and what was sent: the bytes go out only when the two hashes agree.
    sha256_read: Mapped[str | None] = mapped_column(String(64))
    sha256_served: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(32))
