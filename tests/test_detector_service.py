"""The detector worker against the real broker: scripted scenes in, incidents and dead letters out."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from kafka import TopicPartition

from cctv.bus import ensure_topics, make_consumer, make_producer, send
from cctv.config import (
    Camera,
    CameraRegistry,
    DetectorSettings,
    LoiteringRuleConfig,
    Settings,
    Zone,
    ZoneRules,
)
from cctv.contracts import DeadLetter, IncidentEvent, IncidentMessage, decode
from detector.scenes import loiterer_scene, walker_scene
from detector.worker import run_detector

pytestmark = pytest.mark.service

ZONE = Zone(
    id="doorway",
    name="Shop doorway",
    polygon=((0.3, 0.5), (0.7, 0.5), (0.7, 1.0), (0.3, 1.0)),
    rules=ZoneRules(loitering=LoiteringRuleConfig(dwell_s=4.0, reentry_grace_s=1.0)),
)


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


def test_loiterer_alerts_once_walker_never_and_bad_messages_are_dead_lettered(
    settings: Settings, unique: str
) -> None:
    settings = settings.model_copy(
        update={
            "detector": DetectorSettings(group_id=f"det-{unique}", batch_size=4, models_dir=Path("models")),
            "evidence": settings.evidence.model_copy(update={"pre_roll_s": 2.0}),
        }
    )
    registry = CameraRegistry(
        cameras=(
            Camera(id="cam-loiter", name="Loiter", source="sim://loiterer", zones=(ZONE,)),
            Camera(id="cam-walk", name="Walk", source="sim://walker", zones=(ZONE,)),
        )
    )
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka, "test-producer")
    loiter_frames = list(loiterer_scene("cam-loiter").frames())
    futures = []
    for i, frame in enumerate(loiter_frames):
        futures.append(send(producer, settings.kafka.frames_topic, frame.camera_id, frame))
        if i == 10:  # garbage in the middle of the camera's partition: the worker must keep going
            futures.append(
                producer.send(settings.kafka.frames_topic, key=b"cam-loiter", value=b"\xff\xd8 not a frame")
            )
    for frame in walker_scene("cam-walk").frames():
        futures.append(send(producer, settings.kafka.frames_topic, frame.camera_id, frame))
    stranger = next(iter(walker_scene("cam-unknown").frames()))
    futures.append(send(producer, settings.kafka.frames_topic, stranger.camera_id, stranger))
    producer.flush()
    loiter_partition = futures[0].get(timeout=10).partition
    offsets = [
        f.get(timeout=10).offset for f in futures[:12] if f.get(timeout=10).partition == loiter_partition
    ]

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
            lambda found: any(i.event == IncidentEvent.CLOSED for i in found) or bool(errors),
        )
        letters = read_all(
            settings, settings.kafka.dead_letter_topic, lambda v: decode(DeadLetter, v), lambda f: len(f) >= 2
        )
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert not thread.is_alive()

    loitering = [i for i in incidents if i.rule == "loitering"]
    assert {i.camera_id for i in incidents} == {"cam-loiter"}  # the walker never alerts
    assert [i.event for i in loitering] == [IncidentEvent.OPENED, IncidentEvent.CLOSED]
    opened, closed = loitering
    assert opened.incident_id == closed.incident_id and opened.zone_id == "doorway"
    assert (opened.threshold_at - opened.started_at).total_seconds() >= 4.0
    assert 4.0 <= opened.dwell_s < 5.0 and closed.ended_at is not None
    assert opened.frames.partition == loiter_partition
    assert opened.frames.start_offset == offsets[0]  # 2 s of pre-roll reach back to the first frame
    assert opened.frames.start_offset < opened.frames.end_offset < closed.frames.end_offset
    assert opened.boxes and opened.boxes[0].track_id == opened.track_ids[0]
    assert opened.detector.backend == "hog"
    snapshot = cv2.imdecode(np.frombuffer(opened.snapshot_jpeg or b"", np.uint8), cv2.IMREAD_COLOR)
    assert snapshot is not None and snapshot.shape[:2] == (576, 768)

    reasons = sorted(letter.reason for letter in letters)
    assert len(letters) == 2
    assert any("invalid frame message" in r and "cctv-meta" in r for r in reasons)
    assert any("'cam-unknown' is not in the camera registry" in r for r in reasons)
