"""The detector worker against the real broker: simulated cameras in, incidents and dead letters out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from kafka import TopicPartition

from cctv.bus import ensure_topics, make_consumer, make_producer, send
from cctv.config import Camera, CameraRegistry, DetectorSettings, Settings
from cctv.contracts import DeadLetter, IncidentEvent, IncidentMessage, decode
from cctv.rule_config import LoiteringRuleConfig, Zone, ZoneRules
from detector.worker import run_detector
from ingest.sim import scene_from_url, scripted_frames

pytestmark = pytest.mark.service

ZONE = Zone(
    id="bench",
    name="Bench",
    polygon=((0.30, 0.60), (0.70, 0.60), (0.70, 0.98), (0.30, 0.98)),
    rules=ZoneRules(loitering=LoiteringRuleConfig(dwell_s=4.0, reentry_grace_s=1.0)),
)
LOITERER = Camera(id="cam-loiter", name="Loiter", source="sim://loiterer?dwell=6&start=0", zones=(ZONE,))
# Stands in the zone for 30 s, but the stream ends after 9 s: alerted at ~6 s, then never another frame.
SILENT = Camera(id="cam-silent", name="Dies", source="sim://loiterer?dwell=30&start=0&seed=1", zones=(ZONE,))
WALKER = Camera(id="cam-walk", name="Walk", source="sim://walkers?seed=5", zones=(ZONE,))  # 2 cross the zone
SILENCE_S = 2.0


def zone_visit(camera: Camera, seconds: float) -> tuple[float, float]:
    """Ground truth: scene times of the first and last frame with the person's bottom-centre in the zone."""
    scene = scene_from_url(camera.source)
    (x1, y1), _, (x2, y2), _ = ZONE.polygon
    w, h = scene.size
    inside = [
        i / camera.fps
        for i in range(int(seconds * camera.fps))
        for p in scene.people_at(i / camera.fps)
        if x1 <= (p.box[0] + p.box[2]) / 2 / w <= x2 and y1 <= p.box[3] / h <= y2
    ]
    return inside[0], inside[-1]


def read_all(
    settings: Settings, topic: str, parse: Callable[[bytes], object], until: Callable[[list], bool]
) -> list:
    consumer = make_consumer(settings.kafka, "test-reader", None)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: list = []
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and not until(found):
            for records in consumer.poll(timeout_ms=500).values():
                found += [parse(r.value) for r in records]
    finally:
        consumer.close()
    return found


def closed_both(found: list[IncidentMessage]) -> bool:
    return {i.camera_id for i in found if i.event == IncidentEvent.CLOSED} >= {LOITERER.id, SILENT.id}


def test_loiterer_alerts_once_walker_never_silent_camera_closes_and_bad_messages_are_dead_lettered(
    settings: Settings, unique: str
) -> None:
    detector = DetectorSettings(
        group_id=f"det-{unique}", batch_size=4, models_dir=Path("models"), camera_silence_s=SILENCE_S
    )
    settings = settings.model_copy(
        update={
            "detector": detector,
            "evidence": settings.evidence.model_copy(update={"pre_roll_s": 3.0}),
        }
    )
    registry = CameraRegistry(cameras=(LOITERER, SILENT, WALKER))
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka, "test-producer")
    loiter_frames = scripted_frames(LOITERER, 13.0)  # walks in, ~7 s in the zone, walks out, empty
    futures = []
    for i, frame in enumerate(loiter_frames):
        futures.append(send(producer, settings.kafka.frames_topic, frame.camera_id, frame))
        if i == 10:  # garbage in the middle of the camera's partition: the worker must keep going
            futures.append(
                producer.send(settings.kafka.frames_topic, key=b"cam-loiter", value=b"\xff\xd8 not a frame")
            )
    silent_frames = scripted_frames(SILENT, 9.0)
    silent_futures = [send(producer, settings.kafka.frames_topic, f.camera_id, f) for f in silent_frames]
    for frame in scripted_frames(WALKER, 10.0):
        futures.append(send(producer, settings.kafka.frames_topic, frame.camera_id, frame))
    stranger = scripted_frames(Camera(id="cam-unknown", name="?", source="sim://empty"), 0.2)[0]
    futures.append(send(producer, settings.kafka.frames_topic, stranger.camera_id, stranger))
    producer.flush()
    loiter_partition = futures[0].get(timeout=10).partition
    offsets = [
        f.get(timeout=10).offset for f in futures[:12] if f.get(timeout=10).partition == loiter_partition
    ]
    last_silent = silent_futures[-1].get(timeout=10)

    stop = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            run_detector(settings, registry, stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        incidents = read_all(
            settings,
            settings.kafka.incidents_topic,
            lambda v: decode(IncidentMessage, v),
            lambda found: closed_both(found) or bool(errors),
        )
        letters = read_all(
            settings, settings.kafka.dead_letter_topic, lambda v: decode(DeadLetter, v), lambda f: len(f) >= 2
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert not thread.is_alive()
    assert {i.camera_id for i in incidents} == {LOITERER.id, SILENT.id}  # the walker never alerts
    assert all(i.rule == "loitering" for i in incidents)

    loitering = [i for i in incidents if i.camera_id == LOITERER.id]
    assert [i.event for i in loitering] == [IncidentEvent.OPENED, IncidentEvent.CLOSED]
    opened, closed = loitering
    assert opened.incident_id == closed.incident_id and opened.zone_id == "bench"
    assert (opened.threshold_at - opened.started_at).total_seconds() >= 4.0
    assert 4.0 <= opened.dwell_s < 5.0 and closed.ended_at is not None
    assert "left the zone" in closed.summary or "track lost" in closed.summary
    entered, left = zone_visit(LOITERER, 13.0)  # ground truth, against the frames' own timeline
    start = loiter_frames[0].capture_ts
    assert abs((opened.started_at - start).total_seconds() - entered) <= 0.41  # two frames at 5 fps
    assert abs((closed.ended_at - start).total_seconds() - left) <= 0.41
    assert opened.frames.partition == loiter_partition
    assert opened.frames.start_offset == offsets[0]  # 3 s of pre-roll reach back to the first frame
    assert opened.frames.start_offset < opened.frames.end_offset < closed.frames.end_offset
    assert opened.boxes and opened.boxes[0].track_id == opened.track_ids[0]
    assert opened.detector.backend == "hog"
    snapshot = cv2.imdecode(np.frombuffer(opened.snapshot_jpeg or b"", np.uint8), cv2.IMREAD_COLOR)
    assert snapshot is not None and snapshot.shape[:2] == (576, 768)

    # The stream ended with the person still in the zone: closed for silence, on its last frame.
    silent = [i for i in incidents if i.camera_id == SILENT.id]
    assert [i.event for i in silent] == [IncidentEvent.OPENED, IncidentEvent.CLOSED]
    opened, closed = silent
    assert opened.incident_id == closed.incident_id
    assert closed.summary.endswith(f"camera silent for {SILENCE_S:g}s")
    assert closed.event_at == silent_frames[-1].capture_ts
    assert closed.frames.partition == last_silent.partition
    assert closed.frames.end_offset == last_silent.offset
    assert closed.frames.start_offset == opened.frames.start_offset
    assert closed.ended_at is not None and closed.event_at - closed.ended_at <= timedelta(seconds=1)

    reasons = sorted(letter.reason for letter in letters)
    assert len(letters) == 2
    assert any("invalid frame message" in r and "cctv-meta" in r for r in reasons)
    assert any("'cam-unknown' is not in the camera registry" in r for r in reasons)
