"""Redacted copies as signed derivatives of the master: check the master, encode, record, store locked.

A redacted copy is never a change to the master. It is three new objects under
``<evidence prefix>/redactions/``:

- ``<redaction_id>.mp4``: H.264 made by the working copy's own encoder and
  burn-in (:func:`evidence_store.package.encode_mp4`) from decoded copies of the
  master frames with the planned regions blurred (:mod:`evidence_store.redact`);
- ``<redaction_id>.json``: the record, canonical JSON: which master and manifest
  it derives from (their SHA-256), mode and parameters, detector and tracker,
  every blurred region and every subject left sharp in every frame, encoder,
  the MP4's name, SHA-256 and size, who made it, when and why;
- ``<redaction_id>.sig.json``: the record's Ed25519 signature artifact
  (:meth:`ManifestSigner.sign`; verify with :func:`verify_manifest`).

Why the record lists regions and not only parameters: with the master and the
record anyone can re-create the redacted frames (:func:`evidence_store.redact.apply_blurs`)
without re-running a detector, and check that nothing else was changed.

Before anything is built the master is checked against its manifest, frame by
frame (:func:`load_master`): a redaction of frames that are not the sealed
ones would be a forgery with a valid signature.

Storing follows :class:`EvidenceStore`: COMPLIANCE retention until the item's
own retain-until (rounded up to a second), SHA-256 in the metadata, read back
and compared. A redaction id is new every time and existing keys are refused,
so nothing is ever overwritten; the record is written last (commit marker).
"""

from __future__ import annotations

import io
import itertools
import json
import statistics
import tarfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import cv2
import numpy as np

import cctv
from cctv.config import DetectorSettings
from cctv.contracts import ArtifactKind, Box, FrameMessage, StoredArtifact, sha256_hex
from detector.backends import DetectorBackend, make_backend
from detector.tracker import BYTETRACK_DEFAULTS
from evidence_store.custody import ActorRole
from evidence_store.package import CameraInfo, canonical_json, encode_mp4, utc_text
from evidence_store.redact import (
    BLOCKS_PER_SIDE,
    KEEP_MIN_IOU,
    MIN_BLOCK_PX,
    DetectorChoice,
    FramePlan,
    KeepBox,
    RedactionError,
    RedactionRequest,
    apply_blurs,
    plan_redaction,
)
from evidence_store.signing import ManifestSigner, verify_manifest
from evidence_store.store import EvidenceStore, retain_until_for
from evidence_store.verify_frames import frame_problems
from evidence_store.window import WindowFrame

RECORD_VERSION = 1
REDACTIONS_DIR = "redactions"
BLUR_METHOD = {
    "method": "pixelate then Gaussian",
    "block_px": f"max({MIN_BLOCK_PX}, ceil(longer side of the region / {BLOCKS_PER_SIDE}))",
    "pixelate": "cv2.resize INTER_AREA down to blocks, INTER_NEAREST back up",
    "gaussian_sigma": "block_px / 2, BORDER_REPLICATE",
    "order": "regions blurred one after another in the listed order, on the decoded master frame",
}
REDACTED_SOURCE = (
    "decoded copies of the master JPEGs with the record's regions blurred (the master is untouched)"
)


class MasterMismatch(RedactionError):
    """The master is not the one its manifest describes: refused, nothing is redacted from it."""


class RedactionExists(RedactionError):
    """An object already exists at a redaction's key: redactions are never overwritten."""


# --------------------------------------------------------------------------- master


@dataclass(frozen=True)
class MasterClip:
    """The master's frames, verified against the manifest, as the encoder takes them."""

    manifest: dict[str, Any]
    manifest_sha256: str
    master_sha256: str
    frames: tuple[WindowFrame, ...]
    camera: CameraInfo
    fps: float

    @property
    def images(self) -> list[bytes]:
        return [f.frame.image for f in self.frames]

    @property
    def capture_times(self) -> list[datetime]:
        return [f.frame.capture_ts for f in self.frames]


