"""Hand-scripted people on the simulated street, for the loitering rule's appearance tests.

The street and its two real pedestrians (beige coat: sprite 0, black coat: sprite 1) come from
``ingest.sim_assets``; frames get sensor noise and a JPEG round trip as ingest sends them, and the
detections (track ids as a tracker would give them) are built by hand with a few pixels of box
jitter, so each test scripts exactly where a track breaks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from detector.appearance import DESCRIPTOR_SIZE, describe
from detector.detections import Detections
from ingest.sim_assets import background, scaled_sprite

W, H, FPS = 768, 576, 5.0
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
BEIGE, BLACK = 0, 1
FOOT_Y = 400.0  # where people stand unless a test says otherwise
PERSON_PX = 200


@dataclass(frozen=True)
class Person:
    track: int
    sprite: int
    x: float  # bottom-centre, pixels; the box may reach past the frame's side (walking out)
    mirrored: bool = False
    y: float = FOOT_Y


Script = list[list[Person]]  # frame by frame: who is detected (drawn in list order: later ones in front)


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=i / FPS)


def person_box(person: Person) -> tuple[int, int, int, int]:
    """The whole figure's box, unclipped."""
    sprite = scaled_sprite(person.sprite, PERSON_PX, person.mirrored)
    height, width = sprite.alpha.shape[:2]
    left, top = round(person.x - width / 2), round(person.y - height)
    return left, top, left + width, top + height


@functools.cache
def _noise(index: int) -> np.ndarray:
    return np.random.default_rng(index).normal(0.0, 2.5, (H, W, 3)).astype(np.float32)


@functools.lru_cache(maxsize=64)
def render(people: tuple[Person, ...], noise: int) -> np.ndarray:
    """The street with the people pasted in (cut at the frame's sides), sensor noise, through JPEG."""
    image = background(W, H).astype(np.float32) + _noise(noise)
    for person in people:
        sprite = scaled_sprite(person.sprite, PERSON_PX, person.mirrored)
        x1, y1, x2, y2 = person_box(person)
        cx1, cx2 = max(x1, 0), min(x2, W)
        alpha = sprite.alpha[:, cx1 - x1 : cx2 - x1]
        roi = image[y1:y2, cx1:cx2]
        roi[:] = roi * (1 - alpha) + sprite.bgr[:, cx1 - x1 : cx2 - x1] * alpha
    ok, jpeg = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)  # type: ignore[return-value]


def frames(script: Script, seed: int = 0) -> list[Detections]:
    """Tracked detections with descriptors: boxes jittered by up to 3 px and clipped to the frame's
    sides, as a detector's would be; frames with nobody are not rendered (nothing to describe)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, people in enumerate(script):
        boxes = np.array([person_box(p) for p in people], np.float32).reshape(-1, 4)
        boxes += rng.uniform(-3, 3, boxes.shape).astype(np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, W)
        looks = (
            describe(render(tuple(people), i % 4), boxes)
            if people
            else np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        )
        out.append(
            Detections(
                camera_id="cam",
                seq=i,
                capture_ts=at(i),
                width=W,
                height=H,
                boxes=boxes,
                confidences=np.full(len(people), 0.9, np.float32),
                class_ids=np.zeros(len(people), np.int32),
                track_ids=np.array([p.track for p in people], np.int64),
                inferred=True,
                appearance=looks,
            )
        )
    return out
