"""Every Kafka message of the pipeline, one frozen pydantic model per topic.

Why one module: producers and consumers of a topic must agree byte for byte,
and a reviewer (or a court expert) should find the whole wire format in one
place. Each model carries ``schema_version`` so a consumer can refuse, rather
than misread, a message written by a newer producer.

Wire format:
- ``cctv.frames``: the Kafka value is the encoded image exactly as ingested
  (the evidential master bytes, never re-encoded); every other field travels
  as JSON in the ``cctv-meta`` header. The SHA-256 in the header is checked
  against the value on decode.
- every other topic: the value is the model's JSON.
Messages that fail :func:`decode` are sent to ``cctv.dead-letter`` wrapped in
:class:`DeadLetter` with the reason, never dropped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

SCHEMA_VERSION = 1
META_HEADER = "cctv-meta"
SCHEMA_HEADER = "cctv-schema"

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="lower-case hex SHA-256")]
CameraId = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="camera id from the registry"),
]
UtcDatetime = Annotated[
    AwareDatetime,
    PlainSerializer(lambda d: d.isoformat(), return_type=str),
    Field(description="timezone-aware UTC timestamp"),
]


def _b64decode_text(value: object) -> object:
    """JSON carries bytes as base64 text; Python callers pass bytes straight through."""
    return base64.b64decode(value, validate=True) if isinstance(value, str) else value


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_b64decode_text),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"),
]


class ContractError(ValueError):
    """A message that cannot be decoded into its topic's model; the text is the reason."""


class Message(BaseModel):
    """Base of every message: immutable, no unknown fields, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: Literal[1] = Field(default=1, description="wire schema version")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- frames


class FrameMessage(Message):
    """One sampled frame of one camera (topic ``cctv.frames``, key = camera id)."""

    camera_id: CameraId
    stream_id: str = Field(description="uuid of the capture session; seq restarts when it changes")
    seq: int = Field(ge=0, description="frame number within the stream, gap-free unless frames were lost")
    capture_ts: UtcDatetime = Field(description="when the frame was grabbed from the camera (UTC)")
    ingest_ts: UtcDatetime = Field(description="when ingest finished encoding and hashing it (UTC)")
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    encoding: Literal["jpeg"] = "jpeg"
    sha256: Sha256Hex = Field(description="SHA-256 of the encoded bytes, taken at ingest")
    fps: float = Field(gt=0, description="analytics sampling rate of this stream")
    clock_offset_s: float | None = Field(
        default=None, description="camera clock minus ingest clock, when the source reports one"
    )
    image: bytes = Field(repr=False, description="the encoded image, bit-exact as ingested")


# --------------------------------------------------------------------------- incidents


class IncidentEvent(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"


class Box(BaseModel):
    """A detection in pixel coordinates of the ingested frame."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float = Field(ge=0, le=1)
    label: str = "person"
    track_id: int | None = None


class FrameSpan(BaseModel):
    """Where the incident's frames lie in ``cctv.frames``.

    Why offsets and not times: the evidence store must read back exactly the
    frames the detector saw, and offset lookup by timestamp is not reliable on
    every Kafka-protocol broker (Tansu answers offset 0 for any time).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    partition: int = Field(ge=0)
    start_offset: int = Field(ge=0, description="first frame of the pre-roll")
    end_offset: int = Field(ge=0, description="last frame the detector had seen at this event")


class DetectorInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    backend: str = Field(description="registry name of the detector backend, e.g. 'hog' or 'yolo'")
    model_name: str
    weights_sha256: Sha256Hex | None = Field(description="None only for built-in models (OpenCV HOG)")
    thresholds: dict[str, float] = Field(default_factory=dict)


class IncidentMessage(Message):
    """An incident's lifecycle event (topic ``cctv.incidents``, key = camera id)."""

    incident_id: uuid.UUID = Field(description="stable across events and redeliveries")
    event: IncidentEvent
    camera_id: CameraId
    rule: Literal["loitering", "group_loitering", "tamper", "area_change", "object_removed", "classifier"]
    zone_id: str | None = None
    track_ids: tuple[int, ...] = ()
    started_at: UtcDatetime = Field(description="when the subject first entered the zone")
    threshold_at: UtcDatetime = Field(description="when the rule's threshold was crossed")
    event_at: UtcDatetime = Field(description="capture time of the frame that caused this event")
    ended_at: UtcDatetime | None = Field(default=None, description="set on closed")
    dwell_s: float | None = Field(default=None, ge=0)
    summary: str = Field(description="one line an operator can read")
    boxes: tuple[Box, ...] = ()
    frames: FrameSpan
    snapshot_jpeg: Base64Bytes | None = Field(
        default=None, repr=False, description="frame at this event with boxes and zone drawn"
    )
    change_region: Box | None = Field(
        default=None,
        description="vandalism rules: the pixel rectangle that changed (label: what changed)",
    )
    before_snapshot_jpeg: Base64Bytes | None = Field(
        default=None,
        repr=False,
        description="vandalism rules, on opened: the frame from before the change, change region drawn",
    )
    detector: DetectorInfo


