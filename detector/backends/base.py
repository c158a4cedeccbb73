"""The base class of every detector backend: the person detector and the trained classifier alike.

Why a registry dict (``detector.backends.BACKENDS``) and not plugins discovered
at import: which code looked at the evidence is part of the chain of custody, so
the set of backends is a fixed, reviewable list and an unknown name is a
configuration error. A new model type (say a graffiti or fight classifier that
is not a YOLO) plugs in as one subclass and one reviewed line in that dict.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from cctv.config import DetectorSettings
from cctv.contracts import DetectorInfo
from detector.detections import RawBoxes, Region


class DetectorConfigError(ValueError):
    """The detector cannot be built as configured; the message says what to change."""


class DetectorBackend(ABC):
    """Finds things (people, or a classifier's classes) in a batch of BGR images.

    ``regions`` (optional, per image) lists the areas worth looking at (motion
    and tracked people); a backend may use them to save work or ignore them.
    Boxes are always returned in full-image pixel coordinates. ``labels`` names
    every class id ``detect_batch`` may return: the person pipeline accepts only
    a backend whose labels are persons, and a camera's classifier rule may only
    name labels its classifier backend declares (both checked at start-up).
    """

    info: DetectorInfo
    labels: dict[int, str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: DetectorSettings) -> DetectorBackend:
        """Build the backend from the service settings (loads and verifies weights). Return the
        classes ``settings.detect_classes`` asks for (None: every class the model has)."""

    @abstractmethod
    def detect_batch(
        self, images: Sequence[np.ndarray], regions: Sequence[Sequence[Region] | None] | None = None
    ) -> list[RawBoxes]:
        """One :class:`RawBoxes` per image, in order."""
