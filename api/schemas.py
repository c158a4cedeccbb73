"""Response models, one group per resource: what the API promises, independent of the table layout."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cctv.contracts import Box, DetectorInfo, FrameSpan

IncidentStatus = Literal["open", "closed", "pending"]
Rule = Literal["loitering", "group_loitering", "tamper", "area_change", "object_removed"]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


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
    artifacts: list[ArtifactOut]


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