def incident_id_for(camera_id: str, rule: str, zone_id: str | None, key: str) -> uuid.UUID:
    """Deterministic id so a replayed detector produces the same incident, not a second one."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"cctv:{camera_id}:{rule}:{zone_id}:{key}")


# --------------------------------------------------------------------------- evidence


class ArtifactKind(StrEnum):
    MASTER = "master"
    WORKING_COPY = "working_copy"
    MANIFEST = "manifest"
    SIGNATURE = "signature"
    TIMESTAMP = "timestamp"  # RFC 3161 token over the manifest's SHA-256
    # Derivatives made later (never part of the sealed item): a redacted MP4 and its signed record.
    REDACTED_COPY = "redacted_copy"
    REDACTION_RECORD = "redaction_record"
    REDACTION_SIGNATURE = "redaction_signature"
    # Signed snapshots of every custody chain head (see evidence_store.custody).
    CUSTODY_CHECKPOINT = "custody_checkpoint"
    CUSTODY_CHECKPOINT_SIGNATURE = "custody_checkpoint_signature"
    # A court export bundle (ZIP) as stored in the WORM bucket (see evidence_store.bundle).
    EXPORT_BUNDLE = "export_bundle"


class StoredArtifact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ArtifactKind
    key: str
    version_id: str | None
    sha256: Sha256Hex
    size: int = Field(ge=0)
    content_type: str


class EvidenceSealed(Message):
    """An evidence item was written, hashed and locked (topic ``cctv.evidence``)."""

    evidence_id: uuid.UUID
    incident_id: uuid.UUID
    camera_id: CameraId
    bucket: str
    artifacts: tuple[StoredArtifact, ...]
    manifest_sha256: Sha256Hex
    frame_count: int = Field(ge=0)
    first_capture_ts: UtcDatetime | None
    last_capture_ts: UtcDatetime | None
    sealed_at: UtcDatetime
    retain_until: UtcDatetime
    signing_key_id: str


# --------------------------------------------------------------------------- camera status


class CameraState(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


class CameraStatus(Message):
    """Heartbeat of one camera from its ingest worker (topic ``cctv.camera-status``)."""

    camera_id: CameraId
    state: CameraState
    at: UtcDatetime
    fps: float = Field(ge=0, description="frames per second sent over the last heartbeat period")
    last_frame_at: UtcDatetime | None = None
    frames_sent: int = Field(ge=0)
    frames_dropped: int = Field(ge=0, description="frames lost to a full queue or a bad decode")
    reconnects: int = Field(ge=0)
    error: str | None = None
    worker: str = Field(description="ingest worker that owns the camera")


# --------------------------------------------------------------------------- camera settings


class CameraSettingsChanged(Message):
    """A camera's zones and rule settings as edited in the API (topic ``cctv.camera-config``, key = camera
    id, compacted): detectors apply the newest ``version`` of each camera without a restart.

    ``settings`` is the whole editable part (``cctv.config.CAMERA_SETTINGS``: zones, tamper, classifier),
    never a diff, so the newest message alone is enough; it stays a JSON object here (this module may not
    import ``cctv.config``) and a consumer validates it with ``Camera.with_settings``.
    """

    camera_id: CameraId
    version: int = Field(ge=1, description="the API's version of this camera's settings; 0 is the file's")
    settings: dict[str, Any] = Field(description="zones, tamper and classifier as in the camera registry")
    changed_at: UtcDatetime
    changed_by: str = Field(description="who saved the version")


# --------------------------------------------------------------------------- dead letters


class DeadLetter(Message):
    """A message some consumer could not accept, kept whole with the reason."""

    source_topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    headers: dict[str, str] = Field(default_factory=dict)
    payload: Base64Bytes = Field(repr=False)
    failed_at: UtcDatetime
    consumer: str


# --------------------------------------------------------------------------- codec

TopicMessage = (
    FrameMessage | IncidentMessage | EvidenceSealed | CameraStatus | CameraSettingsChanged | DeadLetter
)

Headers = list[tuple[str, bytes]]


def encode(message: TopicMessage) -> tuple[bytes, Headers]:
    """Kafka value and headers for ``message``."""
    schema = [(SCHEMA_HEADER, type(message).__name__.encode())]
    if isinstance(message, FrameMessage):
        meta = message.model_dump_json(exclude={"image"}).encode()
        return message.image, [*schema, (META_HEADER, meta)]
    return message.model_dump_json().encode(), schema


M = TypeVar("M", bound=Message)


def decode(model: type[M], value: bytes | None, headers: Headers | None = None) -> M:
    """Decode a Kafka record into ``model`` or raise :class:`ContractError` with the reason."""
    if value is None:
        raise ContractError("empty message value (tombstone)")
    try:
        if model is FrameMessage:
            meta = dict(headers or []).get(META_HEADER)
            if meta is None:
                raise ContractError(f"frame without the {META_HEADER} header")
            fields = json.loads(meta)
            if not isinstance(fields, dict):
                raise ContractError(f"{META_HEADER} header is not a JSON object")
            frame = model.model_validate({**fields, "image": value})
            actual = sha256_hex(value)
            if actual != frame.sha256:  # type: ignore[attr-defined]
                raise ContractError(
                    f"frame sha256 mismatch: header {frame.sha256}, bytes {actual}"  # type: ignore[attr-defined]
                )
            return frame
        return model.model_validate_json(value)
    except ValidationError as exc:
        raise ContractError(_validation_reason(exc)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"{META_HEADER} header is not JSON: {exc}") from exc


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{where}: {err['msg']}")
    return f"{exc.error_count()} validation error(s): " + "; ".join(parts)
