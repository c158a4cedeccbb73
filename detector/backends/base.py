"""The base class of every person detector backend.

Why a registry dict (``detector.backends.BACKENDS``) and not plugins discovered
at import: which code looked at the evidence is part of the chain of custody, so
the set of backends is a fixed, reviewable list and an unknown name is a
configuration error.
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
    """Finds people in a batch of BGR images.

    ``regions`` (optional, per image) lists the areas worth looking at (motion
    and tracked people); a backend may use them to save work or ignore them.
    Boxes are always returned in full-image pixel coordinates.
    """

    info: DetectorInfo

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: DetectorSettings) -> DetectorBackend:
        """Build the backend from the service settings (loads and verifies weights)."""

    @abstractmethod
    def detect_batch(
        self, images: Sequence[np.ndarray], regions: Sequence[Sequence[Region] | None] | None = None
    ) -> list[RawBoxes]:
        """One :class:`RawBoxes` per image, in order."""
