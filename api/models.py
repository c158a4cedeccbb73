"""The ORM: what the API persists from the pipeline's topics.

Design notes:
- every time is UTC-aware (:class:`api.db.UtcDateTime`);
- ``incident_events`` is unique on (incident, event, event_at) and ``evidence``
  is keyed by its evidence id, so a redelivered Kafka message inserts nothing;
- ``custody_entries`` is the custody log: one append-only hash chain per
  evidence item (see :mod:`evidence_store.custody`), ``UNIQUE(evidence_id, seq)``
  so two writers can never both append entry n; the row converts to and from
  :class:`~evidence_store.custody.CustodyEntry` exactly (``at`` is stored with
  microseconds and rendered back with the same ``utc_iso`` text that was hashed);
- the old ``evidence_access`` table was folded into the chains by migration 0002
  and dropped (why: see that migration).
- ``exports``, ``shares`` and ``redactions`` (migration 0003) index what was
  disclosed and derived; the objects themselves are in the WORM bucket and every
  event is also on the items' custody chains. ``shares`` stores only the SHA-256
  of a link's token, never the token.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from api.db import UtcDateTime
from evidence_store.bundle import Contents

INCIDENT_OPEN = "open"
INCIDENT_CLOSED = "closed"
# Evidence overtook its incident's lifecycle messages (different topics): a stub row
# keeps the foreign key valid until the first lifecycle message fills it in.
INCIDENT_PENDING = "pending"

ACCESS_OK = "ok"
ACCESS_INTEGRITY_FAILURE = "integrity_failure"
ACCESS_STORE_ERROR = "store_error"

# Alert review states of an incident (see api.review for the allowed transitions).
REVIEW_NEW = "new"
REVIEW_STATUSES = ("new", "acknowledged", "escalated", "dismissed", "resolved")

CASE_REFERENCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


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
    # Vandalism rules: what changed, and the frame from before it (the snapshot above is the "after").
    change_region: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    before_snapshot: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    has_before_snapshot: Mapped[bool] = mapped_column(default=False)
    detector: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_event: Mapped[str | None] = mapped_column(String(16))
    last_event_at: Mapped[datetime | None]
    # When the API first persisted a lifecycle message: alert latency = this - threshold_at.
    first_received_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(index=True)
    # Alert review (migration 0006): operators' triage state, who has it, and a counter bumped on
    # every change so the live feed can push each change exactly once.
    review_status: Mapped[str] = mapped_column(String(16), default=REVIEW_NEW, index=True)
    assignee: Mapped[str | None] = mapped_column(String(200))
    revision: Mapped[int] = mapped_column(default=0)

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
    # The item's OWN legal hold (PUT /evidence/{id}/legal-hold). A case hold is kept on the case:
    # the store's hold on a version is on while this or any held case containing the item says so.
    legal_hold: Mapped[bool] = mapped_column(default=False, server_default=false())

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


class CustodyEntryRow(Base):
    """One link of an evidence item's custody chain (append-only; never updated or deleted)."""

    __tablename__ = "custody_entries"
    __table_args__ = (UniqueConstraint("evidence_id", "seq", name="uq_custody_entries_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evidence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evidence.evidence_id"))
    seq: Mapped[int]
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    object_key: Mapped[str | None] = mapped_column(String(1024))
    object_version: Mapped[str | None] = mapped_column(String(255))
    object_sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class CustodyCheckpointRow(Base):
    """A signed checkpoint this API wrote to the WORM bucket (the bucket, not this row, is the proof)."""

    __tablename__ = "custody_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    object_key: Mapped[str] = mapped_column(String(1024))
    version_id: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    signature_key: Mapped[str] = mapped_column(String(1024))
    signature_version_id: Mapped[str | None] = mapped_column(String(255))
    item_count: Mapped[int]


class CaseRow(Base):
    """A legal case grouping evidence items as exhibits; its hold covers every item."""

    __tablename__ = "cases"
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    legal_hold: Mapped[bool] = mapped_column(default=False)

    items: Mapped[list[CaseItemRow]] = relationship(back_populates="case", order_by="CaseItemRow.number")


