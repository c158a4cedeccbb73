"""`cctv stack up|status|down` as a user runs it: a real subprocess, real services, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cctv.config import StackPorts

pytestmark = pytest.mark.service

# A port range of its own, clear of the session stack and of a running demo.
OFFSET = int(os.environ.get("CCTV_TEST_PORT_OFFSET", "100")) + 50


def cctv(*args: str, data_dir: Path, offset: int = OFFSET) -> subprocess.CompletedProcess[str]:
    """Run the CLI from ``data_dir``'s parent with a relative ``--data-dir``, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "cctv", "--data-dir", data_dir.name, "--port-offset", str(offset), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir.parent,
    )


def test_stack_up_status_down_and_restart_reuses_data(tmp_path: Path) -> None:
    tmp_path = tmp_path / "var"
    try:
        up = cctv("stack", "up", data_dir=tmp_path)
        assert up.returncode == 0, up.stderr
        ports = StackPorts().shifted(OFFSET)
        assert f"127.0.0.1:{ports.kafka}" in up.stdout
        assert "running" in cctv("stack", "status", data_dir=tmp_path).stdout
        # A second `up` is a no-op on a running stack, not a port clash.
        again = cctv("stack", "up", data_dir=tmp_path)
        assert again.returncode == 0, again.stderr
    finally:
        down = cctv("stack", "down", data_dir=tmp_path)
    assert down.returncode == 0, down.stderr
    status = cctv("stack", "status", data_dir=tmp_path).stdout
    assert "kafka   stopped" in status and "s3      stopped" in status
    assert (tmp_path / "s3").is_dir(), "S3 data directory should be kept for the next run"


def test_stack_up_names_the_port_that_is_taken(tmp_path: Path) -> None:
    offset = OFFSET + 1
    taken = StackPorts().shifted(offset).s3
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", taken))
        blocker.listen()
        result = cctv("stack", "up", data_dir=tmp_path, offset=offset)
    cctv("stack", "down", data_dir=tmp_path, offset=offset)
    assert result.returncode == 2
    assert f"s3 {taken}" in result.stderr
    assert "already in use" in result.stderr


def test_bad_camera_registry_names_the_field(tmp_path: Path) -> None:
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("cameras:\n  - id: cam-1\n    name: x\n    source: sim://empty\n    fsp: 5\n")
    result = subprocess.run(
        [sys.executable, "-m", "cctv", "--cameras-file", str(cameras), "detect"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "cameras.0.fsp" in result.stderr
    assert "Extra inputs are not permitted" in result.stderr
