"""Per-camera state under interleaving: a camera's incidents do not depend on which other cameras share
the worker, how their frames are mixed into batches, or how the batches are cut.

Why: one detector worker serves many cameras (a consumer group over 12 partitions for 200 cameras), and
each Kafka poll returns frames of several cameras in arbitrary proportions. Every per-camera stage
(motion gate, tracker, loitering, tamper, area change) must see exactly its own camera's frames in order.
"""

from __future__ import annotations

import random

from cctv.config import Camera, CameraRegistry, DetectorSettings
from cctv.contracts import IncidentMessage
from detector.backends import make_backend
from detector.pipeline import DetectorPipeline, FrameInput
from ingest.sim import BENCH, WALL, scripted_frames

FPS = 4.0
SECONDS = 30.0


def _rect(area: tuple[float, float, float, float]) -> list[list[float]]:
    x1, y1, x2, y2 = area
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]


def _camera(camera_id: str, source: str) -> Camera:
    return Camera.model_validate(
        {
            "id": camera_id,
            "name": camera_id,
            "source": source,
            "fps": FPS,
            "tamper": {"hold_s": 5},
            "zones": [
                {"id": "bench", "polygon": _rect(BENCH), "rules": {"loitering": {"dwell_s": 8}}},
                {"id": "wall", "polygon": _rect(WALL), "rules": {"area_change": {}}},
            ],
        }
    )


CAMERAS = (
    _camera("loiter", "sim://loiterer?seed=1&dwell=14&start=1"),
    _camera("tag", "sim://graffiti?seed=1&dwell=6&start=1"),
    _camera("cover", "sim://tamper?seed=1&kind=cover&at=6&duration=15&walkers=1"),
)


def _pipeline() -> DetectorPipeline:
    settings = DetectorSettings(backend="hog", batch_size=2)  # small batches: waves get cut across calls
    return DetectorPipeline(CameraRegistry(cameras=CAMERAS), make_backend(settings), settings, pre_roll_s=3.0)


def _key(message: IncidentMessage) -> tuple[object, ...]:
    return (message.incident_id, message.event, message.rule, message.threshold_at, message.event_at,
            message.frames.start_offset, message.frames.end_offset, message.change_region)  # fmt: skip


def test_each_cameras_incidents_are_the_same_alone_and_interleaved() -> None:
    streams = {camera.id: scripted_frames(camera, SECONDS) for camera in CAMERAS}
    # Offsets as one partition per camera would give them: what evidence cuts by.
    inputs = {cam: [FrameInput(m, partition=i, offset=n) for n, m in enumerate(frames)]
              for i, (cam, frames) in enumerate(streams.items())}  # fmt: skip

    alone: dict[str, list[tuple[object, ...]]] = {}
    for cam, items in inputs.items():
        pipeline = _pipeline()
        alone[cam] = [_key(m) for m in pipeline.process(items).incidents]

    # Interleaved: random poll sizes, random mixing, each camera's own order kept.
    rng = random.Random(7)
    queues = {cam: list(items) for cam, items in inputs.items()}
    mixed = _pipeline()
    together: dict[str, list[tuple[object, ...]]] = {cam: [] for cam in inputs}
    while any(queues.values()):
        poll: list[FrameInput] = []
        for _ in range(rng.randint(1, 9)):
            ready = [cam for cam, q in queues.items() if q]
            if not ready:
                break
            poll.append(queues[rng.choice(ready)].pop(0))
        for message in mixed.process(poll).incidents:
            together[message.camera_id].append(_key(message))

    assert {cam: sorted(map(repr, keys)) for cam, keys in together.items()} == {
        cam: sorted(map(repr, keys)) for cam, keys in alone.items()
    }
    # And the scenes did what they script: each camera raised its own kind of incident, and only that.
    rules = {cam: {k[2] for k in keys} for cam, keys in alone.items()}
    assert rules == {"loiter": {"loitering"}, "tag": {"area_change"}, "cover": {"tamper"}}, rules
