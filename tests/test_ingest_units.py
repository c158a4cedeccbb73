"""Pure ingest pieces: sampling by time, backoff, JPEG + SHA-256, file sources, the worker loop.

The worker tests drive :class:`IngestWorker` with a sink that keeps what it is
given (the Kafka sink is covered by the service tests) and with real sources:
simulated cameras and real video files written here with OpenCV.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from cctv.config import Camera, Resize
from cctv.contracts import CameraState, CameraStatus, FrameMessage, decode, encode
from cctv.runtime import Backoff
from ingest.frames import FrameSampler, build_frame_message, encode_jpeg
from ingest.sources import CapturedFrame, CorruptFrameError, OpenCVSource, SourceError, split_loop_flag
from ingest.worker import IngestWorker


def sampled(source_fps: float, target_fps: float, seconds: float, jitter_s: float = 0.0) -> int:
    rng = np.random.default_rng(0)
    sampler = FrameSampler(target_fps)
    times = np.arange(0, seconds, 1 / source_fps) + rng.uniform(
        -jitter_s, jitter_s, int(seconds * source_fps)
    )
    return sum(sampler.accept(float(t)) for t in times)


@pytest.mark.parametrize(
    ("source_fps", "target_fps", "expected"),
    [(25, 3, 30), (30, 5, 50), (12.5, 4, 40), (3, 3, 30), (2, 5, 20)],
)
def test_sampler_keeps_the_target_rate_by_capture_time(
    source_fps: float, target_fps: float, expected: int
) -> None:
    assert abs(sampled(source_fps, target_fps, 10.0) - expected) <= 1


def test_sampler_does_not_halve_a_source_at_exactly_the_target_rate_with_jitter() -> None:
    assert sampled(3, 3, 20.0, jitter_s=0.02) == 60


def test_sampler_restarts_its_schedule_after_a_stall() -> None:
    sampler = FrameSampler(2)
    assert sampler.accept(0.0)
    assert not sampler.accept(0.2)
    assert sampler.accept(10.0)  # the stream stalled for 10 s
    assert not sampler.accept(10.2)  # no burst of "catch-up" frames
    assert sampler.accept(10.5)


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    backoff = Backoff(initial=1, cap=30)
    assert [backoff.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 1


def camera(source: str = "sim://empty", **kw: object) -> Camera:
    return Camera.model_validate({"id": "cam-t", "name": "test", "source": source, **kw})


def test_frame_message_is_a_jpeg_whose_sha256_matches_and_survives_the_wire() -> None:
    ramp = np.add.outer(np.arange(120), np.arange(160)) % 256
    image = np.dstack([ramp, ramp[::-1], np.full_like(ramp, 90)]).astype(np.uint8)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    frame = build_frame_message(camera(jpeg_quality=75, fps=4), image, stream_id="s1", seq=7, capture_ts=at)
    assert frame.image[:2] == b"\xff\xd8"
    assert frame.sha256 == hashlib.sha256(frame.image).hexdigest()
    assert (frame.width, frame.height, frame.seq, frame.fps, frame.capture_ts) == (160, 120, 7, 4.0, at)
    decoded = cv2.imdecode(np.frombuffer(frame.image, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (120, 160, 3)
    assert float(np.abs(decoded.astype(int) - image.astype(int)).mean()) < 6
    value, headers = encode(frame)
    assert decode(FrameMessage, value, headers) == frame


def test_frame_message_honours_resize_and_quality() -> None:
    image = np.random.default_rng(2).integers(0, 255, (576, 768, 3), dtype=np.uint8)
    at = datetime.now(UTC)
    small = build_frame_message(
        camera(resize=Resize(width=320, height=240), jpeg_quality=50),
        image,
        stream_id="s",
        seq=0,
        capture_ts=at,
    )
    big = build_frame_message(camera(jpeg_quality=95), image, stream_id="s", seq=0, capture_ts=at)
    assert (small.width, small.height) == (320, 240)
    assert len(small.image) < len(big.image) / 4


@pytest.mark.parametrize(
    "bad",
    [np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4, 2), np.uint8)],
)
def test_undecodable_frames_raise_corrupt_frame_error(bad: np.ndarray) -> None:
    with pytest.raises(CorruptFrameError):
        encode_jpeg(bad, 90)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/data/clip.avi", ("/data/clip.avi", False)),
        ("/data/clip.avi?loop=1", ("/data/clip.avi", True)),
        ("file:///data/my%20clip.avi?loop=true", ("/data/my clip.avi", True)),
    ],
)
def test_file_urls_and_the_loop_flag(url: str, expected: tuple[str, bool]) -> None:
    assert split_loop_flag(url) == expected


def test_unknown_file_option_is_an_error_naming_it() -> None:
    with pytest.raises(SourceError, match="speed"):
        split_loop_flag("/data/clip.avi?speed=2")


# --------------------------------------------------------------------------- worker loop


class KeepingSink:
    """A FrameSink that keeps everything (thread-safe: the worker publishes from one thread)."""

    def __init__(self) -> None:
        self.frames: list[FrameMessage] = []
        self.statuses: list[CameraStatus] = []
        self.flushed = 0

    def publish_frame(self, frame: FrameMessage) -> None:
        self.frames.append(frame)

    def publish_status(self, status: CameraStatus) -> None:
        self.statuses.append(status)

    def flush(self) -> None:
        self.flushed += 1


def run_worker(cameras: list[Camera], seconds: float, **kw: object) -> KeepingSink:
    sink, stop = KeepingSink(), threading.Event()
    worker = IngestWorker(cameras, sink, stop, heartbeat_s=0.5, **kw)  # type: ignore[arg-type]
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive(), "worker did not stop"
    return sink


class EveryThirdFrameCorrupt:
    """A source whose every third frame cannot be decoded (what a damaged stream does)."""

    def __init__(self) -> None:
        self.n = 0

    def open(self) -> None:
        self.n = 0

    def read(self) -> CapturedFrame | None:
        time.sleep(0.02)
        self.n += 1
        if self.n % 3 == 0:
            raise CorruptFrameError("bad macroblock")
        image = np.full((48, 64, 3), self.n % 255, np.uint8)
        return CapturedFrame(image=image, capture_ts=datetime.now(UTC) + timedelta(seconds=self.n))

    def close(self) -> None:
        pass


def test_corrupt_frames_are_counted_as_dropped_and_the_camera_keeps_going() -> None:
    sink = run_worker([camera(fps=50)], 1.5, source_factory=lambda _c: EveryThirdFrameCorrupt())
    assert len(sink.frames) > 20
    assert [f.seq for f in sink.frames] == list(range(len(sink.frames)))
    final = sink.statuses[-1]
    assert final.state == CameraState.STOPPED
    assert final.frames_dropped >= len(sink.frames) // 2 - 2
    assert final.frames_sent == len(sink.frames)
    assert final.reconnects == 0
    assert sink.flushed == 1


def write_clip(path: Path, frames: int, fps: float = 20.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (160, 120))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((120, 160, 3), (i * 10) % 255, np.uint8))
    writer.release()
    return path


def test_file_source_is_paced_at_native_fps_and_loops(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.avi", 10, fps=20.0)
    source = OpenCVSource(f"file://{clip}?loop=1")
    source.open()
    try:
        frames = [source.read() for _ in range(25)]
    finally:
        source.close()
    assert all(f is not None for f in frames)
    stamps = [f.capture_ts for f in frames if f is not None]
    assert (stamps[-1] - stamps[0]).total_seconds() >= 24 / 20 * 0.9  # real time, not as fast as decode
    assert source.native_fps == pytest.approx(20.0)


def test_file_played_once_stops_the_camera_with_the_reason(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "once.avi", 10, fps=20.0)
    sink = run_worker([camera(str(clip), fps=10)], 2.0)
    assert 4 <= len(sink.frames) <= 6  # 0.5 s of video sampled at 10 fps
    stopped = [s for s in sink.statuses if s.state == CameraState.STOPPED]
    assert stopped and "end of stream" in (stopped[0].error or "")


def test_corrupt_and_missing_files_go_offline_with_a_clear_error_and_retry(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF" + bytes(np.random.default_rng(3).integers(0, 255, 50_000, dtype=np.uint8)))
    cameras = [
        Camera(id="corrupt", name="c", source=str(corrupt)),
        Camera(id="missing", name="m", source=str(tmp_path / "missing.mp4")),
        Camera(id="live", name="l", source="sim://walkers?seed=1&size=320x240", fps=5),
    ]
    sink = run_worker(cameras, 2.5, backoff_initial_s=0.2, backoff_cap_s=0.4)
    for cam in ("corrupt", "missing"):
        offline = [s for s in sink.statuses if s.camera_id == cam and s.state == CameraState.OFFLINE]
        assert offline, f"{cam}: no offline status"
        assert "cannot be opened" in (offline[-1].error or "") or "no decodable" in (offline[-1].error or "")
        assert max(s.reconnects for s in sink.statuses if s.camera_id == cam) >= 2
    assert {f.camera_id for f in sink.frames} == {"live"}
    assert len(sink.frames) >= 5
