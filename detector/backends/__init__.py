"""Person detector backends: an explicit registry of one base class's subclasses.

``yolo`` imports torch/ultralytics only when a YOLO backend is built, so the HOG
default starts in well under a second.
"""

from __future__ import annotations

from cctv.config import DetectorSettings
from detector.backends.base import DetectorBackend, DetectorConfigError
from detector.backends.hog import HogBackend
from detector.backends.yolo import YoloBackend

BACKENDS: dict[str, type[DetectorBackend]] = {"hog": HogBackend, "yolo": YoloBackend}


def make_backend(settings: DetectorSettings) -> DetectorBackend:
    """The backend named by ``settings.backend``; an unknown name is a clear error."""
    backend = BACKENDS.get(settings.backend)
    if backend is None:
        raise DetectorConfigError(
            f"unknown detector backend {settings.backend!r}; choose one of: {', '.join(sorted(BACKENDS))}"
        )
    return backend.from_settings(settings)


__all__ = ["BACKENDS", "DetectorBackend", "DetectorConfigError", "HogBackend", "YoloBackend", "make_backend"]
