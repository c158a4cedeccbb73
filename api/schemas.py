"""Response models, one group per resource: what the API promises, independent of the table layout."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from cctv.contracts import Box, DetectorInfo, FrameSpan
from evidence_store.custody import CustodyEntry

IncidentStatus = Literal["open", "closed", "pending"]
Rule = Literal["loitering", "group_loitering", "tamper", "area_change", "object_removed", "classifier"]
# as api.models.REVIEW_STATUSES
ReviewStatus = Literal["new", "acknowledged", "escalated", "dismissed", "resolved"]


# The deepest page a list may ask for: beyond it a database's integer offset overflows (a 500 otherwise).
MAX_OFFSET = 1_000_000_000


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
    Field(description="why: recorded in the custody log"),
]


# --------------------------------------------------------------------------- incidents


class IncidentOut(Out):
    incident_id: uuid.UUID
    camera_id: str
    rule: str = Field(description="rule that fired; empty while the incident is pending")
    zone_id: str | None
    status: IncidentStatus = Field(
        description="open, closed, or pending (evidence arrived before the lifecycle messages)"
    )
    started_at: datetime
    threshold_at: datetime = Field(description="when the rule's threshold was crossed (the alert time)")
    ended_at: datetime | None
    dwell_s: float | None
    summary: str
    track_ids: list[int]
    boxes: list[Box]
    frames: FrameSpan | None
    detector: DetectorInfo | None
    has_snapshot: bool
    change_region: Box | None = Field(
        default=None, description="vandalism rules: the pixel rectangle that changed"
    )
    has_before_snapshot: bool = Field(
        default=False, description="vandalism rules: a 'before' snapshot exists (snapshot?view=before)"
    )
    last_event: str | None
    last_event_at: datetime | None
    first_received_at: datetime | None = Field(description="when the API first persisted this incident")
    alert_latency_s: float | None = Field(description="first_received_at - threshold_at")
    updated_at: datetime
    review_status: ReviewStatus = Field(description="alert triage state (api.review has the transitions)")
    assignee: str | None = Field(description="username of the reviewer the alert is assigned to")
    revision: int = Field(description="bumped on every change (lifecycle message or review action)")
    camera_name: str | None = Field(default=None, description="the camera's name in the registry")
    camera_location: str | None = Field(default=None, description="the camera's location")


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    total: int = Field(description="matching incidents, ignoring limit and offset")
    limit: int
    offset: int


class IncidentEventOut(Out):
    event: str
    event_at: datetime
    summary: str
    dwell_s: float | None
    track_ids: list[int]
    boxes: list[Box]
    frames: FrameSpan | None
    received_at: datetime
    source_partition: int | None
    source_offset: int | None


# --------------------------------------------------------------------------- evidence


class ArtifactOut(Out):
    kind: str
    key: str
    version_id: str | None
    sha256: str
    size: int
    content_type: str
    download_path: str | None = Field(default=None, description="API path that serves this artifact, if any")


class EvidenceOut(Out):
    evidence_id: uuid.UUID
    incident_id: uuid.UUID
    camera_id: str
    bucket: str
    manifest_sha256: str
    frame_count: int
    first_capture_ts: datetime | None
    last_capture_ts: datetime | None
    sealed_at: datetime
    retain_until: datetime
    signing_key_id: str
    received_at: datetime
    legal_hold: bool = Field(description="the item's own legal hold (a case hold is shown on the case)")
    artifacts: list[ArtifactOut]


# --------------------------------------------------------------------------- custody


class ChainVerificationOut(BaseModel):
    ok: bool
    problems: list[str] = Field(description="each broken link or altered entry, by sequence number")


class CustodyLogOut(BaseModel):
    evidence_id: uuid.UUID
    entries: list[CustodyEntry] = Field(description="the hash chain, oldest first, exactly as hashed")
    verification: ChainVerificationOut


class LegalHoldIn(In):
    on: bool = Field(description="true places the hold, false releases it")
    reason: Reason


class RetentionIn(In):
    retain_until: AwareDatetime = Field(description="new end of COMPLIANCE retention (later, never earlier)")
    reason: Reason


class LockStatusOut(BaseModel):
    kind: str
    key: str
    version_id: str
    mode: str | None
    retain_until: datetime | None
    legal_hold: bool


class LegalHoldOut(BaseModel):
    evidence_id: uuid.UUID
    legal_hold: bool = Field(description="the item's own hold")
    held_by_cases: list[str] = Field(description="references of held cases containing the item")
    store_legal_hold: bool = Field(description="whether the store now holds every artifact version")
    artifacts: list[LockStatusOut]
    entry: CustodyEntry


class RetentionOut(BaseModel):
    evidence_id: uuid.UUID
    previous_retain_until: datetime
    retain_until: datetime
    artifacts: list[LockStatusOut]
    entry: CustodyEntry


class CheckpointOut(BaseModel):
    key: str
    version_id: str | None
    sha256: str
    at: str | None
    items: int
    signature_ok: bool
    key_id: str | None
    problems: list[str]


class CustodyVerifyOut(BaseModel):
    ok: bool = Field(description="every chain intact and consistent with the newest signed checkpoints")
    chains_checked: int
    entries_checked: int
    checkpoints: list[CheckpointOut] = Field(description="checkpoints read back from the WORM bucket")
    problems: list[str]
    warnings: list[str]


class CheckpointWrittenOut(Out):
    object_key: str
    version_id: str | None
    sha256: str
    at: datetime
    item_count: int


class CustodyLogEntryOut(CustodyEntry):
    """One entry of the custody log view: the chain entry exactly as hashed, plus where it sits."""

    id: int = Field(description="the row's id: a stable order for entries of the same instant")
    exhibit_ref: str | None = Field(
        default=None, description="the item's exhibit reference in the case filtered on (case_id only)"
    )


class CustodyLogPage(BaseModel):
    items: list[CustodyLogEntryOut]
    total: int = Field(description="matching entries, ignoring limit and offset")
    limit: int
    offset: int


# --------------------------------------------------------------------------- keys


class PublicKeyOut(BaseModel):
    key_id: str = Field(description="first 16 hex characters of SHA-256 over the raw public key")
    algorithm: str
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64")


class KeysOut(BaseModel):
    current: PublicKeyOut = Field(description="signs new manifests and custody checkpoints")
    retired: list[PublicKeyOut] = Field(description="no longer signs, still verifies older items")


# --------------------------------------------------------------------------- cameras


class CameraHealthOut(BaseModel):
    state: str
    stale: bool = Field(description="no heartbeat for more than 3 heartbeat periods")
    at: datetime = Field(description="time of the newest heartbeat")
    fps: float
    last_frame_at: datetime | None
    frames_sent: int
    frames_dropped: int
    reconnects: int
    error: str | None
    worker: str


class CameraOut(BaseModel):
    id: str
    name: str
    location: str
    source_scheme: str = Field(description="scheme of the source only; URLs may carry credentials")
    fps: float = Field(description="configured analytics sampling rate")
    enabled: bool
    zones: list[dict[str, Any]] = Field(description="zones in force: the newest settings version's")
    health: CameraHealthOut | None = Field(description="None until the first heartbeat arrives")
    settings_version: int = Field(description="settings version in force; 0: the registry file's")
    lag_s: float | None = Field(description="seconds since the newest frame ingest reported; None: unknown")
    online: bool = Field(description="streaming: the newest heartbeat says online and is not stale")


# --------------------------------------------------------------------------- health


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"


class CheckOut(BaseModel):
    ok: bool
    detail: str
    duration_ms: float


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, CheckOut]
