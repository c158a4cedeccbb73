"""Builds an evidence package from a frame window: master, working copy and manifest (bytes in, bytes out).

- **Master**: the JPEG frames exactly as ingested (bit-exact, never re-encoded)
  in one uncompressed POSIX ustar archive. Deterministic: members
  ``frames/<index:06d>_<seq>.jpg`` in window (ingest) order, mtime = capture
  time in whole seconds, uid/gid 0, no user/group names, mode 0444. The same
  frames always give the same bytes, so the master's hash can be recomputed.
- **Working copy**: an H.264 MP4 (libx264, yuv420p, ``+faststart`` so a browser
  can start playing before the download ends) from decoded *copies* of the
  frames with camera name, location, UTC and UK local time (Europe/London,
  GMT/BST) and the frame's seq burned in. Timing is variable frame rate: each
  frame's presentation time is its capture time minus the first frame's, in
  milliseconds, so gaps in the footage stay visible as gaps in time. The tool,
  versions and parameters are recorded in the manifest.
- **Manifest**: canonical JSON (sorted keys, no whitespace, UTF-8, no NaN) so
  its SHA-256 and signature are reproducible from the parsed document.

The only I/O is a private temporary file for the MP4: FFmpeg's ``faststart``
rewrites the file after encoding and cannot do that on an in-memory buffer.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import av
import cv2
import numpy as np

import cctv
from cctv.contracts import ArtifactKind, IncidentMessage, sha256_hex
from evidence_store.window import FrameWindow, WindowFrame

MANIFEST_VERSION = 1
UK_TIME = ZoneInfo("Europe/London")

ARTIFACT_NAMES: dict[ArtifactKind, str] = {
    ArtifactKind.MASTER: "master.tar",
    ArtifactKind.WORKING_COPY: "working.mp4",
    ArtifactKind.MANIFEST: "manifest.json",
    ArtifactKind.SIGNATURE: "manifest.sig.json",
    ArtifactKind.TIMESTAMP: "manifest.tsr",
}
CONTENT_TYPES: dict[ArtifactKind, str] = {
    ArtifactKind.MASTER: "application/x-tar",
    ArtifactKind.WORKING_COPY: "video/mp4",
    ArtifactKind.MANIFEST: "application/json",
    ArtifactKind.SIGNATURE: "application/json",
    # The token is a CMS SignedData ContentInfo (RFC 3161 section 2.4.2); no narrower type is registered.
    ArtifactKind.TIMESTAMP: "application/pkcs7-mime",
    ArtifactKind.REDACTED_COPY: "video/mp4",
    ArtifactKind.REDACTION_RECORD: "application/json",
    ArtifactKind.REDACTION_SIGNATURE: "application/json",
    ArtifactKind.CUSTODY_CHECKPOINT: "application/json",
    ArtifactKind.CUSTODY_CHECKPOINT_SIGNATURE: "application/json",
    ArtifactKind.EXPORT_BUNDLE: "application/zip",
}

# One thread: with 2, x264 gave different bytes for the same frames in 2 of 4 runs; with 1, 10 of 10
# agreed, so the working copy can be re-made from the master and compared by hash.
X264_OPTIONS = {"crf": "23", "preset": "veryfast", "threads": "1"}
MP4_TIME_BASE = Fraction(1, 1000)


@dataclass(frozen=True)
class CameraInfo:
    """What the manifest and the burn-in say about the camera (registry data, or the bare id)."""

    camera_id: str
    name: str
    location: str
    in_registry: bool


@dataclass(frozen=True)
class WorkingCopy:
    data: bytes
    encoder: dict[str, Any]
    frame_count: int


@dataclass(frozen=True)
class EvidencePackage:
    evidence_id: uuid.UUID
    master: bytes
    working_copy: WorkingCopy | None
    manifest: bytes
    manifest_document: dict[str, Any]

    @property
    def manifest_sha256(self) -> str:
        return sha256_hex(self.manifest)


def canonical_json(document: Any) -> bytes:
    """The one serialization that is hashed and signed."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def utc_text(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None


def evidence_id_for(incident_id: uuid.UUID) -> uuid.UUID:
    """One evidence item per incident, the same id on every redelivery."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"cctv:evidence:{incident_id}")


# --------------------------------------------------------------------------- master


def member_name(index: int, item: WindowFrame) -> str:
    return f"frames/{index:06d}_{item.frame.seq}.jpg"


def build_master(frames: tuple[WindowFrame, ...]) -> bytes:
    """The ingested JPEG bytes, untouched, in a deterministic uncompressed ustar archive."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for index, item in enumerate(frames):
            info = tarfile.TarInfo(member_name(index, item))
            info.size = len(item.frame.image)
            info.mtime = int(item.frame.capture_ts.timestamp())
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            archive.addfile(info, io.BytesIO(item.frame.image))
    return buffer.getvalue()


# --------------------------------------------------------------------------- working copy