def _nominal_fps(manifest: dict[str, Any]) -> float:
    """The working copy's frame rate (so both MP4s are encoded alike), else the capture cadence."""
    working = manifest["artifacts"].get("working_copy") or {}
    fps = (working.get("encoder") or {}).get("nominal_fps")
    if fps:
        return float(fps)
    times = [datetime.fromisoformat(f["capture_ts"]) for f in manifest["frames"]]
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    step = statistics.median(steps) if steps else 0.0
    return 1.0 / step if step > 0 else 1.0


def _frame_bytes(master: bytes) -> list[bytes]:
    """The members' bytes in archive order (only called once master_problems found nothing wrong)."""
    with tarfile.open(fileobj=io.BytesIO(master), mode="r:") as archive:
        return [handle.read() for member in archive if (handle := archive.extractfile(member)) is not None]


def master_problems(master: bytes, manifest: dict[str, Any]) -> list[str]:
    """Every way ``master`` differs from the manifest: the whole hash, then frame by frame (count,
    order, content) with the offline verifier's own comparison, so both name a difference alike."""
    problems = []
    sealed = manifest["artifacts"]["master"]["sha256"]
    if sha256_hex(master) != sealed:
        problems.append(f"master sha256 {sha256_hex(master)} is not the manifest's {sealed}")
    return problems + frame_problems(master, manifest["frames"])


def load_master(
    master: bytes, manifest: bytes, signature: bytes | None = None, public_key: bytes | str | None = None
) -> MasterClip:
    """The master's frames in order, each checked against the manifest's SHA-256 before use.

    With ``signature`` and a trusted ``public_key`` the manifest's signature is checked first.
    Raises :class:`MasterMismatch` naming every difference found."""
    if (signature is None) != (public_key is None):
        raise ValueError("give both the manifest's signature and a trusted public key, or neither")
    if (
        signature is not None
        and public_key is not None
        and not verify_manifest(manifest, signature, public_key)
    ):
        raise MasterMismatch("the manifest's signature does not verify with the given public key")
    document = json.loads(manifest)
    problems = master_problems(master, document)
    if problems:
        raise MasterMismatch(
            f"refusing to redact: master does not match manifest {sha256_hex(manifest)}: "
            + "; ".join(problems[:8])
        )
    camera = document["camera"]
    fps = _nominal_fps(document)
    frames = []
    for data, entry in zip(_frame_bytes(master), document["frames"], strict=True):
        message = FrameMessage(
            camera_id=camera["camera_id"],
            stream_id=entry["stream_id"],
            seq=entry["seq"],
            capture_ts=entry["capture_ts"],
            ingest_ts=entry["ingest_ts"],
            width=entry["width"],
            height=entry["height"],
            sha256=entry["sha256"],
            fps=fps,
            image=data,
        )
        frames.append(WindowFrame(message, offset=entry["offset"]))
    info = CameraInfo(camera["camera_id"], camera["name"], camera["location"], camera["in_registry"])
    return MasterClip(document, sha256_hex(manifest), sha256_hex(master), tuple(frames), info, fps)


# --------------------------------------------------------------------------- subjects and detector


def keep_boxes_at(
    boxes: Sequence[Box], at: datetime, capture_times: Sequence[datetime]
) -> tuple[KeepBox, ...]:
    """``boxes`` as keep boxes of the frame whose capture time is closest to ``at`` (earlier on a tie)."""
    if not boxes or not capture_times:
        return ()
    frame = int(np.argmin([abs((t - at).total_seconds()) for t in capture_times]))
    return tuple(KeepBox(frame=frame, x1=b.x1, y1=b.y1, x2=b.x2, y2=b.y2) for b in boxes)


def resolve_keep(
    request: RedactionRequest,
    clip: MasterClip,
    incident_boxes: Sequence[Box] = (),
    boxes_at: datetime | None = None,
) -> tuple[RedactionRequest, dict[str, Any] | None]:
    """The request with its keep boxes decided, and where they came from.

    Default subjects (``keep`` None): ``incident_boxes`` placed at the frame whose capture time is
    closest to ``boxes_at``, by default the incident's ``threshold_at`` from the manifest. The
    incident's OPENED event carries the subjects' boxes at exactly that time (its ``event_at`` is
    ``threshold_at``); boxes of a later event must be passed with that event's ``event_at``."""
    if request.mode != "people_except_subjects":
        return request, None
    if request.keep is not None:
        return request, {"from": "request"}
    at = boxes_at or datetime.fromisoformat(clip.manifest["incident"]["threshold_at"])
    keep = keep_boxes_at(incident_boxes, at, clip.capture_times)
    source = {"from": "incident boxes", "boxes_at": utc_text(at), "frame": keep[0].frame if keep else None}
    return request.model_copy(update={"keep": keep}), source


