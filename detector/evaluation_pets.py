"""Run the production detector stack over PETS09 S2L1 and score it against the human ground truth.

Why drive :class:`DetectorPipeline` frame by frame instead of calling a backend
directly: the numbers must describe what production does, so every stage that
shapes the tracked boxes runs as deployed: ingest's capture-time sampler and
JPEG encoding (:mod:`ingest.frames`), the motion gate (on), the backend from the
registry, the per-camera ByteTrack. Only Kafka is left out, which changes no pixel.

Frame ``f`` of the clip (1-based, as in ``gt.txt``) is captured at ``(f - 1) / fps``
of the container, the clock the file source plays at; the sampler keeps the frames
an analytics rate of ``fps`` would, and exactly those frames are scored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from cctv.config import Camera, CameraRegistry, DetectorSettings
from cctv.contracts import IncidentMessage
from detector.backends import DetectorConfigError, make_backend
from detector.detections import Detections
from detector.evaluation import FrameObjects, TrackingScores, evaluate, parse_mot
from detector.pipeline import DetectorPipeline, FrameInput
from ingest.frames import FrameSampler, build_frame_message

CAMERA = "pets-s2l1"
HOG_SCALE = 1.5  # PETS people are 60-125 px tall; HOG's 64x128 window wants ~100 px (as the e2e test)
CLIP_START = datetime(2009, 1, 1, tzinfo=UTC)  # any fixed epoch: only differences of capture time matter


@dataclass(frozen=True)
class BackendResult:
    """One row of the results table: scores, or why the backend was not evaluated."""

    backend: str
    scores: TrackingScores | None = None
    seconds: float = 0.0
    inference_saved: float = 0.0  # fraction of frames the motion gate kept from the backend
    skipped: str | None = None


def backend_settings(name: str, base: DetectorSettings | None = None) -> DetectorSettings:
    """Production settings for ``name`` (motion gate on); HOG upscaled for PETS' small people."""
    settings = (base or DetectorSettings()).model_copy(update={"backend": name, "motion_gate": True})
    if name == "hog":
        settings = settings.model_copy(update={"hog_scale": HOG_SCALE})
    return settings


def pets_camera(video: Path, fps: float) -> Camera:
    registry = CameraRegistry.model_validate(
        {
            "cameras": [
                {"id": CAMERA, "name": "PETS09 S2L1 view 001", "source": str(video.resolve()), "fps": fps}
            ]
        }
    )
    return registry.cameras[0]


