"""`run_ingest` against the real broker: frames and heartbeats on Kafka, dead cameras reported."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict

import pytest
from kafka import TopicPartition

from cctv.bus import make_consumer
from cctv.config import Camera, CameraRegistry, Settings
from cctv.contracts import CameraState, CameraStatus, FrameMessage, decode
from ingest.worker import run_ingest

pytestmark = pytest.mark.service


def read_topic(settings: Settings, topic: str, quiet_s: float = 2.0) -> list[tuple[str, bytes, list]]:
    """Every record of ``topic`` (all partitions, from the start) until nothing new for ``quiet_s``."""
    consumer = make_consumer(settings.kafka, "ingest-test-reader", None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        out: list[tuple[str, bytes, list]] = []
        last_new = time.monotonic()
        while time.monotonic() - last_new < quiet_s:
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    out.append((r.key.decode(), r.value, list(r.headers or [])))
                    last_new = time.monotonic()
        return out
    finally:
        consumer.close()


def test_sim_cameras_flow_while_a_dead_camera_is_reported_offline(settings: Settings) -> None:
    registry = CameraRegistry(
        cameras=(
            Camera(id="cam-a", name="a", source="sim://walkers?seed=1", fps=4),
            Camera(id="cam-b", name="b", source="sim://loiterer?seed=2&start=0", fps=3),
            Camera(id="cam-dead", name="dead", source="rtsp://127.0.0.1:1/none", fps=3),
            Camera(id="cam-off", name="off", source="sim://empty", enabled=False),
        )
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_ingest(settings, registry, stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(8.0)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive(), "run_ingest did not return after stop"
    assert not errors, errors

    frames: dict[str, list[FrameMessage]] = defaultdict(list)
    for key, value, headers in read_topic(settings, settings.kafka.frames_topic):
        frame = decode(FrameMessage, value, headers)  # checks the sha256 against the bytes
        assert key == frame.camera_id
        frames[key].append(frame)
    assert set(frames) == {"cam-a", "cam-b"}
    for cam, fps in (("cam-a", 4), ("cam-b", 3)):
        got = frames[cam]
        assert len(got) >= 4 * fps, f"{cam}: only {len(got)} frames in ~7 s"
        assert len({f.stream_id for f in got}) == 1
        assert [f.seq for f in got] == list(range(len(got)))  # one partition per camera keeps order
        assert all((f.width, f.height, f.fps) == (768, 576, fps) for f in got)
        assert all(a.capture_ts < b.capture_ts for a, b in itertools.pairwise(got))

    statuses: dict[str, list[CameraStatus]] = defaultdict(list)
    for key, value, headers in read_topic(settings, settings.kafka.status_topic, quiet_s=1.0):
        status = decode(CameraStatus, value, headers)
        assert key == status.camera_id
        statuses[key].append(status)
    assert set(statuses) == {"cam-a", "cam-b", "cam-dead"}
    for cam in ("cam-a", "cam-b"):
        online = [s for s in statuses[cam] if s.state == CameraState.ONLINE]
        assert any(s.fps > 1 for s in online), f"{cam}: no heartbeat with a frame rate"
        assert statuses[cam][-1].state == CameraState.STOPPED
        assert statuses[cam][-1].frames_sent == len(frames[cam])
    dead = statuses["cam-dead"]
    offline = [s for s in dead if s.state == CameraState.OFFLINE]
    assert offline and "127.0.0.1:1" in (offline[-1].error or "")
    assert dead[-1].state == CameraState.STOPPED and dead[-1].reconnects >= 2  # retried at ~1 s and ~3 s
    assert dead[-1].frames_sent == 0


def test_unknown_camera_ids_are_refused(settings: Settings) -> None:
    registry = CameraRegistry(cameras=(Camera(id="cam-a", name="a", source="sim://empty"),))
    with pytest.raises(ValueError, match="cam-zz"):
        run_ingest(settings, registry, threading.Event(), camera_ids=["cam-a", "cam-zz"])