def _ascii(text: str) -> str:
    """Hershey fonts draw ASCII only: fold accents, replace the rest."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded if folded.strip() or not text else "?"


def overlay_lines(item: WindowFrame, camera: CameraInfo, index: int, total: int) -> list[str]:
    captured = item.frame.capture_ts.astimezone(UTC)
    local = captured.astimezone(UK_TIME)
    millis = f"{captured.microsecond // 1000:03d}"
    lines = [_ascii(f"{camera.name} [{camera.camera_id}]")]
    if camera.location:
        lines.append(_ascii(camera.location))
    lines += [
        f"UTC {captured:%Y-%m-%d %H:%M:%S}.{millis}Z",
        f"UK  {local:%Y-%m-%d %H:%M:%S}.{millis} {local.tzname()}",
        f"seq {item.frame.seq}  frame {index + 1}/{total}",
    ]
    return lines


def burn_in(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """A copy of ``image`` with ``lines`` drawn top-left, white on a black outline (readable on any scene)."""
    out = image.copy()
    scale = max(0.4, out.shape[1] / 1400)
    thickness = max(1, round(scale * 2))
    step = int(30 * scale) + 6
    for row, text in enumerate(lines):
        origin = (8, 8 + step * (row + 1) - 6)
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 3, cv2.LINE_AA)
        cv2.putText(
            out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA
        )
    return out


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Frames of another size are scaled to the first frame's; yuv420p needs even sizes (pad, never crop)."""
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height))
    if height % 2 or width % 2:
        image = cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return image


FrameTransform = Callable[[int, np.ndarray], np.ndarray]
"""(index in the window, decoded BGR frame) -> the picture to burn in and encode (a new array)."""

WORKING_COPY_SOURCE = "decoded copies of the master JPEGs (the master is untouched)"


def build_working_copy(frames: tuple[WindowFrame, ...], camera: CameraInfo) -> WorkingCopy | None:
    """H.264 MP4 with the burn-in; None when there is no frame to show."""
    return encode_mp4(frames, camera)


def encode_mp4(
    frames: tuple[WindowFrame, ...],
    camera: CameraInfo,
    transform: FrameTransform | None = None,
    *,
    source: str = WORKING_COPY_SOURCE,
) -> WorkingCopy | None:
    """The one MP4 encoder and burn-in of every derivative (working copy, redacted copies).

    ``transform`` sees each decoded frame in the master's own pixel coordinates
    (before scaling to the first frame's size) so a derivative's edits (e.g.
    redaction boxes) are defined on the original frames; the burn-in is drawn
    after it, so it is never blurred. ``source`` says in the encoder record what
    was encoded. None when there is no frame to show.
    """
    if not frames:
        return None
    width, height = frames[0].frame.width, frames[0].frame.height
    even_w, even_h = width + width % 2, height + height % 2
    origin = frames[0].frame.capture_ts
    undecodable: list[int] = []
    written, last_pts = 0, -1
    with tempfile.TemporaryDirectory(prefix="cctv-mp4-") as tmp:
        path = Path(tmp) / "working.mp4"
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream(
                "libx264", rate=round(frames[0].frame.fps) or 1, options=X264_OPTIONS
            )
            stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
            stream.codec_context.time_base = MP4_TIME_BASE
            for index, item in enumerate(frames):
                decoded = cv2.imdecode(np.frombuffer(item.frame.image, np.uint8), cv2.IMREAD_COLOR)
                if decoded is None:
                    undecodable.append(item.frame.seq)
                    continue
                if transform is not None:
                    decoded = transform(index, decoded)
                picture = burn_in(
                    _fit(decoded, width, height), overlay_lines(item, camera, index, len(frames))
                )
                video_frame = av.VideoFrame.from_ndarray(picture, format="bgr24")
                pts = round((item.frame.capture_ts - origin).total_seconds() * 1000)
                last_pts = max(pts, last_pts + 1)  # strictly increasing even for equal capture times
                video_frame.pts, video_frame.time_base = last_pts, MP4_TIME_BASE
                for packet in stream.encode(video_frame):
                    container.mux(packet)
                written += 1
            for packet in stream.encode():
                container.mux(packet)
        data = path.read_bytes()
    encoder = {
        "tool": "PyAV (FFmpeg bindings) + OpenCV burn-in",
        "pyav_version": av.__version__,
        "ffmpeg_version": getattr(av, "ffmpeg_version_info", None),
        "libavcodec_version": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "opencv_version": cv2.__version__,
        "codec": "libx264",
        "codec_options": dict(X264_OPTIONS),
        "pix_fmt": "yuv420p",
        "container": "mp4",
        "movflags": "+faststart",
        "width": even_w,
        "height": even_h,
        "time_base": str(MP4_TIME_BASE),
        "timing": "variable frame rate: pts = capture_ts - first frame's capture_ts, in milliseconds",
        "nominal_fps": frames[0].frame.fps,
        "source": source,
        "overlay": "camera name [id], location, UTC time, Europe/London time (GMT/BST), seq and frame "
        "number; cv2.putText FONT_HERSHEY_SIMPLEX, top left",
        "frames_encoded": written,
        "undecodable_frame_seqs": undecodable,
    }
    return WorkingCopy(data, encoder, written)


