"""Response models, one group per resource: what the API promises, independent of the table layout."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from api.models import CASE_REFERENCE_PATTERN
from cctv.contracts import Box, DetectorInfo, FrameSpan
from evidence_store.bundle import Contents
from evidence_store.custody import CustodyEntry
from evidence_store.redact import RedactionRequest

IncidentStatus = Literal["open", "closed", "pending"]
Rule = Literal["loitering", "group_loitering", "tamper", "area_change", "object_removed", "classifier"]


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


# --------------------------------------------------------------------------- cases


class CaseIn(In):
    reference: str = Field(
        pattern=CASE_REFERENCE_PATTERN, description="unique case reference, e.g. ASB-2025-014"
    )
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class CaseItemIn(In):
    evidence_id: uuid.UUID
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


class CaseHoldIn(LegalHoldIn):
    pass


class CaseItemOut(BaseModel):
    evidence_id: uuid.UUID
    number: int
    exhibit_ref: str = Field(description="<case reference>/<number, 3 digits>: the exhibit's label in court")
    added_at: datetime
    added_by: str
    incident_id: uuid.UUID
    camera_id: str
    sealed_at: datetime


class CaseSummaryOut(BaseModel):
    case_id: uuid.UUID
    reference: str
    title: str
    created_at: datetime
    created_by: str
    legal_hold: bool
    item_count: int


class CaseOut(CaseSummaryOut):
    items: list[CaseItemOut]


class CaseHoldOut(BaseModel):
    case: CaseOut
    items: list[LegalHoldOut]


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
    zones: list[dict[str, Any]]
    health: CameraHealthOut | None = Field(description="None until the first heartbeat arrives")


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


# --------------------------------------------------------------------------- exports

ExportContents = Contents  # "full" | "redacted" (evidence_store.bundle)
Recipient = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Organisation = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class ExportIn(In):
    evidence_ids: list[uuid.UUID] | None = Field(
        default=None, min_length=1, max_length=100, description="the items to export (or case_id)"
    )
    case_id: uuid.UUID | None = Field(default=None, description="export every exhibit of this case")
    reason: Reason
    recipient: Recipient | None = Field(default=None, description="who the bundle is for")
    organisation: Organisation | None = None
    contents: ExportContents = Field(
        default="full",
        description="full: master, working copy and any redactions; redacted: a disclosure to a third "
        "party (ICO CCTV guidance) with the redacted copies only, master and working copy withheld",
    )
    redaction_ids: list[uuid.UUID] | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="redacted exports only: the done redactions to disclose; an item none of them "
        "belongs to gets its newest done redaction",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ExportIn:
        if (self.evidence_ids is None) == (self.case_id is None):
            raise ValueError("give exactly one of evidence_ids or case_id")
        return self

    @model_validator(mode="after")
    def _redactions_chosen_for_redacted_only(self) -> ExportIn:
        # A full export carries every done redaction: choosing some there would silently drop others.
        if self.redaction_ids is not None and self.contents != "redacted":
            raise ValueError("redaction_ids are for contents 'redacted' only")
        return self


class ExportItemOut(BaseModel):
    evidence_id: uuid.UUID
    exhibit_ref: str
    redaction_ids: list[uuid.UUID] = Field(
        default_factory=list, description="the redactions in the bundle for this item"
    )


class ExportOut(Out):
    export_id: uuid.UUID
    created_at: datetime
    actor: str
    role: str
    reason: str
    recipient: str | None
    organisation: str | None
    case_id: uuid.UUID | None
    case_reference: str | None
    contents: ExportContents = Field(description="full, or redacted (master and working copy withheld)")
    items: list[ExportItemOut] = Field(description="the exhibits in bundle order")
    bucket: str
    key: str = Field(description="the bundle's key in the WORM bucket")
    version_id: str | None
    sha256: str = Field(description="SHA-256 of the stored bundle (what a recipient receives)")
    size: int
    download_path: str


class ExportPage(BaseModel):
    items: list[ExportOut]
    total: int
    limit: int
    offset: int


# --------------------------------------------------------------------------- shares

ShareStatus = Literal["active", "expired", "revoked"]


class ShareIn(In):
    export_id: uuid.UUID
    recipient: Recipient
    organisation: Organisation
    reason: Reason
    expires_in_hours: float = Field(gt=0, description="lifetime of the link (at most api.share_max_hours)")


class RevokeIn(In):
    reason: Reason


class ShareOut(Out):
    share_id: uuid.UUID
    export_id: uuid.UUID
    recipient: str
    organisation: str
    reason: str
    created_at: datetime
    created_by: str
    role: str
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None
    uses: int = Field(description="successful downloads through the link")
    last_used_at: datetime | None
    status: ShareStatus


class ShareCreatedOut(BaseModel):
    share: ShareOut
    token: str = Field(description="shown ONCE: only its SHA-256 is stored")
    url_path: str = Field(description="the link to send (append to the API's public base URL)")


# --------------------------------------------------------------------------- disclosures


class DisclosureOut(BaseModel):
    date: datetime
    kind: Literal["share", "export"]
    contents: ExportContents = Field(description="what was disclosed: full footage, or redacted copies only")
    recipient: str | None
    organisation: str | None
    reason: str
    shared_by: str
    role: str
    exhibit_refs: list[str]
    evidence_ids: list[str]
    export_id: uuid.UUID
    share_id: uuid.UUID | None
    expires_at: datetime | None
    revoked_at: datetime | None
    uses: int | None


# --------------------------------------------------------------------------- redactions

RedactionStatus = Literal["pending", "done", "failed"]


class RedactionIn(In):
    request: RedactionRequest
    reason: Reason


class StoredObjectOut(BaseModel):
    key: str
    version_id: str | None
    sha256: str
    size: int | None = None


class RedactionOut(BaseModel):
    redaction_id: uuid.UUID
    evidence_id: uuid.UUID
    status: RedactionStatus
    error: str | None
    mode: str
    request: dict[str, Any]
    requested_by: str
    role: str
    reason: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    video: StoredObjectOut | None = Field(description="the redacted MP4 (status done only)")
    record: StoredObjectOut | None = Field(description="the signed redaction record")
    signature: StoredObjectOut | None
    video_path: str | None = Field(description="API path of the video download (reason required)")
