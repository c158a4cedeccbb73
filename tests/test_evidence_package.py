"""Pure tests of the evidence package and signatures: synthetic frames in, bytes out, no services."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cctv.config import EvidenceSettings, Settings
from cctv.contracts import DetectorInfo, FrameMessage, FrameSpan, IncidentEvent, IncidentMessage, sha256_hex
from evidence_store.package import (
    CameraInfo,
    build_master,
    build_package,
    build_working_copy,
    canonical_json,
    evidence_id_for,
)
from evidence_store.signing import (
    ManifestSigner,
    SigningKeyError,
    key_id_for,
    load_signer,
    parse_seed,
    verify_manifest,
)
from evidence_store.window import FrameWindow, WindowFrame, find_gaps

T0 = datetime(2025, 7, 1, 11, 59, 58, 250_000, tzinfo=UTC)  # BST in the UK: local = UTC + 1
CAMERA = CameraInfo("cam-1", "High Street North", "12 High Street, Exampleton", in_registry=True)


def jpeg(counter: int, width: int = 320, height: int = 240) -> bytes:
    image = np.full((height, width, 3), (40 + counter * 7) % 200, np.uint8)
    cv2.putText(image, str(counter), (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def frame(seq: int, at: datetime, stream: str = "s1", width: int = 320, height: int = 240) -> WindowFrame:
    image = jpeg(seq, width, height)
    message = FrameMessage(
        camera_id="cam-1",
        stream_id=stream,
        seq=seq,
        capture_ts=at,
        ingest_ts=at + timedelta(milliseconds=20),
        width=width,
        height=height,
        sha256=sha256_hex(image),
        fps=5.0,
        clock_offset_s=0.25,
        image=image,
    )
    return WindowFrame(message, offset=100 + seq)


def frames(count: int, skip: frozenset[int] = frozenset()) -> tuple[WindowFrame, ...]:
    return tuple(frame(i, T0 + timedelta(seconds=0.2 * i)) for i in range(count) if i not in skip)


def incident() -> IncidentMessage:
    return IncidentMessage(
        incident_id=uuid.uuid4(),
        event=IncidentEvent.CLOSED,
        camera_id="cam-1",
        rule="loitering",
        zone_id="doorway",
        started_at=T0 + timedelta(seconds=1),
        threshold_at=T0 + timedelta(seconds=2),
        event_at=T0 + timedelta(seconds=3),
        ended_at=T0 + timedelta(seconds=3),
        summary="person loitered 61 s in Shop doorway",
        frames=FrameSpan(partition=0, start_offset=100, end_offset=120),
        detector=DetectorInfo(
            backend="hog", model_name="opencv-hog", weights_sha256=None, thresholds={"c": 0.4}
        ),
    )


def window(items: tuple[WindowFrame, ...]) -> FrameWindow:
    return FrameWindow(
        camera_id="cam-1",
        topic="t.frames",
        partition=0,
        start_offset=100,
        window_start=T0,
        window_end=T0 + timedelta(seconds=10),
        frames=items,
        integrity_problems=(),
        gaps=find_gaps(items),
        complete=True,
        end_reason="post-roll reached",
        last_offset_read=200,
    )


def test_master_holds_the_ingested_bytes_in_order_and_is_deterministic() -> None:
    items = frames(6)
    master = build_master(items)
    assert master == build_master(items)  # byte-for-byte reproducible
    with tarfile.open(fileobj=io.BytesIO(master)) as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == [f"frames/{i:06d}_{i}.jpg" for i in range(6)]
        for member, item in zip(members, items, strict=True):
            extracted = archive.extractfile(member)
            assert extracted is not None
            assert extracted.read() == item.frame.image
            assert (member.uid, member.gid, member.mode) == (0, 0, 0o444)
            assert member.mtime == int(item.frame.capture_ts.timestamp())


def test_gaps_are_reported_per_stream() -> None:
    items = frames(10, skip=frozenset({3, 4, 8}))
    restarted = (
        *items,
        frame(0, T0 + timedelta(seconds=5), stream="s2"),
        frame(1, T0 + timedelta(seconds=6), "s2"),
    )
    gaps = find_gaps(restarted)
    assert [(g.stream_id, g.after_seq, g.next_seq, g.missing) for g in gaps] == [
        ("s1", 2, 5, 2),
        ("s1", 7, 9, 1),
    ]


def test_working_copy_is_h264_mp4_with_burned_in_time_and_one_frame_per_master_frame() -> None:
    items = frames(12, skip=frozenset({6}))  # a gap: timing must follow the capture times
    working = build_working_copy(items, CAMERA)
    assert working is not None and working.frame_count == 11
    assert working.data.find(b"moov") < working.data.find(b"mdat")  # faststart: playable while downloading
    with av.open(io.BytesIO(working.data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = list(container.decode(video=0))
    assert len(decoded) == 11
    times = [float(f.time) for f in decoded]
    assert times[5] == pytest.approx(1.0, abs=0.01) and times[6] == pytest.approx(1.4, abs=0.01)
    first = decoded[0].to_ndarray(format="bgr24")
    master_pixels = cv2.imdecode(np.frombuffer(items[0].frame.image, np.uint8), cv2.IMREAD_COLOR)
    top_left = np.abs(first[:90, :300].astype(int) - master_pixels[:90, :300].astype(int)).mean()
    assert top_left > 20  # the burn-in is there (H.264 alone changes pixels by a few levels)
    assert working.encoder["codec"] == "libx264" and working.encoder["pix_fmt"] == "yuv420p"
    # Re-made from the same master frames, the working copy is the same bytes (checkable by hash).
    assert {sha256_hex(build_working_copy(items, CAMERA).data) for _ in range(4)} == {  # type: ignore[union-attr]
        sha256_hex(working.data)
    }


def test_working_copy_handles_odd_sizes_and_no_frames() -> None:
    odd = tuple(frame(i, T0 + timedelta(seconds=0.2 * i), width=321, height=241) for i in range(3))
    working = build_working_copy(odd, CAMERA)
    assert working is not None
    with av.open(io.BytesIO(working.data)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (322, 242)
    assert build_working_copy((), CAMERA) is None


def test_manifest_is_canonical_and_names_every_hash() -> None:
    items = frames(5, skip=frozenset({2}))
    signer = ManifestSigner.generate()
    case = incident()
    package = build_package(
        case,
        window(items),
        CAMERA,
        sealed_at=T0 + timedelta(minutes=1),
        retain_until=T0 + timedelta(days=31),
        signing_key_id=signer.key_id,
    )
    document = json.loads(package.manifest)
    assert canonical_json(document) == package.manifest  # re-serialising gives the same bytes
    assert b'": ' not in package.manifest and b', "' not in package.manifest  # no separator whitespace
    assert list(document) == sorted(document)
    assert document["evidence_id"] == str(evidence_id_for(case.incident_id))
    assert [f["sha256"] for f in document["frames"]] == [i.frame.sha256 for i in items]
    assert [f["seq"] for f in document["frames"]] == [0, 1, 3, 4]
    assert document["gaps"][0]["missing"] == 1
    assert document["artifacts"]["master"]["sha256"] == sha256_hex(package.master)
    assert package.working_copy is not None
    assert document["artifacts"]["working_copy"]["sha256"] == sha256_hex(package.working_copy.data)
    assert document["camera"]["clock_offset_s"] == 0.25
    assert document["incident"]["ended_at"] == "2025-07-01T12:00:01.250000+00:00"
    assert document["detector"]["model_name"] == "opencv-hog"
    assert document["software"]["version"]
    assert document["signing_key_id"] == signer.key_id


def test_signature_verifies_and_any_change_breaks_it() -> None:
    signer, other = ManifestSigner.generate(), ManifestSigner.generate()
    manifest = canonical_json({"a": 1, "frames": ["x" * 64]})
    signature = signer.sign(manifest)
    document = json.loads(signature)
    assert document["key_id"] == key_id_for(signer.public_key) and len(document["key_id"]) == 16
    assert verify_manifest(manifest, signature, signer.public_key)
    assert verify_manifest(manifest, document, document["public_key"])
    flipped = bytearray(manifest)
    flipped[5] ^= 0x01
    assert not verify_manifest(bytes(flipped), signature, signer.public_key)
    assert not verify_manifest(manifest, signature, other.public_key)
    forged = {**document, "manifest_sha256": sha256_hex(bytes(flipped))}
    assert not verify_manifest(bytes(flipped), forged, signer.public_key)


def key_settings(tmp_path: Path, environment: str) -> Settings:
    return Settings(
        environment=environment,  # type: ignore[arg-type]
        s3={"secret_key": "not-the-dev-secret"},  # type: ignore[arg-type]
        evidence=EvidenceSettings(signing_key_path=tmp_path / "keys" / "signing.key"),
    )


def test_development_generates_a_private_key_file_and_reloads_it(tmp_path: Path) -> None:
    settings = key_settings(tmp_path, "development")
    first = load_signer(settings)
    path = settings.evidence.signing_key_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_signer(settings).key_id == first.key_id


def test_production_refuses_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="does not exist"):
        load_signer(key_settings(tmp_path, "production"))


def test_key_file_formats() -> None:
    seed = bytes(range(32))
    import base64

    assert parse_seed(seed.hex().encode() + b"\n") == seed
    assert parse_seed(base64.b64encode(seed) + b"\n") == seed
    assert parse_seed(seed) == seed
    with pytest.raises(SigningKeyError):
        parse_seed(b"too short")
