"""OpenCV HOG people detector: the zero-download CPU default."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from cctv.config import DetectorSettings
from cctv.contracts import DetectorInfo
from detector.backends.base import DetectorBackend, DetectorConfigError
from detector.detections import PERSON_CLASS, RawBoxes, Region

HOG_WINDOW = (64, 128)  # the default people detector's window (w, h)
HOG_MARGIN_MIDPOINT = 0.5  # SVM margin that maps to confidence 0.5
HOG_MARGIN_SLOPE = 2.0  # confidence = logistic(slope * (margin - midpoint))
CROP_CONTEXT = (
    0.5  # grow motion regions by this fraction of their size on each side: motion often covers legs only
)
MIN_CROP = (160, 320)  # full-frame pixels: room for a ~260 px person when only part of them moved
CROP_FULL_FRAME = 0.6  # when the crops cover more than this fraction of the frame, scan the whole frame
# Where the person lies inside a detection window, as fractions of the window (left, top, right, bottom).
# The default people detector was trained on INRIA windows: a ~96 px person centred in 64x128 with 16 px
# above and below, ~32 px wide. Measured on PETS09 S2L1 (median over ~1000 matches with the annotated
# boxes): 0.24, 0.12, 0.24, 0.14. Reporting the window itself would put the "feet" (bottom-centre, what
# zones test) ~15% of the box height below the real feet, and no window overlaps a tight person box by
# IoU >= 0.5 (recall at IoU 0.5 on PETS: 3% for windows, 81% for person extents at scale 1.5).
PERSON_IN_WINDOW = (0.25, 0.125, 0.25, 0.125)


def hog_confidence(margin: np.ndarray) -> np.ndarray:
    """Map HOG's SVM margin (unbounded, >0 for a hit) to [0, 1] with a logistic.

    The default people detector gives ~0.2-0.6 for weak hits and >1 for clear
    pedestrians (measured on ultralytics' bus.jpg); the midpoint 0.5 puts the
    default confidence threshold 0.4 just under the weak-hit range.
    """
    return (1.0 / (1.0 + np.exp(-HOG_MARGIN_SLOPE * (margin - HOG_MARGIN_MIDPOINT)))).astype(np.float32)


def person_extent(windows: np.ndarray) -> np.ndarray:
    """The person's box inside each HOG detection window (xyxy in, xyxy out; a new array)."""
    w = windows[:, 2] - windows[:, 0]
    h = windows[:, 3] - windows[:, 1]
    left, top, right, bottom = PERSON_IN_WINDOW
    return np.stack(
        [
            windows[:, 0] + left * w,
            windows[:, 1] + top * h,
            windows[:, 2] - right * w,
            windows[:, 3] - bottom * h,
        ],
        axis=1,
    ).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (xyxy boxes)."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    kept = cv2.dnn.NMSBoxes(xywh, [float(s) for s in scores], 0.0, iou)
    return np.asarray(kept, np.int64).reshape(-1)


def crop_regions(
    regions: Sequence[Region], width: int, height: int, min_size: tuple[int, int]
) -> list[Region]:
    """Grow each region for context and to fit a detector window, then merge overlapping ones."""
    grown: list[list[int]] = []
    for x1, y1, x2, y2 in regions:
        w, h = x2 - x1, y2 - y1
        need_w = max(min_size[0], int(w * (1 + 2 * CROP_CONTEXT)))
        need_h = max(min_size[1], int(h * (1 + 2 * CROP_CONTEXT)))
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        nx1 = min(max(0, cx - need_w // 2), max(0, width - need_w))
        ny1 = min(max(0, cy - need_h // 2), max(0, height - need_h))
        grown.append([nx1, ny1, min(width, nx1 + need_w), min(height, ny1 + need_h)])
    merged = True
    while merged:  # few regions per frame: quadratic merging is fine
        merged = False
        for i in range(len(grown)):
            for j in range(i + 1, len(grown)):
                a, b = grown[i], grown[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    grown[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del grown[j]
                    merged = True
                    break
            if merged:
                break
    return [(r[0], r[1], r[2], r[3]) for r in grown]


class HogBackend(DetectorBackend):
    """OpenCV's pretrained HOG+SVM pedestrian detector: CPU only, no download, modest accuracy.

    Costs ~0.2-0.3 s per 768x576 frame on one core, so by default it scans only
    the motion regions and tracked people (``use_regions``). ``scale`` resizes
    each crop before scanning: the window is 64x128 px with the person ~96 px
    tall in it, so people shorter than ~100 px (a wide street camera) need an
    upscale (``scale`` > 1, cost grows with its square), while close cameras can
    scan downscaled (< 1). Boxes are the person's extent inside the window
    (:func:`person_extent`), not the window.
    """

    MODEL_NAME = "opencv-hog-default-people"

    def __init__(
        self, confidence: float = 0.4, scale: float = 1.0, use_regions: bool = True, nms_iou: float = 0.45
    ) -> None:
        if not hasattr(cv2, "HOGDescriptor"):
            raise DetectorConfigError(
                f"OpenCV {cv2.__version__} has no HOGDescriptor (removed in OpenCV 5); "
                "install opencv-python<5 and opencv-python-headless<5, or use backend 'yolo'"
            )
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
        self.confidence = confidence
        self.scale = scale
        self.use_regions = use_regions
        self.nms_iou = nms_iou
        self.labels = {PERSON_CLASS: "person"}  # its only class, whatever detect_classes asks for
        self.info = DetectorInfo(
            backend="hog",
            model_name=self.MODEL_NAME,
            weights_sha256=None,
            thresholds={"confidence": confidence, "nms_iou": nms_iou, "scale": scale},
        )

    @classmethod
    def from_settings(cls, settings: DetectorSettings) -> HogBackend:
        return cls(
            confidence=settings.confidence, scale=settings.hog_scale, use_regions=settings.hog_motion_crops
        )

    def detect_batch(
        self, images: Sequence[np.ndarray], regions: Sequence[Sequence[Region] | None] | None = None
    ) -> list[RawBoxes]:
        per_image = list(regions) if regions is not None else [None] * len(images)
        if len(per_image) != len(images):
            raise ValueError(f"{len(per_image)} region lists for {len(images)} images")
        return [self._detect(image, r) for image, r in zip(images, per_image, strict=True)]

    def _detect(self, image: np.ndarray, regions: Sequence[Region] | None) -> RawBoxes:
        height, width = image.shape[:2]
        min_size = (
            max(MIN_CROP[0], math.ceil(HOG_WINDOW[0] / self.scale) + 16),
            max(MIN_CROP[1], math.ceil(HOG_WINDOW[1] / self.scale) + 16),
        )
        crops: list[Region] = [(0, 0, width, height)]
        if self.use_regions and regions is not None:
            crops = crop_regions(regions, width, height, min_size)
            covered = sum((c[2] - c[0]) * (c[3] - c[1]) for c in crops)
            if covered > CROP_FULL_FRAME * width * height:
                crops = [(0, 0, width, height)]
        boxes: list[np.ndarray] = []
        margins: list[np.ndarray] = []
        for x1, y1, x2, y2 in crops:
            crop = image[y1:y2, x1:x2]
            if self.scale != 1.0:  # area averaging to shrink; bilinear to enlarge (area would be blocky)
                interpolation = cv2.INTER_LINEAR if self.scale > 1.0 else cv2.INTER_AREA
                crop = cv2.resize(crop, None, fx=self.scale, fy=self.scale, interpolation=interpolation)
            if crop.shape[0] < HOG_WINDOW[1] or crop.shape[1] < HOG_WINDOW[0]:
                continue  # frame itself smaller than one window
            rects, weights = self._hog.detectMultiScale(crop, winStride=(8, 8), padding=(8, 8), scale=1.05)
            if len(rects):
                r = np.asarray(rects, np.float32) / self.scale
                boxes.append(
                    np.stack([r[:, 0] + x1, r[:, 1] + y1, r[:, 0] + r[:, 2] + x1, r[:, 1] + r[:, 3] + y1], 1)
                )
                margins.append(np.asarray(weights, np.float32).reshape(-1))
        if not boxes:
            return RawBoxes.empty()
        all_boxes = np.concatenate(boxes)
        conf = hog_confidence(np.concatenate(margins))
        keep = conf >= self.confidence
        all_boxes, conf = all_boxes[keep], conf[keep]
        kept = nms(all_boxes, conf, self.nms_iou)
        return RawBoxes(
            person_extent(all_boxes[kept]), conf[kept], np.full(len(kept), PERSON_CLASS, np.int32)
        )
