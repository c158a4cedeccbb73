"""The operator's snapshot of an incident event: the frame with the zone, the people and what changed drawn.

Drawn on a copy: the decoded frame is shared with other stages, and the
evidential master is the ingested JPEG in Kafka, never this picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from cctv.rule_config import Zone
from detector.detections import Detections, Region
from detector.zones import polygon_pixels

ZONE_COLOUR = (0, 200, 255)  # BGR amber
SUBJECT_COLOUR = (0, 0, 255)  # red: the people the incident is about
OTHER_COLOUR = (0, 255, 0)  # green: everyone else
CHANGE_COLOUR = (255, 0, 255)  # magenta: the region a vandalism rule found changed
SNAPSHOT_QUALITY = 85


def render_snapshot(
    frame_bgr: np.ndarray,
    detections: Detections | None,
    zone: Zone | None,
    subjects: set[int],
    caption: str,
    change_region: Region | None = None,
) -> bytes:
    """``detections`` None: draw no people (the "before" frame of a change, whose people are not known)."""
    canvas = frame_bgr.copy()
    height, width = canvas.shape[:2]
    if zone is not None:
        cv2.polylines(canvas, [polygon_pixels(zone.polygon, width, height)], True, ZONE_COLOUR, 2)
    if change_region is not None:
        x1, y1, x2, y2 = change_region
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), CHANGE_COLOUR, 2)
        cv2.putText(canvas, "changed", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, CHANGE_COLOUR, 1)
    for i, box in enumerate(detections.boxes if detections is not None else ()):
        track = int(detections.track_ids[i]) if detections and detections.track_ids is not None else None
        colour = SUBJECT_COLOUR if track in subjects else OTHER_COLOUR
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        if track is not None:
            cv2.putText(canvas, f"#{track}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    cv2.putText(canvas, caption[:90], (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    ok, jpeg = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, SNAPSHOT_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the snapshot JPEG")
    return jpeg.tobytes()
