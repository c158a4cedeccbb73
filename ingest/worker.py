"""The ingest worker: many cameras, one capture thread each, one publisher loop.

Why threads per camera: reads block (a camera delivers when it delivers, a
dead RTSP host blocks until its timeout), and OpenCV decode/resize/JPEG release
the GIL, so capture threads also spread the encoding over the cores.

Each capture thread samples by capture time, encodes and hashes, and appends to
its camera's bounded queue; when the publisher is behind, the oldest queued
frame is dropped and counted (live video: the newest frame matters, memory
stays bounded). The publisher thread (the caller of :meth:`IngestWorker.run`)
drains the queues round-robin into the injected :class:`FrameSink` and sends a
:class:`~cctv.contracts.CameraStatus` per camera on every state change and
every ``heartbeat_s``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from kafka import KafkaProducer

from cctv.bus import ensure_topics, make_producer, require_crc32c, send, worker_name
from cctv.config import Camera, CameraRegistry, KafkaSettings, Settings
from cctv.contracts import CameraState, CameraStatus, FrameMessage
from cctv.runtime import Backoff
from ingest.frames import FrameSampler, build_frame_message
from ingest.sources import CorruptFrameError, FrameSource, SourceError, source_for

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_CORRUPT = 50  # then the stream is treated as broken and reopened


class FrameSink(Protocol):
    def publish_frame(self, frame: FrameMessage) -> None: ...

    def publish_status(self, status: CameraStatus) -> None: ...

    def flush(self) -> None: ...


class KafkaFrameSink:
    """Frames and heartbeats to Kafka, keyed by camera id (per-camera order on one partition)."""

    def __init__(self, producer: KafkaProducer, settings: KafkaSettings) -> None:
        self.producer, self.settings = producer, settings
        self.delivery_failures = 0

    def _failed(self, exc: BaseException) -> None:
        self.delivery_failures += 1
        log.warning("frame delivery failed (%d so far): %s", self.delivery_failures, exc)

    def publish_frame(self, frame: FrameMessage) -> None:
        send(self.producer, self.settings.frames_topic, frame.camera_id, frame).add_errback(self._failed)

    def publish_status(self, status: CameraStatus) -> None:
        send(self.producer, self.settings.status_topic, status.camera_id, status).add_errback(self._failed)

    def flush(self) -> None:
        self.producer.flush(timeout=30)


@dataclass
class _CameraRuntime:
    """Shared state of one camera between its capture thread and the publisher (under ``lock``)."""

    camera: Camera
    queue: deque[FrameMessage]
    lock: threading.Lock = field(default_factory=threading.Lock)
    state: CameraState = CameraState.CONNECTING
    error: str | None = None
    state_changed: bool = True
    frames_sent: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    last_frame_at: datetime | None = None
    sent_in_period: int = 0

    def set_state(self, state: CameraState, error: str | None = None) -> None:
        with self.lock:
            if state != self.state or error != self.error:
                self.state_changed = True
            self.state, self.error = state, error

    def drop(self, count: int = 1) -> None:
        with self.lock:
            self.frames_dropped += count


class IngestWorker:
    """Serves ``cameras`` until ``stop`` is set; sources, sink and clock are injected."""

    def __init__(
        self,
        cameras: Sequence[Camera],
        sink: FrameSink,
        stop: threading.Event,
        *,
        name: str = "ingest",
        heartbeat_s: float = 5.0,
        queue_per_camera: int = 8,
        source_factory: Callable[[Camera], FrameSource] = source_for,
        backoff_initial_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sink, self.stop, self.name = sink, stop, name
        self.heartbeat_s = heartbeat_s
        self.source_factory = source_factory
        self.backoff = (backoff_initial_s, backoff_cap_s)
        self.clock = clock
        self.cameras = [_CameraRuntime(c, deque(maxlen=queue_per_camera)) for c in cameras]
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ capture side

    def _capture_loop(self, rt: _CameraRuntime) -> None:
        backoff = Backoff(*self.backoff)
        first_attempt = True
        while not self.stop.is_set():
            if not first_attempt:
                with rt.lock:
                    rt.reconnects += 1
            first_attempt = False
            rt.set_state(CameraState.CONNECTING, rt.error)
            source: FrameSource | None = None
            try:
                source = self.source_factory(rt.camera)
                source.open()
                if self._stream(rt, source, backoff):
                    rt.set_state(CameraState.STOPPED, "end of stream (file played once; add ?loop=1 to loop)")
                    return
            except SourceError as exc:
                rt.set_state(CameraState.OFFLINE, str(exc))
            except Exception as exc:  # a bug in a source must not kill the other cameras
                log.exception("camera %s: unexpected source failure", rt.camera.id)
                rt.set_state(CameraState.OFFLINE, f"{type(exc).__name__}: {exc}")
            finally:
                if source is not None:
                    try:
                        source.close()
                    except Exception:
                        log.exception("camera %s: close failed", rt.camera.id)
            if self.stop.is_set():
                return
            self._wake.set()
            delay = backoff.next_delay()
            log.warning("camera %s offline (%s); reconnecting in %.0f s", rt.camera.id, rt.error, delay)
            self.stop.wait(delay)

    def _stream(self, rt: _CameraRuntime, source: FrameSource, backoff: Backoff) -> bool:
        """Read until stop (False), source error (raises) or end of a finite source (True)."""
        stream_id = str(uuid.uuid4())
        sampler = FrameSampler(rt.camera.fps)
        seq = 0
        corrupt_in_a_row = 0
        online = False
        while not self.stop.is_set():
            try:
                captured = source.read()
            except CorruptFrameError as exc:
                rt.drop()
                corrupt_in_a_row += 1
                log.warning("camera %s: dropped an undecodable frame: %s", rt.camera.id, exc)
                if corrupt_in_a_row >= MAX_CONSECUTIVE_CORRUPT:
                    raise SourceError(f"{corrupt_in_a_row} undecodable frames in a row: {exc}") from exc
                continue
            if captured is None:
                return True
            if not sampler.accept(captured.capture_ts.timestamp()):
                continue
            try:
                frame = build_frame_message(
                    rt.camera, captured.image, stream_id=stream_id, seq=seq,
                    capture_ts=captured.capture_ts, clock=self.clock,
                )  # fmt: skip
            except CorruptFrameError as exc:
                rt.drop()
                corrupt_in_a_row += 1
                log.warning("camera %s: dropped a frame that cannot be encoded: %s", rt.camera.id, exc)
                continue
            corrupt_in_a_row = 0
            seq += 1
            if not online:
                online = True
                backoff.reset()  # only a delivered frame proves the connection works
                rt.set_state(CameraState.ONLINE)
            with rt.lock:
                if len(rt.queue) == rt.queue.maxlen:
                    rt.frames_dropped += 1  # deque(maxlen) evicts the oldest on append
                rt.queue.append(frame)
            self._wake.set()
        return False

    # ------------------------------------------------------------------ publisher side

    def _status(self, rt: _CameraRuntime, period_s: float, state: CameraState | None = None) -> CameraStatus:
        with rt.lock:
            fps = rt.sent_in_period / period_s if period_s > 0 else 0.0
            rt.sent_in_period = 0
            rt.state_changed = False
            return CameraStatus(
                camera_id=rt.camera.id,
                state=state or rt.state,
                at=self.clock(),
                fps=round(fps, 3),
                last_frame_at=rt.last_frame_at,
                frames_sent=rt.frames_sent,
                frames_dropped=rt.frames_dropped,
                reconnects=rt.reconnects,
                error=rt.error,
                worker=self.name,
            )

    def _publish_frames(self) -> int:
        """One frame per camera per round until the queues are empty; returns how many went out."""
        published = 0
        while True:
            round_count = 0
            for rt in self.cameras:
                with rt.lock:
                    frame = rt.queue.popleft() if rt.queue else None
                if frame is None:
                    continue
                try:
                    self.sink.publish_frame(frame)
                except Exception as exc:  # broker trouble: the frame is lost, count it, keep going
                    log.warning("camera %s: publishing a frame failed: %s", rt.camera.id, exc)
                    rt.drop()
                    continue
                with rt.lock:
                    rt.frames_sent += 1
                    rt.sent_in_period += 1
                    rt.last_frame_at = frame.capture_ts
                round_count += 1
            published += round_count
            if round_count == 0:
                return published

    def _publish_status(self, rt: _CameraRuntime, period_s: float, state: CameraState | None = None) -> None:
        try:
            self.sink.publish_status(self._status(rt, period_s, state))
        except Exception as exc:
            log.warning("camera %s: publishing status failed: %s", rt.camera.id, exc)

    def run(self) -> None:
        """Capture threads start; this thread publishes until ``stop``, then drains and flushes."""
        for rt in self.cameras:
            thread = threading.Thread(
                target=self._capture_loop, args=(rt,), name=f"capture-{rt.camera.id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        period_start = time.monotonic()
        try:
            while not self.stop.is_set():
                self._wake.clear()
                self._publish_frames()
                now = time.monotonic()
                heartbeat = now - period_start >= self.heartbeat_s
                for rt in self.cameras:
                    if heartbeat or rt.state_changed:
                        self._publish_status(rt, now - period_start if heartbeat else 0.0)
                if heartbeat:
                    period_start = now
                self._wake.wait(0.1)
        finally:
            for thread in self._threads:
                thread.join(timeout=15)  # a blocked RTSP read ends at its read timeout
            self._publish_frames()
            period = time.monotonic() - period_start
            for rt in self.cameras:
                self._publish_status(rt, period, CameraState.STOPPED)
            self.sink.flush()


def select_cameras(registry: CameraRegistry, camera_ids: Sequence[str] | None) -> list[Camera]:
    """Enabled cameras, restricted to ``camera_ids`` when given (unknown ids are an error)."""
    if camera_ids is None:
        return [c for c in registry.cameras if c.enabled]
    by_id = registry.by_id()
    unknown = sorted(set(camera_ids) - set(by_id))
    if unknown:
        raise ValueError(f"unknown camera id(s): {', '.join(unknown)}")
    chosen = [by_id[i] for i in dict.fromkeys(camera_ids)]
    for camera in chosen:
        if not camera.enabled:
            log.warning("camera %s is disabled in the registry; not ingesting it", camera.id)
    return [c for c in chosen if c.enabled]


def run_ingest(
    settings: Settings,
    registry: CameraRegistry,
    stop: threading.Event,
    camera_ids: Sequence[str] | None = None,
) -> None:
    """Entry point of `cctv ingest`: publish the cameras' frames and heartbeats until ``stop``."""
    require_crc32c()
    cameras = select_cameras(registry, camera_ids)
    ensure_topics(settings.kafka)
    name = worker_name("ingest")
    producer = make_producer(settings.kafka, name)
    try:
        log.info("ingesting %d camera(s): %s", len(cameras), ", ".join(c.id for c in cameras))
        IngestWorker(cameras, KafkaFrameSink(producer, settings.kafka), stop, name=name).run()
    finally:
        producer.close(timeout=10)