def redaction_backend(choice: DetectorChoice, base: DetectorSettings | None = None) -> DetectorBackend:
    """The registry backend named by ``choice``, scanning whole frames (no motion crops: a person
    standing still must be found too). ``base`` supplies the rest (YOLO models_dir, device)."""
    fields = (base or DetectorSettings()).model_dump()
    fields.update(
        backend=choice.backend,
        confidence=choice.confidence,
        hog_scale=choice.hog_scale,
        hog_motion_crops=False,
    )
    return make_backend(DetectorSettings.model_validate(fields))


def detector_record(backend: DetectorBackend, request: RedactionRequest, fps: float) -> dict[str, Any]:
    """What looked at the evidence: backend, model, weights hash, thresholds, versions, tracking."""
    try:
        ultralytics: str | None = version("ultralytics")
    except PackageNotFoundError:  # pragma: no cover - the tracker needs it
        ultralytics = None
    return {
        **backend.info.model_dump(mode="json"),
        "versions": {"opencv": cv2.__version__, "ultralytics": ultralytics},
        "scan": "every frame, whole frame",
        "tracker": {
            "name": "ByteTrack (ultralytics) via detector.tracker.CameraTracker",
            **BYTETRACK_DEFAULTS,
            "track_buffer_s": request.max_gap_s,
            "fps": fps,
        },
        "subject_match": f"a detection claims a keep box at IoU >= {KEEP_MIN_IOU} or with its centre inside "
        "it (highest IoU, then nearest centre; one detection per keep box); its whole track is a subject",
    }


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class BuiltRedaction:
    redaction_id: uuid.UUID
    video: bytes
    record: bytes  # canonical JSON of ``document``: the bytes that are hashed and signed
    document: dict[str, Any]
    signature: bytes
    plan: tuple[FramePlan, ...]


def _frames_log(clip: MasterClip, plan: Sequence[FramePlan]) -> list[dict[str, Any]]:
    return [
        {
            "index": step.index,
            "member": entry["member"],
            "seq": entry["seq"],
            "capture_ts": entry["capture_ts"],
            "sha256": entry["sha256"],
            "decodable": step.decodable,
            "blurred": [b.to_json() for b in step.blurred],
            "subjects": [s.to_json() for s in step.subjects],
        }
        for step, entry in zip(plan, clip.manifest["frames"], strict=True)
    ]