def sampled_frames(
    video: Path, fps: float, limit: int | None = None
) -> Iterator[tuple[int, np.ndarray, float]]:
    """(1-based frame number, BGR image, capture seconds) of the frames an ``fps`` analytics rate keeps."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise FileNotFoundError(f"{video}: cannot open the video")
    try:
        native = float(capture.get(cv2.CAP_PROP_FPS))
        if not native > 0:
            raise ValueError(f"{video}: the container reports no fps")
        sampler = FrameSampler(fps)
        number = kept = 0
        while limit is None or kept < limit:
            ok, image = capture.read()
            if not ok:
                return
            number += 1
            at = (number - 1) / native
            if sampler.accept(at):
                kept += 1
                yield number, image, at
    finally:
        capture.release()


def tracked_objects(detections: Detections | None) -> FrameObjects:
    """The tracked people of one frame, as the scorer reads them."""
    if detections is None or detections.track_ids is None or not len(detections):
        return FrameObjects()
    boxes = tuple((float(a), float(b), float(c), float(d)) for a, b, c, d in detections.boxes)
    return FrameObjects(tuple(int(t) for t in detections.track_ids), boxes)


def run_clip(
    pipeline: DetectorPipeline, camera: Camera, video: Path, fps: float, limit: int | None, stream_id: str
) -> Iterator[tuple[int, float, list[IncidentMessage]]]:
    """Feed ``pipeline`` the sampled frames, JPEG-encoded as ingest does: (frame number, capture seconds,
    incident messages) per frame; the pipeline's ``last_detections`` then holds that frame's tracks."""
    for seq, (number, image, at) in enumerate(sampled_frames(video, fps, limit)):
        message = build_frame_message(
            camera, image, stream_id=stream_id, seq=seq, capture_ts=CLIP_START + timedelta(seconds=at)
        )
        output = pipeline.process([FrameInput(message, partition=0, offset=seq)])
        if output.rejected:
            raise RuntimeError(f"frame {number} rejected: {output.rejected[0].reason}")
        yield number, at, output.incidents


def track_clip(
    video: Path, fps: float, settings: DetectorSettings, limit: int | None = None
) -> tuple[dict[int, FrameObjects], list[int], float]:
    """The pipeline's tracked people per sampled frame number, those frame numbers in order, and the
    fraction of frames the motion gate kept from the backend."""
    backend = make_backend(settings)
    camera = pets_camera(video, fps)
    pipeline = DetectorPipeline(CameraRegistry(cameras=(camera,)), backend, settings, pre_roll_s=3.0)
    tracked: dict[int, FrameObjects] = {}
    frames: list[int] = []
    for number, _, _ in run_clip(pipeline, camera, video, fps, limit, "pets-eval"):
        tracked[number] = tracked_objects(pipeline.last_detections(CAMERA))
        frames.append(number)
    return tracked, frames, pipeline.stats.gate.skip_ratio


def evaluate_backend(
    pets_dir: Path,
    backend: str,
    fps: float = 5.0,
    limit: int | None = None,
    base: DetectorSettings | None = None,
) -> BackendResult:
    """Score one backend on the clip (the first ``limit`` sampled frames, or all); skipped if unbuildable."""
    truth = parse_mot((pets_dir / "gt.txt").read_text())
    began = time.perf_counter()
    try:
        tracked, frames, saved = track_clip(
            pets_dir / "vtest.avi", fps, backend_settings(backend, base), limit
        )
    except DetectorConfigError as exc:  # e.g. YOLO weights absent or failing their SHA-256 check
        return BackendResult(backend, skipped=str(exc))
    seconds = time.perf_counter() - began
    return BackendResult(backend, evaluate(truth, tracked, frames), seconds, saved)


# --------------------------------------------------------------------------- report

COLUMNS = (
    "backend",
    "frames",
    "precision",
    "recall",
    "MOTA",
    "IDF1",
    "IDSW",
    "FP",
    "FN",
    "inference saved",
    "time",
)


def table_rows(results: Sequence[BackendResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        if r.scores is None:
            rows.append((r.backend, "-", "-", "-", "-", "-", "-", "-", "-", "-", f"skipped: {r.skipped}"))
            continue
        s = r.scores
        rows.append((
            r.backend, str(s.frames), f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.mota:.3f}",
            f"{s.idf1:.3f}", str(s.idsw), str(s.fp), str(s.fn), f"{r.inference_saved:.0%}",
            f"{r.seconds:.0f}s",
        ))  # fmt: skip
    return rows


def render_text(results: Sequence[BackendResult]) -> str:
    rows = [COLUMNS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1] for row in rows
    ]
    return "\n".join(lines) + "\n"


def render_markdown(results: Sequence[BackendResult], *, command: str, when: datetime, fps: float) -> str:
    rows = table_rows(results)
    gt_boxes = next((r.scores.gt for r in results if r.scores is not None), None)
    lines = [
        "## Detection and tracking on PETS09 S2L1",
        "",
        f"Produced by `{command}` on {when:%Y-%m-%d %H:%M} UTC.",
        "",
        f"The production detector stack (ingest's sampler and JPEG encoding, motion gate on, backend, "
        f"per-camera ByteTrack) over `vtest.avi` sampled at {fps:g} fps on the container's clock, scored "
        f"against `gt.txt` at exactly those frames"
        + (f" ({gt_boxes} ground-truth boxes)" if gt_boxes is not None else "")
        + ". A tracked box matches a ground-truth box at IoU >= 0.5. Precision and recall are of the "
        "tracker's output (what incidents and evidence show), from the CLEAR-MOT matching; "
        "MOTA = 1 - (FN + FP + IDSW) / GT; IDF1 from one global assignment of ground-truth ids to track "
        "ids. Ground-truth rows flagged conf 0 are ignored. Inference saved = sampled frames the motion gate "
        "kept from the backend (people walk through most of the clip, so most frames have motion). Time is "
        "wall-clock on the machine that ran it.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    return "\n".join(lines)