# --------------------------------------------------------------------------- manifest


def _artifact(kind: ArtifactKind, data: bytes) -> dict[str, Any]:
    return {
        "name": ARTIFACT_NAMES[kind],
        "sha256": sha256_hex(data),
        "size": len(data),
        "content_type": CONTENT_TYPES[kind],
    }


def build_manifest(
    incident: IncidentMessage,
    window: FrameWindow,
    camera: CameraInfo,
    master: bytes,
    working_copy: WorkingCopy | None,
    *,
    evidence_id: uuid.UUID,
    sealed_at: datetime,
    retain_until: datetime,
    signing_key_id: str,
) -> dict[str, Any]:
    frames = window.frames
    offsets = [f.frame.clock_offset_s for f in frames if f.frame.clock_offset_s is not None]
    working: dict[str, Any] | None = None
    if working_copy is not None:
        working = {**_artifact(ArtifactKind.WORKING_COPY, working_copy.data), "encoder": working_copy.encoder}
    return {
        "manifest_version": MANIFEST_VERSION,
        "evidence_id": str(evidence_id),
        "created_at": utc_text(sealed_at),
        "software": {"name": "cctv-incidents", "version": cctv.__version__},
        "hash_algorithm": "sha256",
        "signing_key_id": signing_key_id,
        "retention": {"mode": "COMPLIANCE", "retain_until": utc_text(retain_until)},
        "camera": {
            "camera_id": camera.camera_id,
            "name": camera.name,
            "location": camera.location,
            "in_registry": camera.in_registry,
            "clock_offset_s": offsets[0] if offsets else None,
            "clock_offset_range_s": [min(offsets), max(offsets)] if offsets else None,
        },
        "incident": {
            "incident_id": str(incident.incident_id),
            "rule": incident.rule,
            "zone_id": incident.zone_id,
            "summary": incident.summary,
            "track_ids": list(incident.track_ids),
            "started_at": utc_text(incident.started_at),
            "threshold_at": utc_text(incident.threshold_at),
            "ended_at": utc_text(incident.ended_at),
            "dwell_s": incident.dwell_s,
            "change_region": (
                incident.change_region.model_dump(mode="json") if incident.change_region else None
            ),
        },
        "detector": incident.detector.model_dump(mode="json"),
        "window": {
            "start": utc_text(window.window_start),
            "end": utc_text(window.window_end),
            "topic": window.topic,
            "partition": window.partition,
            "start_offset": window.start_offset,
            "last_offset_read": window.last_offset_read,
            "complete": window.complete,
            "end_reason": window.end_reason,
            "duplicates_skipped": window.duplicates_skipped,
        },
        "frame_count": len(frames),
        "first_capture_ts": utc_text(frames[0].frame.capture_ts) if frames else None,
        "last_capture_ts": utc_text(frames[-1].frame.capture_ts) if frames else None,
        "frames": [
            {
                "index": index,
                "member": member_name(index, item),
                "stream_id": item.frame.stream_id,
                "seq": item.frame.seq,
                "capture_ts": utc_text(item.frame.capture_ts),
                "ingest_ts": utc_text(item.frame.ingest_ts),
                "sha256": item.frame.sha256,
                "size": len(item.frame.image),
                "width": item.frame.width,
                "height": item.frame.height,
                "offset": item.offset,
            }
            for index, item in enumerate(frames)
        ],
        "gaps": [gap.to_json() for gap in window.gaps],
        "integrity_problems": [problem.to_json() for problem in window.integrity_problems],
        "artifacts": {
            "master": {
                **_artifact(ArtifactKind.MASTER, master),
                "format": "POSIX ustar, uncompressed; members frames/<index:06d>_<seq>.jpg in window order, "
                "bytes exactly as ingested, mtime = capture time (s), uid/gid 0, mode 0444",
            },
            "working_copy": working,
        },
    }


def build_package(
    incident: IncidentMessage,
    window: FrameWindow,
    camera: CameraInfo,
    *,
    sealed_at: datetime,
    retain_until: datetime,
    signing_key_id: str,
) -> EvidencePackage:
    """Master, working copy and canonical manifest of one incident; pure apart from the MP4 temp file."""
    evidence_id = evidence_id_for(incident.incident_id)
    master = build_master(window.frames)
    working = build_working_copy(window.frames, camera)
    document = build_manifest(
        incident,
        window,
        camera,
        master,
        working,
        evidence_id=evidence_id,
        sealed_at=sealed_at,
        retain_until=retain_until,
        signing_key_id=signing_key_id,
    )
    return EvidencePackage(evidence_id, master, working, canonical_json(document), document)
