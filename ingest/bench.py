"""Ingest throughput per core: render a simulated camera, encode JPEG, hash (what one capture thread does).

Used by `cctv bench`; also runnable: ``python -m ingest.bench [seconds]``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass

import cv2

from ingest.frames import encode_jpeg
from ingest.sim import scene_from_url


@dataclass(frozen=True)
class EncodeBench:
    frames: int
    seconds: float
    fps: float  # frames per second rendered + encoded + hashed on one core
    encode_fps: float  # encode + hash only (what a real camera costs after decode)
    mean_jpeg_bytes: float


def measure_encode_fps(
    seconds: float = 5.0, source: str = "sim://walkers?seed=1&size=768x576", quality: int = 90
) -> EncodeBench:
    """Frames/s of render + JPEG(quality) + SHA-256 on one core (OpenCV limited to one thread)."""
    scene = scene_from_url(source)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        frames, encode_time, total_bytes = 0, 0.0, 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            image, _ = scene.render(frames / 3.0, frames)
            t0 = time.perf_counter()
            data = encode_jpeg(image, quality)
            hashlib.sha256(data).hexdigest()
            encode_time += time.perf_counter() - t0
            total_bytes += len(data)
            frames += 1
        elapsed = time.perf_counter() - start
    finally:
        cv2.setNumThreads(threads)
    return EncodeBench(
        frames=frames,
        seconds=elapsed,
        fps=frames / elapsed,
        encode_fps=frames / encode_time if encode_time else 0.0,
        mean_jpeg_bytes=total_bytes / max(1, frames),
    )


if __name__ == "__main__":
    result = measure_encode_fps(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
    print(
        f"sim 768x576 q90: {result.fps:.1f} frames/s render+encode+hash, "
        f"{result.encode_fps:.1f} frames/s encode+hash only, {result.mean_jpeg_bytes / 1000:.0f} KB/frame "
        f"({result.frames} frames in {result.seconds:.1f} s, one core)"
    )
