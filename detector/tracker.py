"""Per-camera ByteTrack: gives each person a track id that survives from frame to frame.

Why one tracker per camera and our own adapter instead of ``model.track()``:
ultralytics' built-in tracking keeps one tracker per predictor, so frames of
interleaved cameras would be associated with each other; it also counts
``track_buffer`` in frames at an assumed 30 fps. Here each camera has its own
:class:`BYTETracker`, ``track_buffer`` is derived from seconds and the camera's
real analytics fps, and frames the motion gate skipped still count as elapsed
frames, so a lost track is retired after the same capture time whatever the gate did.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from types import SimpleNamespace

import numpy as np

import detector.offline  # noqa: F401  (before ultralytics)
from detector.detections import Detections

BYTETRACK_DEFAULTS = {  # ultralytics/cfg/trackers/bytetrack.yaml, with track_buffer replaced by seconds
    "tracker_type": "bytetrack",
    "track_high_thresh": 0.25,
    "track_low_thresh": 0.1,
    "new_track_thresh": 0.25,
    "match_thresh": 0.8,
    "fuse_score": True,
}


class _TrackerInput:
    """The results-like object ``BYTETracker.update`` reads: ``conf``, ``cls``, ``xywh`` (centre-based),
    ``len()`` and boolean-mask indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy = xyxy.astype(np.float32)
        self.conf = conf.astype(np.float32)
        self.cls = cls.astype(np.float32)

    @property
    def xywh(self) -> np.ndarray:
        xy = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2.0
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([xy, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: np.ndarray) -> _TrackerInput:
        return _TrackerInput(self.xyxy[index], self.conf[index], self.cls[index])


class CameraTracker:
    """ByteTrack for one camera; :meth:`update` returns the detections with ``track_ids`` set.

    Memory stays bounded: ByteTrack drops lost tracks after ``track_buffer_s``
    and keeps at most 1000 removed ones (ultralytics' ``merge_track_pools``).
    """

    def __init__(self, fps: float, track_buffer_s: float = 2.0) -> None:
        from ultralytics.trackers.basetrack import TrackState
        from ultralytics.trackers.byte_tracker import BYTETracker

        self._lost_state = TrackState.Lost

        self.fps = fps
        buffer_frames = max(1, round(track_buffer_s * fps))
        self._tracker = BYTETracker(SimpleNamespace(**BYTETRACK_DEFAULTS, track_buffer=buffer_frames))
        self._last_ts: datetime | None = None

    @property
    def alive(self) -> bool:
        """Someone is tracked or recently lost: the motion gate should keep re-checking."""
        # ultralytics leaves a just-removed track in lost_stracks until the next update: check its state.
        lost = [t for t in self._tracker.lost_stracks if t.state == self._lost_state]
        return bool(self._tracker.tracked_stracks or lost)

    def update(self, detections: Detections) -> Detections:
        if self._last_ts is not None:
            elapsed = round((detections.capture_ts - self._last_ts).total_seconds() * self.fps)
            # BYTETracker adds 1 itself; advance it by the frames the gate skipped in between.
            self._tracker.frame_id += max(0, elapsed - 1)
        self._last_ts = detections.capture_ts
        people = detections.class_ids == 0
        source_index = np.flatnonzero(people)
        tracked = self._tracker.update(
            _TrackerInput(
                detections.boxes[people], detections.confidences[people], detections.class_ids[people]
            )
        )
        if not len(tracked):
            return dataclasses.replace(
                detections,
                boxes=np.zeros((0, 4), np.float32),
                confidences=np.zeros(0, np.float32),
                class_ids=np.zeros(0, np.int32),
                track_ids=np.zeros(0, np.int64),
            )
        tracked = tracked.reshape(-1, 8)
        # Report the detector's own box for the matched detection (what evidence shows), not the Kalman box.
        index = source_index[tracked[:, 7].astype(np.int64)]
        return dataclasses.replace(
            detections,
            boxes=detections.boxes[index].copy(),
            confidences=detections.confidences[index].copy(),
            class_ids=detections.class_ids[index].copy(),
            track_ids=tracked[:, 4].astype(np.int64),
        )
