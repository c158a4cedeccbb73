"""Request and response models of the legal side: cases, exports, share links, disclosures, redactions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from api.models import CASE_REFERENCE_PATTERN
from api.schemas import In, LegalHoldIn, LegalHoldOut, Out, Reason
from evidence_store.bundle import Contents
from evidence_store.redact import RedactionRequest

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


class CaseIncidentIn(In):
    incident_id: uuid.UUID
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


class CaseSummaryOut(BaseModel):
    case_id: uuid.UUID
    reference: str
    title: str
    created_at: datetime
    created_by: str
    legal_hold: bool
    item_count: int
    incident_count: int = Field(description="distinct incidents the exhibits come from")
    export_count: int = Field(description="export bundles made of the whole case")
    note_count: int


class CaseOut(CaseSummaryOut):
    items: list[CaseItemOut]
    incident_ids: list[uuid.UUID] = Field(description="the exhibits' incidents, in exhibit order")
    export_ids: list[uuid.UUID] = Field(description="exports of the case, newest first")


class CaseNoteIn(In):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10000)]


class CaseNoteOut(Out):
    id: int
    at: datetime
    actor: str
    role: str
    text: str


# In the order same-instant events happen (the timeline sorts ties by it): the alert comes before the
# case exists, and so on.
TimelineKind = Literal[
    "incident_alert",
    "case_created",
    "exhibit_added",
    "hold_placed",
    "hold_released",
    "exported",
    "shared",
    "share_revoked",
    "note",
]


class TimelineEventOut(BaseModel):
    at: datetime
    kind: TimelineKind
    label: str = Field(description="one line for a person to read")
    actor: str | None = Field(default=None, description="who did it; None for what a camera saw")
    ref: str | None = Field(
        default=None,
        description="the exhibit reference(s) it concerns, comma-separated (case_created: the case's)",
    )
    evidence_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None
    camera_id: str | None = None
    export_id: uuid.UUID | None = None
    share_id: uuid.UUID | None = None
    note_id: int | None = None


class CaseHoldOut(BaseModel):
    case: CaseOut
    items: list[LegalHoldOut]


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
