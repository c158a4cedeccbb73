"""Frame sources: one small protocol, an OpenCV implementation and the simulated cameras.

Source URLs (``Camera.source``):
- ``rtsp://``, ``rtsps://``, ``http://``, ``https://``: a live stream through OpenCV's FFmpeg
  backend, with open and read timeouts so a dead camera never blocks its thread for long.
- ``file:///abs/clip.avi`` or ``/abs/clip.avi``: a video file, delivered in real time at the
  file's native fps (as a camera would), so dwell times in the file stay true. It plays once; add
  ``?loop=1`` (``file:///abs/clip.avi?loop=1`` or ``/abs/clip.avi?loop=1``) to loop forever. At the
  end of a file that does not loop, :meth:`FrameSource.read` returns ``None`` and the camera stops.
- ``sim://<scene>?...``: a simulated camera, see :mod:`ingest.sim`.

Protocol contract: ``open()`` raises :class:`SourceError` when the source cannot be opened;
``read()`` blocks until the next frame, returns ``None`` at the end of a finite source, raises
:class:`SourceError` when a live source stops delivering (the worker reconnects) and
:class:`CorruptFrameError` for one undecodable frame (the worker counts it and reads on).
"""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from cctv.config import Camera

DEFAULT_FILE_FPS = 25.0  # when a file does not say (FFmpeg reports 0 or NaN)


class SourceError(RuntimeError):
    """The source cannot be opened or stopped delivering; the text says why."""


class CorruptFrameError(ValueError):
    """One frame could not be decoded; the stream itself is still usable."""


class PersonBox(NamedTuple):
    """Ground truth of a simulated frame: who is where, box (x1, y1, x2, y2) in pixels."""

    person_id: int
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class CapturedFrame:
    image: npt.NDArray[np.uint8]  # BGR, as decoded
    capture_ts: datetime  # UTC wall clock when the frame was grabbed
    native_fps: float | None = None  # the source's own rate, when known
    truth: tuple[PersonBox, ...] | None = None  # exact people boxes, simulated sources only


class FrameSource(Protocol):
    def open(self) -> None: ...

    def read(self) -> CapturedFrame | None: ...

    def close(self) -> None: ...


def split_loop_flag(url: str) -> tuple[str, bool]:
    """``(location, loop)`` for a file URL or path; ``?loop=1`` (or true/yes) asks for looping."""
    base, _, query = url.partition("?")
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    unknown = set(params) - {"loop"}
    if unknown:
        raise SourceError(f"{url}: unknown file source option(s) {sorted(unknown)}; only ?loop=1 is known")
    loop = params.get("loop", ["0"])[-1].lower() in {"1", "true", "yes"}
    if base.startswith("file://"):
        base = urllib.parse.unquote(urllib.parse.urlparse(base).path)
    return base, loop


class OpenCVSource:
    """Any stream or file OpenCV's FFmpeg backend can decode.

    Files are paced at their native fps (``time.monotonic`` schedule) because
    the sampler drops frames by capture time: an unpaced file would be sampled
    as if hours passed in seconds.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0, pace: bool = True) -> None:
        self.url = url
        self.is_file = url.startswith(("file://", "/"))
        self.location, self.loop = split_loop_flag(url) if self.is_file else (url, False)
        self.timeout_ms = int(timeout_s * 1000)
        self.pace = pace and self.is_file
        self._capture: cv2.VideoCapture | None = None
        self.native_fps: float | None = None
        self._started = 0.0
        self._frames = 0  # frames delivered since open (or since the last loop restart)
        self._delivered_any = False

    def open(self) -> None:
        self.close()
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            self.timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            self.timeout_ms,
        ]
        capture = cv2.VideoCapture(self.location, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            what = (
                "file cannot be opened as video (missing, unreadable or corrupt)"
                if self.is_file
                else ("stream cannot be opened (unreachable, refused or not a video stream)")
            )
            raise SourceError(f"{self.location}: {what}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.native_fps = float(fps) if fps and np.isfinite(fps) and 0 < fps <= 240 else None
        self._capture = capture
        self._started = time.monotonic()
        self._frames = 0
        self._delivered_any = False

    def read(self) -> CapturedFrame | None:
        if self._capture is None:
            raise SourceError(f"{self.location}: read before open")
        ok, image = self._capture.read()
        if not ok:
            if not self.is_file:
                raise SourceError(f"{self.location}: stream stopped delivering frames")
            if not self._delivered_any:
                raise SourceError(f"{self.location}: file has no decodable frames (corrupt or not a video)")
            if not self.loop:
                return None
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._started, self._frames = time.monotonic(), 0
            ok, image = self._capture.read()
            if not ok:
                raise SourceError(f"{self.location}: cannot rewind the file to loop it")
        if image is None or image.size == 0 or image.dtype != np.uint8:
            raise CorruptFrameError(f"{self.location}: decoder returned an empty or non-8-bit frame")
        if self.pace:
            due = self._started + self._frames / (self.native_fps or DEFAULT_FILE_FPS)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self._frames += 1
        self._delivered_any = True
        return CapturedFrame(image=image, capture_ts=datetime.now(UTC), native_fps=self.native_fps)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def source_for(camera: Camera) -> FrameSource:
    """The source implementation for ``camera.source`` (by URL scheme)."""
    if camera.source.startswith("sim://"):
        from ingest.sim import SimSource, scene_from_url

        try:
            scene = scene_from_url(camera.source)
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        return SimSource(scene, fps=camera.fps)
    return OpenCVSource(camera.source)
