"""Redacted copies of evidence: blur every person but the subjects, or chosen boxes (pure, no I/O).

Why: the ICO's CCTV guidance says footage disclosed to a third party must have
people other than the subjects obscured. A redacted copy is a derivative with
its own hash and signed record (:mod:`evidence_store.redaction_record`); the
master is never touched.

- First a *plan*: the integer pixel regions to blur in every frame (the
  redaction log); then one function, :func:`apply_blurs` (decoded master frame,
  regions), makes the pictures. With the master and the signed record anyone can
  re-create the redacted frames exactly and see that nothing else changed.
- Mode ``boxes``: exactly the requested rectangles (pixels of the original
  frames, inclusive frame range), no margin.
- Mode ``people_except_subjects``: a registry detector backend (HOG by default,
  CPU) scans every whole frame; the pipeline's tracker (ByteTrack,
  :class:`detector.tracker.CameraTracker`) links detections over the whole clip
  *before* subjects are chosen, so a subject matched at one frame stays sharp
  before and after it. A detection is a subject when it claims a keep box of its
  frame (:func:`match_keep`) or belongs to a track that claimed one anywhere.
  Everything else is blurred over its box grown by ``margin``; a non-subject
  track is also blurred, interpolated, in frames between two of its detections
  up to ``max_gap_s`` apart (a detector miss). Detections the tracker has not
  confirmed have no track: blurred unless they claim a keep box themselves.
  ``boxes`` given in this mode are blurred too (a missed bystander, a plate).
- When unsure, blur: a missed bystander is a disclosure failure, an extra blur
  is not. Limits a reviewer must know (why the record lists the subjects kept
  in every frame): a miss that is not between two detections of one track stays
  visible; a tracker identity switch where a subject crosses a bystander can
  leave the bystander sharp after the crossing.

Blur: pixelate to blocks of ``max(8 px, 1/8 of the region's longer side)`` (a
standing person's head is about 1/8 of their height, so a face becomes about one
block), then a Gaussian of sigma = block / 2 so no mosaic edges remain to
"de-pixelate".
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from detector.backends import DetectorBackend
from detector.detections import Detections, Region
from detector.tracker import CameraTracker

KEEP_MIN_IOU = 0.3  # a detection claims a keep box at this IoU or with its centre inside the box
BLOCKS_PER_SIDE = 8  # pixelation blocks along the region's longer side
MIN_BLOCK_PX = 8
UNTRACKED = -1  # track id of a detection the tracker did not (yet) confirm
DETECT_BATCH = 8
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # synthetic capture times when none are given


class RedactionError(ValueError):
    """The redaction cannot be made as requested; the message says what to change."""


# --------------------------------------------------------------------------- request


class PixelBox(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    x1: float = Field(description="left, pixels of the original frame")
    y1: float = Field(description="top, pixels of the original frame")
    x2: float = Field(description="right (exclusive), pixels of the original frame")
    y2: float = Field(description="bottom (exclusive), pixels of the original frame")

    @model_validator(mode="after")
    def _not_empty(self) -> PixelBox:
        if self.x2 <= self.x1 or self.y2 <= self.y1:
            raise ValueError(f"empty box: x2 must exceed x1 and y2 exceed y1 ({self.xyxy})")
        return self

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


class RedactBox(PixelBox):
    """A rectangle to blur in frames ``frame_from``..``frame_to`` (inclusive, window indexes)."""

    frame_from: int = Field(ge=0, description="first frame index in the evidence window")
    frame_to: int = Field(ge=0, description="last frame index (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> RedactBox:
        if self.frame_to < self.frame_from:
            raise ValueError(f"frame_to {self.frame_to} is before frame_from {self.frame_from}")
        return self


class KeepBox(PixelBox):
    """Where a subject is in one frame: the detection claiming it (and its track) stays sharp."""

    frame: int = Field(ge=0, description="frame index in the evidence window")


class DetectorChoice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    backend: str = Field(default="hog", description="detector registry name ('hog' CPU default, 'yolo')")
    confidence: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="minimum person confidence; lower than alerting's 0.4 because a missed bystander "
        "is a disclosure failure and a false positive only blurs some background",
    )
    hog_scale: float = Field(default=1.0, gt=0, le=4, description="HOG resize factor (see DetectorSettings)")


class RedactionRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: Literal["people_except_subjects", "boxes"] = Field(
        description="blur every detected person but the subjects, or exactly the given boxes"
    )
    boxes: tuple[RedactBox, ...] = Field(
        default=(), description="rectangles to blur (mode boxes: required; other mode: blurred as well)"
    )
    keep: tuple[KeepBox, ...] | None = Field(
        default=None,
        description="subjects' boxes; None = the incident's boxes at its threshold frame, () = no subject",
    )
    detector: DetectorChoice = Field(default_factory=DetectorChoice, description="people_except_subjects")
    margin: float = Field(default=0.15, ge=0, le=1, description="detected boxes grow by this on each side")
    max_gap_s: float = Field(
        default=2.0, ge=0, le=10, description="blur a bystander's track across detector misses this long"
    )

    @model_validator(mode="after")
    def _boxes_mode_has_boxes(self) -> RedactionRequest:
        if self.mode == "boxes" and not self.boxes:
            raise ValueError("mode 'boxes' needs at least one box to blur")
        return self

    @model_validator(mode="after")
    def _boxes_mode_has_no_subjects(self) -> RedactionRequest:
        if self.mode == "boxes" and self.keep:
            raise ValueError("keep boxes only apply to mode 'people_except_subjects'")
        return self


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Blur:
    """One blurred region: ``region`` (integer pixels, what was blurred) and why."""

    region: Region
    box: tuple[float, float, float, float]  # the detected, interpolated or requested box
    source: Literal["detected", "interpolated", "requested"]
    confidence: float | None = None
    track_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Subject:
    """A detection left sharp as a subject, listed so a reviewer can check who was kept."""

    box: tuple[float, float, float, float]
    confidence: float
    track_id: int | None
    claimed_keep_box: bool

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FramePlan:
    index: int
    decodable: bool
    blurred: tuple[Blur, ...] = ()
    subjects: tuple[Subject, ...] = ()

    @property
    def regions(self) -> tuple[Region, ...]:
        return tuple(b.region for b in self.blurred)


@dataclass(frozen=True)
class Redaction:
    """Redacted BGR frames (None where the master frame does not decode) and their plan."""

    frames: tuple[np.ndarray | None, ...]
    plan: tuple[FramePlan, ...]


def grow(box: Sequence[float], margin: float, width: int, height: int) -> Region | None:
    """``box`` grown by ``margin`` of its size on each side, to whole pixels outward, clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    region = (
        max(0, math.floor(x1 - dx)),
        max(0, math.floor(y1 - dy)),
        min(width, math.ceil(x2 + dx)),
        min(height, math.ceil(y2 + dy)),
    )
    return region if region[2] > region[0] and region[3] > region[1] else None


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def match_keep(keep: KeepBox, boxes: np.ndarray) -> int | None:
    """Index of the one detection that claims ``keep``: IoU >= 0.3 or its centre inside the keep box;
    the highest IoU wins, then the nearest centre. Why both: a keep box drawn by an operator or taken
    from another detector run is rarely the detector's exact box, and a centre test alone would let
    two people standing together claim one keep box (one keep box = one person)."""
    best: tuple[float, float] | None = None
    chosen = None
    kx, ky = (keep.x1 + keep.x2) / 2, (keep.y1 + keep.y2) / 2
    for i, b in enumerate(boxes):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        overlap = iou(keep.xyxy, b)
        inside = keep.x1 <= cx <= keep.x2 and keep.y1 <= cy <= keep.y2
        if overlap < KEEP_MIN_IOU and not inside:
            continue
        score = (overlap, -math.hypot(cx - kx, cy - ky))
        if best is None or score > best:
            best, chosen = score, i
    return chosen


