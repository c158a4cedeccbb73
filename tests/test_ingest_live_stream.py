"""A real live network camera: a static ffmpeg serves a clip over HTTP; ingest reads it, then loses it.

Why HTTP and not RTSP: this ffmpeg build cannot act as an RTSP server
(``-f rtsp -rtsp_flags listen`` answers "Connection refused"), while
``-listen 1`` HTTP serving works; both go through the same OpenCV/FFmpeg
network path in :class:`ingest.sources.OpenCVSource`.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_ingest_units import run_worker

from cctv.config import Camera
from cctv.contracts import CameraState

PORT = 18554 + int(os.environ.get("CCTV_TEST_PORT_OFFSET", "100"))


@pytest.fixture
def live_camera(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="imageio-ffmpeg provides the stream server")
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (320, 240))
    for i in range(30):
        writer.write(np.full((240, 320, 3), (i * 8) % 255, np.uint8))
    writer.release()
    url = f"http://127.0.0.1:{PORT}/cam.ts"
    server = subprocess.Popen(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
         "-c:v", "mpeg4", "-f", "mpegts", "-listen", "1", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # let it listen
    try:
        yield url, server
    finally:
        server.kill()
        server.wait(timeout=10)


def test_live_stream_is_ingested_and_a_lost_stream_goes_offline_and_retries(
    live_camera: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, server = live_camera
    killer = threading.Timer(4.0, server.kill)  # the camera dies mid-stream
    killer.start()
    try:
        sink = run_worker([Camera(id="live", name="l", source=url, fps=5)], 8.0, backoff_initial_s=0.5)
    finally:
        killer.cancel()
    assert len(sink.frames) >= 5, "no frames from the live stream"
    assert all((f.width, f.height) == (320, 240) for f in sink.frames)
    states = [s.state for s in sink.statuses]
    assert CameraState.ONLINE in states
    offline = [s for s in sink.statuses if s.state == CameraState.OFFLINE]
    assert offline, f"losing the stream was not reported: {states}"
    assert "stopped delivering" in (offline[0].error or "") or "cannot be opened" in (offline[0].error or "")
    assert sink.statuses[-1].reconnects >= 1
