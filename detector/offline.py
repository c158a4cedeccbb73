"""Keep ultralytics offline: import this module before anything that imports ultralytics.

These machines have no internet. Without ``YOLO_OFFLINE`` ultralytics probes
DNS when imported, and would try to auto-install requirements, fetch fonts or
weights, and send usage analytics. Modules that import ultralytics import this
first (the package ``__init__`` is not enough: an editable install made before
the package existed imports ``detector`` as a namespace package and skips it).
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")
