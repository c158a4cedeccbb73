"""The one per-frame detections type that every detector stage takes and returns.

Why one type: the motion gate, the backend, the tracker and the rules all talk
about "the people in this frame of this camera"; with one immutable record the
stages compose, and no stage can change what an earlier stage saw (each returns
a new instance through :func:`dataclasses.replace`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from cctv.contracts import Box

PERSON_CLASS = 0
LABELS = {PERSON_CLASS: "person"}

Region = tuple[int, int, int, int]
"""An axis-aligned pixel rectangle (x1, y1, x2, y2), x2/y2 exclusive."""


@dataclass(frozen=True)
class RawBoxes:
    """What a backend found in one image, before any camera context is attached."""

    boxes: np.ndarray  # (N, 4) float32 xyxy pixels of the image given to the backend
    confidences: np.ndarray  # (N,) float32 in [0, 1]
    class_ids: np.ndarray  # (N,) int32, COCO ids (0 = person)

    @classmethod
    def empty(cls) -> RawBoxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True, eq=False)
class Detections:
    """People in one frame of one camera, as far as the pipeline has got with them.

    ``track_ids`` is None until the tracker ran. ``inferred`` says whether the
    backend looked at this frame or the motion gate carried the previous frame's
    boxes forward (nothing moved, so nothing changed). ``appearance`` is None or
    one :mod:`detector.appearance` descriptor per box, (N, D) float32, a NaN row
    where a box shows nothing; it describes these boxes in this order, so a stage
    that changes the boxes must recompute or clear it (:meth:`with_raw` clears it).
    """

    camera_id: str
    seq: int
    capture_ts: datetime
    width: int
    height: int
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    confidences: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    track_ids: np.ndarray | None = None
    inferred: bool = False
    motion_fraction: float = 0.0
    motion_regions: tuple[Region, ...] = ()
    appearance: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or len(self.confidences) != n or len(self.class_ids) != n:
            raise ValueError(
                f"inconsistent detections: boxes {self.boxes.shape}, confidences {len(self.confidences)}, "
                f"class_ids {len(self.class_ids)}"
            )
        if self.track_ids is not None and len(self.track_ids) != n:
            raise ValueError(f"track_ids has {len(self.track_ids)} entries for {n} boxes")
        if self.appearance is not None and (self.appearance.ndim != 2 or len(self.appearance) != n):
            raise ValueError(f"appearance has shape {self.appearance.shape} for {n} boxes, expected (N, D)")

    def __len__(self) -> int:
        return len(self.boxes)

    def with_raw(self, raw: RawBoxes) -> Detections:
        """The backend's output attached to this frame (tracks and appearance cleared: they describe
        other boxes)."""
        return dataclasses.replace(
            self,
            boxes=raw.boxes.astype(np.float32, copy=True),
            confidences=raw.confidences.astype(np.float32, copy=True),
            class_ids=raw.class_ids.astype(np.int32, copy=True),
            track_ids=None,
            appearance=None,
            inferred=True,
        )

    def bottom_centres(self) -> np.ndarray:
        """(N, 2) bottom-centre points normalised to [0, 1]: where a person stands on the ground."""
        if not len(self):
            return np.zeros((0, 2), np.float64)
        x = (self.boxes[:, 0] + self.boxes[:, 2]) / 2.0 / self.width
        y = self.boxes[:, 3] / self.height
        return np.stack([x, y], axis=1).astype(np.float64)

    def to_boxes(self, only_tracks: set[int] | None = None) -> tuple[Box, ...]:
        """Contract boxes (clipped to the frame), optionally only for some track ids."""
        out = []
        for i in range(len(self)):
            track = int(self.track_ids[i]) if self.track_ids is not None else None
            if only_tracks is not None and track not in only_tracks:
                continue
            x1, y1, x2, y2 = (float(v) for v in self.boxes[i])
            out.append(
                Box(
                    x1=max(0.0, x1),
                    y1=max(0.0, y1),
                    x2=min(float(self.width), x2),
                    y2=min(float(self.height), y2),
                    confidence=float(np.clip(self.confidences[i], 0.0, 1.0)),
                    label=LABELS.get(int(self.class_ids[i]), str(int(self.class_ids[i]))),
                    track_id=track,
                )
            )
        return tuple(out)
