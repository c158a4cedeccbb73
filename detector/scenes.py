"""Synthetic scenes with a real person in them, for tests and the benchmark.

A real pedestrian cut out of ultralytics' ``bus.jpg`` (shipped in the wheel) is
pasted onto a textured background at scripted positions, so real detectors
(HOG, pretrained YOLO) see a real person, and the expected dwell time is known
exactly because capture times are scripted too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

import detector.offline  # noqa: F401  (before ultralytics)
from cctv.contracts import FrameMessage, sha256_hex

WIDTH, HEIGHT = 768, 576
PERSON_BOX = (48, 398, 245, 903)  # the man on the left of bus.jpg (x1, y1, x2, y2)
PERSON_HEIGHT = 260  # pixels: HOG finds him reliably at 200-320 (measured)


def bus_image_path() -> Path:
    import ultralytics

    return Path(ultralytics.__file__).parent / "assets" / "bus.jpg"


def person_cutout(height: int = PERSON_HEIGHT) -> np.ndarray:
    bus = cv2.imread(str(bus_image_path()))
    if bus is None:
        raise FileNotFoundError(f"cannot read {bus_image_path()}")
    x1, y1, x2, y2 = PERSON_BOX
    crop = bus[y1 - 20 : y2 + 10, x1 - 10 : x2 + 10]
    return cv2.resize(
        crop, (round(crop.shape[1] * height / crop.shape[0]), height), interpolation=cv2.INTER_AREA
    )


def background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(80, 150, HEIGHT, dtype=np.float32)[:, None, None] * np.ones((1, WIDTH, 3), np.float32)
    texture = rng.integers(0, 20, (HEIGHT, WIDTH, 1)).astype(np.float32)
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def compose(bg: np.ndarray, person: np.ndarray, feet: tuple[float, float] | None) -> np.ndarray:
    """The background with the person's bottom-centre at ``feet`` (normalised), or empty when None."""
    frame = bg.copy()
    if feet is None:
        return frame
    h, w = person.shape[:2]
    x = round(feet[0] * WIDTH - w / 2)
    y = round(feet[1] * HEIGHT - h)
    fx1, fy1, fx2, fy2 = max(0, x), max(0, y), min(WIDTH, x + w), min(HEIGHT, y + h)
    if fx1 < fx2 and fy1 < fy2:
        frame[fy1:fy2, fx1:fx2] = person[fy1 - y : fy2 - y, fx1 - x : fx2 - x]
    return frame


@dataclass(frozen=True)
class Scene:
    camera_id: str
    fps: float
    feet: Sequence[tuple[float, float] | None]  # one entry per frame
    start: datetime = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

    def frames(self, jpeg_quality: int = 90) -> Iterator[FrameMessage]:
        bg, person = background(), person_cutout()
        stream = str(uuid.uuid4())
        for seq, feet in enumerate(self.feet):
            ok, jpeg = cv2.imencode(
                ".jpg", compose(bg, person, feet), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
            )
            assert ok
            at = self.start + timedelta(seconds=seq / self.fps)
            data = jpeg.tobytes()
            yield FrameMessage(
                camera_id=self.camera_id,
                stream_id=stream,
                seq=seq,
                capture_ts=at,
                ingest_ts=at + timedelta(milliseconds=30),
                width=WIDTH,
                height=HEIGHT,
                sha256=sha256_hex(data),
                fps=self.fps,
                image=data,
            )


def walk(start: tuple[float, float], end: tuple[float, float], frames: int) -> list[tuple[float, float]]:
    return [
        (
            start[0] + (end[0] - start[0]) * i / max(1, frames - 1),
            start[1] + (end[1] - start[1]) * i / max(1, frames - 1),
        )
        for i in range(frames)
    ]


def loiterer_scene(camera_id: str, fps: float = 5.0, stand_s: float = 6.0) -> Scene:
    """Walks into the middle, stands ``stand_s``, walks out to the left edge (still visible), then leaves."""
    stand = (0.5, 0.85)
    feet: list[tuple[float, float] | None] = [None] * 3
    feet += walk((0.85, 0.85), stand, 6)
    feet += [stand] * round(stand_s * fps)
    feet += walk(stand, (0.12, 0.85), 6)
    feet += [(0.12, 0.85)] * 5
    feet += [None] * 5
    return Scene(camera_id, fps, feet)


def walker_scene(camera_id: str, fps: float = 5.0) -> Scene:
    """Crosses the frame at walking pace without stopping."""
    feet: list[tuple[float, float] | None] = [None] * 3
    feet += walk((0.9, 0.85), (0.1, 0.85), 16)
    feet += [None] * 4
    return Scene(camera_id, fps, feet)