def build_redaction(
    clip: MasterClip,
    request: RedactionRequest,
    signer: ManifestSigner,
    *,
    actor: str,
    role: ActorRole,
    reason: str,
    backend: DetectorBackend | None = None,
    detector_settings: DetectorSettings | None = None,
    incident_boxes: Sequence[Box] = (),
    boxes_at: datetime | None = None,
    created_at: datetime | None = None,
    redaction_id: uuid.UUID | None = None,
) -> BuiltRedaction:
    """The redacted MP4 and its signed record; pure apart from the encoder's temporary file.

    ``backend`` defaults to ``request.detector`` from the registry (``detector_settings`` for the rest)."""
    if not reason.strip():
        raise RedactionError("a redaction needs a reason: it prepares evidence for disclosure")
    request, keep_source = resolve_keep(request, clip, incident_boxes, boxes_at)
    if request.mode == "people_except_subjects" and backend is None:
        backend = redaction_backend(request.detector, detector_settings)
    plan = plan_redaction(
        clip.images, request, backend=backend, capture_times=clip.capture_times, fps=clip.fps
    )
    video = encode_mp4(
        clip.frames, clip.camera, lambda i, image: apply_blurs(image, plan[i].regions), source=REDACTED_SOURCE
    )
    if video is None:
        raise RedactionError("the master has no frames to redact")
    redaction_id = redaction_id or uuid.uuid4()
    document = {
        "record_version": RECORD_VERSION,
        "redaction_id": str(redaction_id),
        "evidence_id": clip.manifest["evidence_id"],
        "incident_id": clip.manifest["incident"]["incident_id"],
        "derived_from": "master",
        "master_sha256": clip.master_sha256,
        "manifest_sha256": clip.manifest_sha256,
        "signing_key_id": signer.key_id,
        "software": {"name": "cctv-incidents", "version": cctv.__version__},
        "mode": request.mode,
        "parameters": {**request.model_dump(mode="json"), "keep_source": keep_source},
        "blur": BLUR_METHOD,
        "detector": None if backend is None else detector_record(backend, request, clip.fps),
        "frames": _frames_log(clip, plan),
        "encoder": video.encoder,
        "output": {
            "name": f"{redaction_id}.mp4",
            "sha256": sha256_hex(video.data),
            "size": len(video.data),
            "content_type": "video/mp4",
            "frames_encoded": video.frame_count,
        },
        "created_at": utc_text(created_at or datetime.now(UTC)),
        "created_by": {"actor": actor, "role": ActorRole(role).value},
        "reason": reason.strip(),
    }
    record = canonical_json(document)
    # The parsed record, not the dict it came from: exactly what was signed (lists, not tuples).
    return BuiltRedaction(redaction_id, video.data, record, json.loads(record), signer.sign(record), plan)


def redaction_problems(
    record: bytes, signature: bytes, public_key: bytes | str, video: bytes, manifest: bytes | None = None
) -> list[str]:
    """What is wrong with a redacted copy (empty when it verifies): signature, output hash, master link."""
    problems = []
    if not verify_manifest(record, signature, public_key):
        problems.append("redaction record signature does not verify")
    document = json.loads(record)
    if sha256_hex(video) != document["output"]["sha256"] or len(video) != document["output"]["size"]:
        problems.append(
            f"redacted video sha256 {sha256_hex(video)} is not the record's {document['output']['sha256']}"
        )
    if manifest is not None:
        if sha256_hex(manifest) != document["manifest_sha256"]:
            problems.append("redaction record names another manifest")
        elif json.loads(manifest)["artifacts"]["master"]["sha256"] != document["master_sha256"]:
            problems.append("redaction record names another master")
    return problems


# --------------------------------------------------------------------------- store


@dataclass(frozen=True)
class StoredRedaction:
    redaction_id: uuid.UUID
    video: StoredArtifact
    record: StoredArtifact
    signature: StoredArtifact


def redaction_keys(prefix: str, redaction_id: uuid.UUID) -> dict[str, str]:
    base = f"{prefix.rstrip('/')}/{REDACTIONS_DIR}/{redaction_id}"
    return {"video": f"{base}.mp4", "record": f"{base}.json", "signature": f"{base}.sig.json"}


def store_redaction(
    store: EvidenceStore, prefix: str, built: BuiltRedaction, *, retain_until: datetime
) -> StoredRedaction:
    """Write the MP4, signature and record under ``<prefix>/redactions/`` with COMPLIANCE retention
    until ``retain_until`` (the item's, rounded up to a second), each read back and verified.

    ``prefix`` is the evidence item's (e.g. :func:`evidence_store.store.incident_prefix`)."""
    until = retain_until_for(retain_until, 0)
    keys = redaction_keys(prefix, built.redaction_id)
    for key in keys.values():
        if any(
            o.object_name == key
            for o in store.client.list_objects(store.bucket, prefix=key, include_version=True)
        ):
            raise RedactionExists(f"{store.bucket}/{key} already exists; a new redaction needs a new id")
    # The same lock, metadata and read-back check as the master; the record is written last (the marker).
    video = store.put_locked(ArtifactKind.REDACTED_COPY, keys["video"], built.video, until)
    signature = store.put_locked(ArtifactKind.REDACTION_SIGNATURE, keys["signature"], built.signature, until)
    record = store.put_locked(ArtifactKind.REDACTION_RECORD, keys["record"], built.record, until)
    return StoredRedaction(built.redaction_id, video, record, signature)
