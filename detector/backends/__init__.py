"""Detector backends: an explicit registry of one base class's subclasses.

The same registry builds the person detector (``settings.backend``) and the
trained classifier (``settings.classifier.backend``: graffiti, fights, ...), so
a new kind of model plugs in as one subclass and one reviewed line in
``BACKENDS``. ``yolo`` imports torch/ultralytics only when a YOLO backend is
built, so the HOG default starts in well under a second.
"""

from __future__ import annotations

from cctv.config import DetectorSettings
from detector.backends.base import DetectorBackend, DetectorConfigError
from detector.backends.hog import HogBackend
from detector.backends.yolo import YoloBackend

BACKENDS: dict[str, type[DetectorBackend]] = {"hog": HogBackend, "yolo": YoloBackend}


def _build(name: str, settings: DetectorSettings, what: str) -> DetectorBackend:
    backend = BACKENDS.get(name)
    if backend is None:
        raise DetectorConfigError(
            f"unknown {what} backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}"
        )
    return backend.from_settings(settings)


def make_backend(settings: DetectorSettings) -> DetectorBackend:
    """The backend named by ``settings.backend``; an unknown name is a clear error."""
    return _build(settings.backend, settings, "detector")


def classifier_settings(settings: DetectorSettings) -> DetectorSettings:
    """What the classifier backend is built from: its own backend, model and confidence, every class of its
    model, and the rest (models_dir, device, half, batch size) shared with the person detector."""
    model = settings.classifier
    if model is None:
        raise DetectorConfigError("no classifier model configured (detector.classifier)")
    update = {
        "backend": model.backend,
        "model": model.model,
        "confidence": model.confidence,
        "detect_classes": None,
        "classifier": None,
    }
    return DetectorSettings.model_validate({**settings.model_dump(), **update})


def make_classifier(settings: DetectorSettings) -> DetectorBackend:
    """The classifier backend named by ``settings.classifier.backend``; an unknown name is a clear error."""
    derived = classifier_settings(settings)
    return _build(derived.backend, derived, "classifier")


__all__ = [
    "BACKENDS",
    "DetectorBackend",
    "DetectorConfigError",
    "HogBackend",
    "YoloBackend",
    "classifier_settings",
    "make_backend",
    "make_classifier",
]
