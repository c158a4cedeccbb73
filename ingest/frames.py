"""Pure pieces of ingest: sample by capture time, encode and hash, back off between reconnects.

No I/O here, so each piece is unit-tested on synthetic arrays and timestamps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import cv2
import numpy as np
import numpy.typing as npt

from cctv.config import Camera
from cctv.contracts import FrameMessage
from ingest.sources import CorruptFrameError


class FrameSampler:
    """Keeps frames ``1/fps`` apart in *capture time* (never by count).

    Why by time: a camera's delivered rate drifts (25, 30, 12.5 fps, dropped
    packets, a paced file); counting frames would make the analytics rate, and
    so every dwell time, depend on it. A frame up to a quarter period early is
    accepted, so a source running at exactly ``fps`` is not halved by jitter;
    the schedule advances by whole periods, so the mean rate stays ``fps``.
    """

    def __init__(self, fps: float) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0")
        self.period = 1.0 / fps
        self.tolerance = 0.25 * self.period
        self._next_due: float | None = None

    def reset(self) -> None:
        self._next_due = None

    def accept(self, capture_s: float) -> bool:
        """Whether the frame captured at ``capture_s`` (seconds, any epoch) is kept."""
        if self._next_due is None:
            self._next_due = capture_s + self.period
            return True
        if capture_s < self._next_due - self.tolerance:
            return False
        self._next_due += self.period
        if self._next_due <= capture_s:  # the source stalled: restart the schedule from now
            self._next_due = capture_s + self.period
        return True


def encode_jpeg(image: npt.NDArray[np.uint8], quality: int) -> bytes:
    """JPEG bytes of a BGR (or grayscale) 8-bit image; :class:`CorruptFrameError` if it is not one."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        raise CorruptFrameError("frame is not a non-empty 8-bit image")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise CorruptFrameError(f"frame has unsupported shape {image.shape}")
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise CorruptFrameError("JPEG encoder refused the frame")
    return buffer.tobytes()


def build_frame_message(
    camera: Camera,
    image: npt.NDArray[np.uint8],
    *,
    stream_id: str,
    seq: int,
    capture_ts: datetime,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FrameMessage:
    """Resize (if the camera asks), encode, hash: the evidential master of one frame.

    The SHA-256 is taken over the exact bytes that go to Kafka, so every later
    copy can be checked against the hash recorded at ingest.
    """
    if camera.resize is not None and image.ndim >= 2 and image.size:
        size = (camera.resize.width, camera.resize.height)
        if (image.shape[1], image.shape[0]) != size:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)  # type: ignore[assignment]
    data = encode_jpeg(image, camera.jpeg_quality)
    return FrameMessage(
        camera_id=camera.id,
        stream_id=stream_id,
        seq=seq,
        capture_ts=capture_ts,
        ingest_ts=clock(),
        width=image.shape[1],
        height=image.shape[0],
        sha256=hashlib.sha256(data).hexdigest(),
        fps=camera.fps,
        image=data,
    )
