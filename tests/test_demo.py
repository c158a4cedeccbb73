"""`cctv demo` as a user runs it: a subprocess, real stack, worker processes, Ctrl-C, then a rerun.

The user's own camera registry (./cameras.yaml) runs beside the simulated cameras.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from cctv.config import ConfigError, Settings
from cctv.demo import demo_cameras_file
from cctv.demo_accounts import CREDENTIALS_FILE

pytestmark = [pytest.mark.service, pytest.mark.e2e]

OFFSET = int(os.environ.get("CCTV_TEST_PORT_OFFSET", "100")) + 60
API_PORT = 8000 + OFFSET


def start_demo(cwd: Path) -> subprocess.Popen[str]:
    """The demo from ``cwd``; a ``cameras.yaml`` there adds the user's cameras to the simulated ones."""
    return subprocess.Popen(
        [sys.executable, "-m", "cctv", "--port-offset", str(OFFSET), "demo"],
        cwd=cwd,
        env={**os.environ, "CCTV_API__PORT": str(API_PORT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def demo_credentials(cwd: Path) -> dict[str, str]:
    """What the demo wrote for its accounts (it prints the same in its banner)."""
    path = cwd / "var" / CREDENTIALS_FILE
    deadline = time.monotonic() + 120
    while not path.is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert path.stat().st_mode & 0o077 == 0, "the demo's credentials file must be private"
    return dict(json.loads(path.read_text()))


def wait_for_cameras(count: int, timeout_s: float, api_key: str) -> list[dict[str, object]]:
    """The demo's API lists every camera online once ingest heartbeats arrive."""
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {api_key}"}
    while time.monotonic() < deadline:
        try:
            cameras = httpx.get(
                f"http://127.0.0.1:{API_PORT}/api/v1/cameras", timeout=2, headers=headers
            ).json()
            items = cameras if isinstance(cameras, list) else cameras.get("items", [])
            if len(items) == count and all((c.get("health") or {}).get("state") == "online" for c in items):
                return list(items)
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"demo cameras not online through the API within {timeout_s:.0f}s")


def write_clip(path: Path) -> None:
    """A short real video file (MJPEG AVI) for the user's own camera."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(30):
        frame = np.full((240, 320, 3), 40, np.uint8)
        cv2.putText(frame, f"{i}", (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        writer.write(frame)
    writer.release()


def interrupt(demo: subprocess.Popen[str]) -> str:
    demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
    output, _ = demo.communicate(timeout=120)
    return output


def test_demo_runs_every_worker_stops_on_ctrl_c_and_reuses_its_data(tmp_path: Path) -> None:
    # A user's own camera (a real file source) runs beside the simulated ones.
    clip = tmp_path / "clip.avi"
    write_clip(clip)
    (tmp_path / "cameras.yaml").write_text(
        f"cameras:\n  - id: own-cam\n    name: Own camera\n    source: {clip}?loop=1\n    fps: 2\n"
    )
    demo = start_demo(tmp_path)
    try:
        credentials = demo_credentials(tmp_path)
        cameras = wait_for_cameras(5, timeout_s=150, api_key=credentials["api_key"])
        login = httpx.post(
            f"http://127.0.0.1:{API_PORT}/api/v1/auth/login",
            json={"username": "operator", "password": credentials["operator"]},
            timeout=10,
        )
        assert login.status_code == 200 and login.json()["user"]["role"] == "operator"
        assert httpx.get(f"http://127.0.0.1:{API_PORT}/api/v1/cameras", timeout=5).status_code == 401
    finally:
        output = interrupt(demo)
    assert demo.returncode == 0, output
    assert {c["id"] for c in cameras} == {"cam-01", "cam-02", "cam-03", "cam-04", "own-cam"}
    assert "CCTV incident pipeline: running" in output
    assert f"http://127.0.0.1:{API_PORT}" in output
    assert f"operator / {credentials['operator']}" in output  # the banner says how to log in
    assert "TSA        http://127.0.0.1:" in output  # the local RFC 3161 TSA timestamps demo evidence
    assert "stopped; data kept in" in output

    logs = tmp_path / "var" / "logs"
    for worker in ("ingest", "detect", "evidence", "api"):
        text = (logs / f"{worker}.log").read_text()
        assert "Traceback" not in text, f"{worker} crashed:\n{text[-3000:]}"
        assert "received SIGTERM, stopping" in text, f"{worker} was not stopped by SIGTERM:\n{text[-2000:]}"

    # A second run finds the same database, bucket and topics.
    again = start_demo(tmp_path)
    try:
        assert demo_credentials(tmp_path) == credentials  # the same accounts, not new ones
        wait_for_cameras(5, timeout_s=150, api_key=credentials["api_key"])
    finally:
        second = interrupt(again)
    assert again.returncode == 0, second
    assert "created topics" not in (logs / "ingest.log").read_text().split("received SIGTERM")[-1]


def test_own_camera_reusing_a_simulated_id_is_refused_with_the_id(tmp_path: Path) -> None:
    own = tmp_path / "cameras.yaml"
    own.write_text("cameras:\n  - id: cam-01\n    name: Mine\n    source: rtsp://10.0.0.5/stream1\n")
    settings = Settings(data_dir=tmp_path / "var", cameras_file=own)
    with pytest.raises(ConfigError, match="duplicate camera ids: cam-01"):
        demo_cameras_file(settings)