class CaseItemRow(Base):
    """An evidence item in a case, with its exhibit reference ``<case reference>/<number:03d>``."""

    __tablename__ = "case_items"
    __table_args__ = (
        UniqueConstraint("case_id", "exhibit_ref", name="uq_case_items_exhibit_ref"),
        UniqueConstraint("case_id", "number", name="uq_case_items_number"),
        UniqueConstraint("case_id", "evidence_id", name="uq_case_items_evidence"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.case_id"))
    evidence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evidence.evidence_id"), index=True)
    number: Mapped[int]
    exhibit_ref: Mapped[str] = mapped_column(String(100))
    added_at: Mapped[datetime]
    added_by: Mapped[str] = mapped_column(String(200))

    case: Mapped[CaseRow] = relationship(back_populates="items")
    evidence: Mapped[EvidenceRow] = relationship()


# --------------------------------------------------------------------------- disclosure


REDACTION_PENDING = "pending"
REDACTION_DONE = "done"
REDACTION_FAILED = "failed"


class ExportRow(Base):
    """A court export bundle stored in the WORM bucket (the bucket's object, not this row, is the proof)."""

    __tablename__ = "exports"
    export_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    recipient: Mapped[str | None] = mapped_column(String(200))
    organisation: Mapped[str | None] = mapped_column(String(300))
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.case_id"))
    case_reference: Mapped[str | None] = mapped_column(String(64))
    # "full", or "redacted": redacted copies only, master and working copy withheld (migration 0004).
    contents: Mapped[Contents] = mapped_column(String(16), default="full", server_default="full")
    # [{"evidence_id": ..., "exhibit_ref": ..., "redaction_ids": [...]}] in bundle order.
    items: Mapped[list[Any]]
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    version_id: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)

    @property
    def evidence_ids(self) -> list[str]:
        return [str(item["evidence_id"]) for item in self.items]

    @property
    def exhibit_refs(self) -> list[str]:
        return [str(item["exhibit_ref"]) for item in self.items]


class ShareRow(Base):
    """An expiring, revocable link to one export for an external recipient.

    Only the SHA-256 of the link's token is stored: the token itself is shown once
    when the share is made, so nobody reading the database can use a link.
    """

    __tablename__ = "shares"
    share_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    export_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("exports.export_id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    recipient: Mapped[str] = mapped_column(String(200))
    organisation: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    created_by: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    use_count: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[datetime | None]

    export: Mapped[ExportRow] = relationship()


class RedactionRow(Base):
    """A redaction job and, once done, the three locked objects it stored (video, record, signature)."""

    __tablename__ = "redactions"
    redaction_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    evidence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("evidence.evidence_id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]]
    requested_by: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Set together, only when the job is done (never for a failed job).
    video_key: Mapped[str | None] = mapped_column(String(1024))
    video_version: Mapped[str | None] = mapped_column(String(255))
    video_sha256: Mapped[str | None] = mapped_column(String(64))
    video_size: Mapped[int | None] = mapped_column(BigInteger)
    record_key: Mapped[str | None] = mapped_column(String(1024))
    record_version: Mapped[str | None] = mapped_column(String(255))
    record_sha256: Mapped[str | None] = mapped_column(String(64))
    signature_key: Mapped[str | None] = mapped_column(String(1024))
    signature_version: Mapped[str | None] = mapped_column(String(255))
    signature_sha256: Mapped[str | None] = mapped_column(String(64))


class IncidentActionRow(Base):
    """The append-only review timeline of an incident: acknowledge, escalate, dismiss, note, assign."""

    __tablename__ = "incident_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.incident_id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)  # the note, or the reason of a dismissal
    assignee: Mapped[str | None] = mapped_column(String(200))


class CaseNoteRow(Base):
    """A note on a case (append-only)."""

    __tablename__ = "case_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.case_id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)


class CameraConfigRow(Base):
    """One version of a camera's zones and rule settings; versions are added, never changed."""

    __tablename__ = "camera_configs"
    __table_args__ = (UniqueConstraint("camera_id", "version", name="uq_camera_configs_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)


class UserRow(Base):
    """A person who logs in: an argon2id hash, never the password; ``cameras`` None means all."""

    __tablename__ = "users"
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    cameras: Mapped[list[Any] | None] = mapped_column(JSON)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class AuthSessionRow(Base):
    """A login: the SHA-256 of its current bearer token, refreshed until ``ends_at`` at the latest."""

    __tablename__ = "auth_sessions"
    session_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.user_id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    client: Mapped[str | None] = mapped_column(String(200))


class ApiKeyRow(Base):
    """A service's key: only its SHA-256 and a display prefix are kept."""

    __tablename__ = "api_keys"
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    cameras: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class AuthEventRow(Base):
    """The auth log: logins, failures, lockouts, account and key changes."""

    __tablename__ = "auth_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(200))
    actor: Mapped[str | None] = mapped_column(String(200))
    client: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