def _track(det: Detections, i: int) -> int | None:
    track = int(det.track_ids[i]) if det.track_ids is not None else UNTRACKED
    return None if track == UNTRACKED else track


def subject_flags(
    people: Sequence[Detections | None], keep: Sequence[KeepBox]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per frame, one flag per detection: (is a subject, claimed a keep box itself).

    A subject claimed a keep box of its frame or belongs to a track that claimed one anywhere."""
    claimed = [np.zeros(0 if d is None else len(d), bool) for d in people]
    for box in keep:
        if box.frame >= len(people):
            raise RedactionError(
                f"keep box frame {box.frame} is past the clip's last frame {len(people) - 1}"
            )
        det = people[box.frame]
        i = None if det is None else match_keep(box, det.boxes)
        if i is not None:
            claimed[box.frame][i] = True
    tracks = {
        t for det, flags in zip(people, claimed, strict=True) if det is not None
        for t in (_track(det, int(i)) for i in np.flatnonzero(flags)) if t is not None
    }  # fmt: skip
    subject = [
        flags if det is None or det.track_ids is None else flags | np.isin(det.track_ids, sorted(tracks))
        for det, flags in zip(people, claimed, strict=True)
    ]
    return subject, claimed


def _interpolated(
    people: Sequence[Detections | None], track: int, max_gap_s: float, margin: float
) -> Iterator[tuple[int, Blur]]:
    """Boxes of a bystander's track in frames between two of its detections at most ``max_gap_s`` apart."""
    seen = [
        (k, det.capture_ts, det.boxes[i])
        for k, det in enumerate(people)
        if det is not None and det.track_ids is not None
        for i in np.flatnonzero(det.track_ids == track)
    ]
    for (ia, ta, ba), (ib, tb, bb) in itertools.pairwise(seen):
        span = (tb - ta).total_seconds()
        if ib - ia < 2 or not 0 < span <= max_gap_s:
            continue
        for k in range(ia + 1, ib):
            det = people[k]
            if det is None:
                continue
            f = min(1.0, max(0.0, (det.capture_ts - ta).total_seconds() / span))
            box = _xyxy(ba + f * (bb - ba))
            region = grow(box, margin, det.width, det.height)
            if region is not None:
                yield k, Blur(region, box, "interpolated", None, track)


def _xyxy(values: Sequence[float] | np.ndarray) -> tuple[float, float, float, float]:
    """A box as recorded: to 0.01 px, so the recorded box gives the blurred region again."""
    x1, y1, x2, y2 = (round(float(v), 2) for v in values)
    return (x1, y1, x2, y2)


def plan_people(
    people: Sequence[Detections | None], keep: Sequence[KeepBox], *, margin: float, max_gap_s: float
) -> tuple[list[list[Blur]], list[list[Subject]]]:
    """Per frame of the clip (``people`` in window order): what to blur, and the subjects left sharp."""
    subject, claimed = subject_flags(people, keep)
    blurs: list[list[Blur]] = [[] for _ in people]
    kept: list[list[Subject]] = [[] for _ in people]
    bystanders: set[int] = set()
    for k, det in enumerate(people):
        for i in range(0 if det is None else len(det)):
            assert det is not None
            box, confidence, track = _xyxy(det.boxes[i]), round(float(det.confidences[i]), 4), _track(det, i)
            if subject[k][i]:
                kept[k].append(Subject(box, confidence, track, bool(claimed[k][i])))
                continue
            region = grow(box, margin, det.width, det.height)
            if region is not None:
                blurs[k].append(Blur(region, box, "detected", confidence, track))
            if track is not None:
                bystanders.add(track)
    for track in sorted(bystanders):
        for k, blur in _interpolated(people, track, max_gap_s, margin):
            blurs[k].append(blur)
    return blurs, kept


def plan_requested(boxes: Sequence[RedactBox], sizes: Sequence[tuple[int, int] | None]) -> list[list[Blur]]:
    """Exactly the requested rectangles (no margin) in their frames; sizes = (width, height) per frame."""
    out: list[list[Blur]] = [[] for _ in sizes]
    for box in boxes:
        if box.frame_to >= len(sizes):
            raise RedactionError(
                f"box frames {box.frame_from}-{box.frame_to}: the clip has {len(sizes)} frames"
            )
        for k in range(box.frame_from, box.frame_to + 1):
            size = sizes[k]
            if size is None:
                continue
            region = grow(box.xyxy, 0.0, *size)
            if region is None:
                raise RedactionError(f"box {box.xyxy} lies outside frame {k} ({size[0]}x{size[1]})")
            out[k].append(Blur(region, box.xyxy, "requested"))
    return out


# --------------------------------------------------------------------------- detection


def _decoded(images: Sequence[bytes]) -> Iterator[np.ndarray | None]:
    for data in images:
        yield cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def _with_tracks(det: Detections, tracked: Detections) -> Detections:
    """All of ``det``'s detections with the tracker's ids (UNTRACKED where it confirmed none).

    The tracker returns the detector's own boxes for the detections it matched,
    so each maps back to exactly one of ours by equality."""
    ids = np.full(len(det), UNTRACKED, np.int64)
    for box, track in zip(
        tracked.boxes, tracked.track_ids if tracked.track_ids is not None else (), strict=False
    ):
        for i in np.flatnonzero(np.all(det.boxes == box, axis=1)):
            if ids[i] == UNTRACKED:
                ids[i] = int(track)
                break
    return dataclasses.replace(det, track_ids=ids)


def detect_people(
    images: Sequence[bytes],
    backend: DetectorBackend,
    capture_times: Sequence[datetime],
    fps: float,
    track_buffer_s: float,
) -> list[Detections | None]:
    """Every person in every frame with a track id; None for a frame that does not decode.

    Frames are decoded a batch at a time, so memory does not grow with the clip. Backends report
    people only; anything else they might report is untracked, so it is blurred, never kept."""
    tracker = CameraTracker(fps, track_buffer_s=max(track_buffer_s, 1.0 / fps))
    out: list[Detections | None] = []
    for start in range(0, len(images), DETECT_BATCH):
        batch = list(_decoded(images[start : start + DETECT_BATCH]))
        found = iter(backend.detect_batch([img for img in batch if img is not None]))
        for offset, image in enumerate(batch):
            if image is None:
                out.append(None)
                continue
            index = start + offset
            det = Detections(
                camera_id="redaction",
                seq=index,
                capture_ts=capture_times[index],
                width=image.shape[1],
                height=image.shape[0],
            ).with_raw(next(found))
            out.append(_with_tracks(det, tracker.update(det)))
    return out


# --------------------------------------------------------------------------- blur


def blur_block(region: Region) -> int:
    return max(MIN_BLOCK_PX, math.ceil(max(region[2] - region[0], region[3] - region[1]) / BLOCKS_PER_SIDE))


def _blur_in_place(image: np.ndarray, region: Region) -> None:
    x1, y1, x2, y2 = region
    roi = image[y1:y2, x1:x2]
    h, w = roi.shape[:2]
    block = blur_block(region)
    small = cv2.resize(
        roi, (max(1, math.ceil(w / block)), max(1, math.ceil(h / block))), interpolation=cv2.INTER_AREA
    )
    coarse = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    image[y1:y2, x1:x2] = cv2.GaussianBlur(coarse, (0, 0), sigmaX=block / 2, borderType=cv2.BORDER_REPLICATE)


def apply_blurs(image: np.ndarray, regions: Sequence[Region]) -> np.ndarray:
    """A copy of ``image`` with every region blurred, in order; pixels outside them are untouched."""
    out = image.copy()
    for region in regions:
        _blur_in_place(out, region)
    return out


# --------------------------------------------------------------------------- entry points


def _times(count: int, capture_times: Sequence[datetime] | None, fps: float) -> Sequence[datetime]:
    if capture_times is None:
        return [_EPOCH + timedelta(seconds=i / fps) for i in range(count)]
    if len(capture_times) != count:
        raise RedactionError(f"{len(capture_times)} capture times for {count} frames")
    return capture_times


def plan_redaction(
    images: Sequence[bytes],
    request: RedactionRequest,
    *,
    backend: DetectorBackend | None = None,
    capture_times: Sequence[datetime] | None = None,
    fps: float = 5.0,
) -> tuple[FramePlan, ...]:
    """What to blur in each master frame (JPEG bytes in window order); ``request.keep`` as resolved."""
    times = _times(len(images), capture_times, fps)
    sizes = [None if img is None else (img.shape[1], img.shape[0]) for img in _decoded(images)]
    requested = plan_requested(request.boxes, sizes)
    detected: list[list[Blur]] = [[] for _ in images]
    subjects: list[list[Subject]] = [[] for _ in images]
    if request.mode == "people_except_subjects":
        if backend is None:
            raise RedactionError("mode 'people_except_subjects' needs a detector backend")
        if backend.info.backend != request.detector.backend:
            raise RedactionError(
                f"backend {backend.info.backend!r} given, the request names {request.detector.backend!r}"
            )
        people = detect_people(images, backend, times, fps, request.max_gap_s)
        detected, subjects = plan_people(
            people, request.keep or (), margin=request.margin, max_gap_s=request.max_gap_s
        )
    return tuple(
        FramePlan(
            index=k,
            decodable=sizes[k] is not None,
            blurred=tuple(detected[k] + requested[k]),
            subjects=tuple(subjects[k]),
        )
        for k in range(len(images))
    )


def redact_frames(
    images: Sequence[bytes],
    request: RedactionRequest,
    *,
    backend: DetectorBackend | None = None,
    capture_times: Sequence[datetime] | None = None,
    fps: float = 5.0,
) -> Redaction:
    """Master frames (JPEG bytes in order) + request -> redacted BGR frames and the redaction log.

    Holds every decoded frame in memory: for short clips and checks; the MP4 of
    :func:`evidence_store.redaction_record.build_redaction` streams instead."""
    plan = plan_redaction(images, request, backend=backend, capture_times=capture_times, fps=fps)
    frames = tuple(
        None if image is None else apply_blurs(image, step.regions)
        for image, step in zip(_decoded(images), plan, strict=True)
    )
    return Redaction(frames, plan)
