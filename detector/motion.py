"""Motion gate: run the person detector only where and when something moved (as Frigate does).

Why: at 200 cameras most frames of most cameras show an empty street; the
detector is the expensive stage (HOG ~170 ms/frame on one core). The gate keeps
a running background of a small grey copy of each camera's frames and measures
the fraction of pixels that differ from it. A frame is sent to the detector when

- it is the camera's first frame (nothing to compare with yet),
- the motion fraction exceeds ``motion_threshold``, or
- people are being tracked and ``recheck_s`` of capture time has passed since
  the last inference: a person standing still melts into the background after
  a few seconds, and loitering is exactly that person, so they are re-checked at
  a lower rate instead of being forgotten.

Otherwise the frame is skipped and the caller carries the previous frame's
tracks forward unchanged (no motion = nothing moved), so dwell clocks keep running.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.detections import Region

ANALYSIS_HEIGHT = 180  # rows of the grey copy; Frigate works at a similar size
BACKGROUND_ALPHA = 0.1  # background learning rate per frame: a still person fades out in ~3-5 s at 5 fps
PIXEL_DELTA = 25  # grey-level change that counts as "changed" after blurring (sensor noise stays below)
MIN_REGION_PX = 8  # contours smaller than this (in analysis pixels) are noise
LIGHTING_CHANGE = 0.5  # more than this fraction changed at once: re-learn the background (lights, exposure)


@dataclass(frozen=True)
class Motion:
    fraction: float  # changed pixels / all pixels, in [0, 1]
    regions: tuple[Region, ...]  # changed areas in full-frame pixel coordinates


class BackgroundModel:
    """One camera's running background; :meth:`measure` compares a frame with it and learns from it."""

    def __init__(self) -> None:
        self._background: np.ndarray | None = None
        self._shape: tuple[int, int] | None = None

    def measure(self, frame_bgr: np.ndarray) -> Motion:
        height, width = frame_bgr.shape[:2]
        scale = ANALYSIS_HEIGHT / height if height > ANALYSIS_HEIGHT else 1.0
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
        small = cv2.resize(grey, small_size, interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0).astype(np.float32)
        if self._background is None or self._shape != (height, width):
            self._background, self._shape = small.copy(), (height, width)
            return Motion(fraction=1.0, regions=((0, 0, width, height),))
        changed = cv2.absdiff(small, self._background) > PIXEL_DELTA
        fraction = float(np.count_nonzero(changed)) / changed.size
        if fraction > LIGHTING_CHANGE:
            self._background = small.copy()
        else:
            cv2.accumulateWeighted(small, self._background, BACKGROUND_ALPHA)
        return Motion(fraction=fraction, regions=self._regions(changed, 1.0 / scale, width, height))

    @staticmethod
    def _regions(changed: np.ndarray, upscale: float, width: int, height: int) -> tuple[Region, ...]:
        mask = cv2.dilate(changed.astype(np.uint8) * 255, np.ones((3, 3), np.uint8), iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        regions = []
        for contour in contours:
            if cv2.contourArea(contour) < MIN_REGION_PX:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            regions.append(
                (
                    max(0, int(x * upscale)),
                    max(0, int(y * upscale)),
                    min(width, int(np.ceil((x + w) * upscale))),
                    min(height, int(np.ceil((y + h) * upscale))),
                )
            )
        return tuple(sorted(regions))


@dataclass(frozen=True)
class GateDecision:
    run: bool
    reason: str  # first-frame | motion | recheck | gate-off | still
    motion: Motion


@dataclass
class GateCounts:
    """Inferences the gate let through vs. saved, for the worker's stats and the benchmark."""

    run: int = 0
    skipped: int = 0

    @property
    def skip_ratio(self) -> float:
        total = self.run + self.skipped
        return self.skipped / total if total else 0.0


@dataclass
class MotionGate:
    """Decides per frame whether the detector must look; one background per camera."""

    threshold: float
    recheck_s: float
    enabled: bool = True
    counts: GateCounts = field(default_factory=GateCounts)
    _backgrounds: dict[str, BackgroundModel] = field(default_factory=dict)
    _last_inference: dict[str, float] = field(default_factory=dict)

    def decide(
        self, camera_id: str, frame_bgr: np.ndarray, capture_s: float, tracks_alive: bool
    ) -> GateDecision:
        """Measure motion and decide; a ``run`` decision is counted as an inference at ``capture_s``."""
        first = camera_id not in self._backgrounds
        motion = self._backgrounds.setdefault(camera_id, BackgroundModel()).measure(frame_bgr)
        last = self._last_inference.get(camera_id)
        if not self.enabled:
            reason = "gate-off"
        elif first or last is None:
            reason = "first-frame"
        elif motion.fraction > self.threshold:
            reason = "motion"
        elif tracks_alive and capture_s - last >= self.recheck_s:
            reason = "recheck"
        else:
            self.counts.skipped += 1
            return GateDecision(run=False, reason="still", motion=motion)
        self.counts.run += 1
        self._last_inference[camera_id] = capture_s
        return GateDecision(run=True, reason=reason, motion=motion)

    def forget(self, camera_id: str) -> None:
        """Drop a camera's background (its partition moved to another worker)."""
        self._backgrounds.pop(camera_id, None)
        self._last_inference.pop(camera_id, None)
