"""Detector worker: motion gate -> person detector backend -> per-camera tracker -> rules."""

from __future__ import annotations

import detector.offline  # noqa: F401  (before anything imports ultralytics)
