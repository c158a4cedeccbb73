"""The evidence store against the real broker (Tansu) and the real Object Lock store (SeaweedFS).

Frames are real ``FrameMessage`` records (JPEGs from cv2.imencode with a drawn
counter) produced to the frames topic, interleaved with another camera's frames
in the same partition; incidents go through the incidents topic; evidence is
read back from the bucket and checked byte for byte.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from kafka import KafkaAdminClient, TopicPartition
from minio import Minio
from minio.commonconfig import COMPLIANCE

from cctv.bus import ensure_topics, make_consumer, make_producer, send, send_all
from cctv.config import Camera, CameraRegistry, EvidenceSettings, Settings
from cctv.contracts import (
    ArtifactKind,
    DeadLetter,
    DetectorInfo,
    EvidenceSealed,
    FrameMessage,
    FrameSpan,
    IncidentEvent,
    IncidentMessage,
    decode,
    sha256_hex,
)
from cctv.local_tsa import LocalTsa
from cctv.objectstore import make_client
from evidence_store.signing import load_signer, verify_manifest
from evidence_store.store import incident_prefix
from evidence_store.timestamp import verify_token
from evidence_store.window import WindowReader
from evidence_store.worker import EvidenceSealer, run_evidence

pytestmark = pytest.mark.service

FPS = 5.0
REGISTRY = CameraRegistry(
    cameras=(
        Camera(id="cam-a", name="Market Square East", location="Market Sq, Exampleton", source="sim://x"),
    )
)


def jpeg(counter: int, width: int, height: int) -> bytes:
    image = np.full((height, width, 3), (30 + 5 * counter) % 220, np.uint8)
    cv2.putText(image, f"#{counter}", (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def make_frame(
    camera: str, seq: int, at: datetime, *, width: int = 320, height: int = 240, bad_hash: bool = False
) -> FrameMessage:
    image = jpeg(seq + (1000 if camera != "cam-a" else 0), width, height)
    return FrameMessage(
        camera_id=camera,
        stream_id=f"{camera}-stream",
        seq=seq,
        capture_ts=at,
        ingest_ts=at + timedelta(milliseconds=15),
        width=width,
        height=height,
        sha256=sha256_hex(b"not these bytes" if bad_hash else image),
        fps=FPS,
        image=image,
    )


def produce_frames(settings: Settings, frames: list[FrameMessage], partition: int = 0) -> list[int]:
    """Produce to one partition (both cameras share it, as two keys can in production); the offsets."""
    producer = make_producer(settings.kafka, "test-frames")
    try:
        return send_all(producer, settings.kafka.frames_topic, frames, partition)
    finally:
        producer.close(timeout=10)


@dataclass(frozen=True)
class Scenario:
    window_frames: list[FrameMessage]  # camera A's frames inside the evidence window, in order
    incident: IncidentMessage


def closed_incident(
    settings: Settings, camera: str, t0: datetime, count: int, frames: FrameSpan
) -> IncidentMessage:
    """The closed incident whose evidence window holds exactly frames 0..count-1 of ``camera`` (one every
    1/FPS s from ``t0``): the pre-roll before its start, the post-roll after its end."""
    step = timedelta(seconds=1 / FPS)
    started = t0 + timedelta(seconds=settings.evidence.pre_roll_s)
    ended = t0 + (count - 1) * step + step / 2 - timedelta(seconds=settings.evidence.post_roll_s)
    return IncidentMessage(
        incident_id=uuid.uuid4(),
        event=IncidentEvent.CLOSED,
        camera_id=camera,
        rule="loitering",
        zone_id="doorway",
        track_ids=(7,),
        started_at=started,
        threshold_at=started + timedelta(seconds=1),
        event_at=ended,
        ended_at=ended,
        dwell_s=(ended - started).total_seconds(),
        summary="person loitered in Shop doorway",
        frames=frames,
        detector=DetectorInfo(
            backend="hog", model_name="opencv-hog-people", weights_sha256=None, thresholds={"confidence": 0.4}
        ),
    )


def interleaved_scenario(
    settings: Settings,
    *,
    count: int = 40,
    post_roll_frames: int = 6,
    drop_seqs: frozenset[int] = frozenset(),
    bad_hash_seqs: frozenset[int] = frozenset(),
    width: int = 320,
    height: int = 240,
    camera: str = "cam-a",
) -> Scenario:
    """``count`` frames of ``camera`` in the window (pre 2 s, post 1 s), another camera's between them."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    step = timedelta(seconds=1 / FPS)
    earlier = [
        make_frame(camera, s, t0 - timedelta(seconds=30) + s * step, width=width, height=height)
        for s in range(3)
    ]
    produce_frames(settings, earlier)  # before start_offset: must not be read at all
    frames: list[FrameMessage] = []
    for seq in range(count + post_roll_frames):
        if seq not in drop_seqs:
            frames.append(
                make_frame(
                    camera, seq, t0 + seq * step, width=width, height=height, bad_hash=seq in bad_hash_seqs
                )
            )
        frames.append(make_frame("cam-b", seq, t0 + seq * step + step / 2, width=width, height=height))
    offsets = produce_frames(settings, frames)
    span = FrameSpan(partition=0, start_offset=offsets[0], end_offset=offsets[2 * count - 1])
    incident = closed_incident(settings, camera, t0, count, span)
    in_window = [f for f in frames if f.camera_id == camera and f.seq < count and f.seq not in bad_hash_seqs]
    return Scenario(in_window, incident)


@pytest.fixture
def evidence_settings(settings: Settings, tmp_path: Path, unique: str) -> Settings:
    ensure_topics(settings.kafka)
    return settings.model_copy(
        update={
            "evidence": EvidenceSettings(
                pre_roll_s=2.0,
                post_roll_s=1.0,
                read_timeout_s=1.5,
                signing_key_path=tmp_path / "keys" / "signing.key",
                group_id=f"evidence-{unique}",
            )
        }
    )


@pytest.fixture
def minio(evidence_settings: Settings) -> Minio:
    return make_client(evidence_settings.s3)


@pytest.fixture
def sealer(evidence_settings: Settings, minio: Minio) -> Iterator[EvidenceSealer]:
    consumer = make_consumer(evidence_settings.kafka, "test-window", None)
    reader = WindowReader(consumer, evidence_settings.kafka.frames_topic, evidence_settings.evidence)
    try:
        yield EvidenceSealer(evidence_settings, REGISTRY, minio, reader, load_signer(evidence_settings))
    finally:
        consumer.close()


def read_topic(
    settings: Settings, topic: str, parse: Callable[[bytes], Any], want: int, timeout_s: float = 60
) -> list[Any]:
    consumer = make_consumer(settings.kafka, "test-reader", None)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(found) < want:
            for records in consumer.poll(timeout_ms=500).values():
                found += [parse(r.value) for r in records]
    finally:
        consumer.close()
    return found


def read_object(minio: Minio, bucket: str, key: str, version_id: str | None) -> bytes:
    response = minio.get_object(bucket, key, version_id=version_id)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def artifacts_of(sealed: EvidenceSealed) -> dict[ArtifactKind, Any]:
    return {a.kind: a for a in sealed.artifacts}


def master_members(master: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(master)) as archive:
        out = []
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            assert extracted is not None
            out.append((member.name, extracted.read()))
        return out


# --------------------------------------------------------------------------- the worker, end to end


def test_worker_seals_a_closed_incident_into_locked_verifiable_evidence(
    evidence_settings: Settings, minio: Minio
) -> None:
    settings = evidence_settings
    scenario = interleaved_scenario(settings, count=40)
    incident = scenario.incident
    producer = make_producer(settings.kafka, "test-incidents")
    opened = incident.model_copy(update={"event": IncidentEvent.OPENED, "ended_at": None})
    for message in (opened, incident, incident):  # the CLOSED event twice: a redelivery
        send(producer, settings.kafka.incidents_topic, incident.camera_id, message)
    producer.send(settings.kafka.incidents_topic, key=b"cam-a", value=b'{"event": "closed", "not": "valid"}')
    producer.flush(timeout=30)
    producer.close()

    stop = threading.Event()
    worker = threading.Thread(target=run_evidence, args=(settings, REGISTRY, stop), daemon=True)
    worker.start()
    try:
        sealed_events = read_topic(
            settings, settings.kafka.evidence_topic, lambda v: decode(EvidenceSealed, v), 2
        )
        letters = read_topic(settings, settings.kafka.dead_letter_topic, lambda v: decode(DeadLetter, v), 1)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive(), "run_evidence did not stop within 30 s of the stop event"

    # The redelivered CLOSED event gives the same sealed event; the malformed record is dead-lettered.
    assert len(sealed_events) == 2 and sealed_events[0] == sealed_events[1]
    assert len(letters) == 1 and letters[0].source_topic == settings.kafka.incidents_topic
    assert "invalid incident message" in letters[0].reason
    sealed: EvidenceSealed = sealed_events[0]
    assert sealed.incident_id == incident.incident_id and sealed.frame_count == 40
    assert sealed.bucket == settings.s3.evidence_bucket

    # One version of each object: the redelivery wrote nothing.
    bucket, prefix = sealed.bucket, incident_prefix(incident)
    versions = list(minio.list_objects(bucket, prefix=prefix + "/", include_version=True))
    assert sorted(v.object_name for v in versions) == sorted(
        f"{prefix}/{n}" for n in ("master.tar", "working.mp4", "manifest.json", "manifest.sig.json")
    )
    stored = {
        kind: read_object(minio, bucket, a.key, a.version_id) for kind, a in artifacts_of(sealed).items()
    }
    for kind, artifact in artifacts_of(sealed).items():
        assert sha256_hex(stored[kind]) == artifact.sha256 and len(stored[kind]) == artifact.size

    # Master: exactly camera A's window frames, in order, bit-identical to what was produced.
    members = master_members(stored[ArtifactKind.MASTER])
    assert [name for name, _ in members] == [
        f"frames/{i:06d}_{f.seq}.jpg" for i, f in enumerate(scenario.window_frames)
    ]
    assert [data for _, data in members] == [f.image for f in scenario.window_frames]

    # Manifest: canonical, names the stored artifacts' and every frame's hash.
    manifest_bytes = stored[ArtifactKind.MANIFEST]
    assert sha256_hex(manifest_bytes) == sealed.manifest_sha256
    manifest = json.loads(manifest_bytes)
    assert [(f["seq"], f["sha256"]) for f in manifest["frames"]] == [
        (f.seq, f.sha256) for f in scenario.window_frames
    ]
    assert manifest["artifacts"]["master"]["sha256"] == sha256_hex(stored[ArtifactKind.MASTER])
    assert manifest["artifacts"]["working_copy"]["sha256"] == sha256_hex(stored[ArtifactKind.WORKING_COPY])
    assert manifest["camera"] == {
        "camera_id": "cam-a",
        "name": "Market Square East",
        "location": "Market Sq, Exampleton",
        "in_registry": True,
        "clock_offset_s": None,
        "clock_offset_range_s": None,
    }
    assert (
        manifest["window"]["complete"] is True
        and manifest["gaps"] == []
        and manifest["integrity_problems"] == []
    )
    assert manifest["incident"]["incident_id"] == str(incident.incident_id)

    # Signature: verifies with the worker's key, fails after one flipped byte.
    public_key = load_signer(settings).public_key
    signature = stored[ArtifactKind.SIGNATURE]
    assert verify_manifest(manifest_bytes, signature, public_key)
    assert json.loads(signature)["key_id"] == sealed.signing_key_id
    flipped = bytearray(manifest_bytes)
    flipped[len(flipped) // 2] ^= 0x01
    assert not verify_manifest(bytes(flipped), signature, public_key)

    # Working copy: H.264 MP4 with one picture per master frame.
    with av.open(io.BytesIO(stored[ArtifactKind.WORKING_COPY])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 40

    # WORM: every version is COMPLIANCE-locked until retain_until (what deleting, shortening and
    # holds do to such versions is the conformance suite's job: tests/test_object_lock.py).
    for artifact in sealed.artifacts:
        retention = minio.get_object_retention(bucket, artifact.key, version_id=artifact.version_id)
        assert retention is not None and retention.mode == COMPLIANCE
        assert retention.retain_until_date is not None and retention.retain_until_date >= sealed.retain_until


# --------------------------------------------------------------------------- the sealer, driven directly


def test_bad_frame_hash_and_lost_frames_are_reported_not_hidden(sealer: EvidenceSealer, minio: Minio) -> None:
    scenario = interleaved_scenario(
        sealer.settings, count=20, drop_seqs=frozenset({5, 6}), bad_hash_seqs=frozenset({11})
    )
    sealed = sealer.seal(scenario.incident)
    manifest_artifact = artifacts_of(sealed)[ArtifactKind.MANIFEST]
    manifest = json.loads(
        read_object(minio, sealed.bucket, manifest_artifact.key, manifest_artifact.version_id)
    )
    (problem,) = manifest["integrity_problems"]
    assert problem["seq"] == 11 and "sha256 mismatch" in problem["reason"]
    assert problem["claimed_sha256"] == sha256_hex(b"not these bytes")
    assert [(g["after_seq"], g["next_seq"], g["missing"]) for g in manifest["gaps"]] == [
        (4, 7, 2),
        (10, 12, 1),
    ]
    assert [f["seq"] for f in manifest["frames"]] == [f.seq for f in scenario.window_frames]
    assert sealed.frame_count == 17

    again = sealer.seal(scenario.incident)  # redelivery: rebuilt from the store, nothing written
    assert again == sealed
    # A plain DELETE is allowed by S3 (it only adds a delete marker); the sealed version is still found.
    minio.remove_object(sealed.bucket, manifest_artifact.key)
    assert sealer.seal(scenario.incident) == sealed
    versions = list(
        minio.list_objects(
            sealed.bucket, prefix=incident_prefix(scenario.incident) + "/", include_version=True
        )
    )
    assert len([v for v in versions if not v.is_delete_marker]) == 4


def test_camera_that_died_is_sealed_with_what_exists_after_the_read_timeout(
    sealer: EvidenceSealer, minio: Minio
) -> None:
    # A camera missing from the registry, and no frame of it after the incident: the post-roll never comes.
    scenario = interleaved_scenario(sealer.settings, count=20, post_roll_frames=0, camera="cam-gone")
    started = time.monotonic()
    sealed = sealer.seal(scenario.incident)
    elapsed = time.monotonic() - started
    assert elapsed >= sealer.settings.evidence.read_timeout_s
    assert elapsed < 30, "the reader did not give up after read_timeout_s"
    manifest_artifact = artifacts_of(sealed)[ArtifactKind.MANIFEST]
    manifest = json.loads(
        read_object(minio, sealed.bucket, manifest_artifact.key, manifest_artifact.version_id)
    )
    assert manifest["window"]["complete"] is False
    assert "sealed with the frames that exist" in manifest["window"]["end_reason"]
    assert manifest["frame_count"] == 20 == sealed.frame_count
    assert manifest["camera"]["name"] == "cam-gone" and manifest["camera"]["in_registry"] is False


def test_a_window_still_arriving_slowly_is_read_to_its_post_roll(evidence_settings: Settings) -> None:
    """Frames that trickle in (each gap longer than a poll, all of them far longer than read_timeout_s)
    keep the reader waiting: read_timeout_s counts from the last time there was nothing to read."""
    settings = evidence_settings
    count, post, gap_s, upfront = 20, 2, 0.8, 14
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    step = timedelta(seconds=1 / FPS)
    frames = [make_frame("cam-a", seq, t0 + seq * step) for seq in range(count + post)]
    offsets = produce_frames(settings, frames[:upfront])
    span = FrameSpan(partition=0, start_offset=offsets[0], end_offset=offsets[-1])
    incident = closed_incident(settings, "cam-a", t0, count, span)

    def trickle() -> None:
        for frame in frames[upfront:]:
            time.sleep(gap_s)
            produce_frames(settings, [frame])

    assert (len(frames) - upfront) * gap_s > 2 * settings.evidence.read_timeout_s
    sender = threading.Thread(target=trickle, daemon=True)
    consumer = make_consumer(settings.kafka, "test-window", None)
    try:
        sender.start()
        window = WindowReader(consumer, settings.kafka.frames_topic, settings.evidence).read(incident)
    finally:
        sender.join(30)
        consumer.close()
    assert window.complete, window.end_reason
    assert [f.frame.seq for f in window.frames] == list(range(count))


def committed_offsets(admin: KafkaAdminClient, group: str) -> list[int]:
    offsets = admin.list_group_offsets(group).get(group, {})
    return sorted(o.offset for o in offsets.values() if o.offset >= 0)


def test_store_failure_is_retried_without_committing_until_the_incident_is_sealed(
    evidence_settings: Settings, minio: Minio
) -> None:
    # A bucket of the evidence name WITHOUT Object Lock: the worker must refuse it, keep the incident
    # uncommitted and retry; once an operator removes the wrong bucket, the retry seals the incident.
    settings = evidence_settings
    bucket = settings.s3.evidence_bucket
    minio.make_bucket(bucket)
    scenario = interleaved_scenario(settings, count=20)
    producer = make_producer(settings.kafka, "test-incidents")
    send(producer, settings.kafka.incidents_topic, "cam-a", scenario.incident).get(timeout=30)
    producer.close()
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers.split(","))
    stop = threading.Event()
    worker = threading.Thread(target=run_evidence, args=(settings, REGISTRY, stop), daemon=True)
    worker.start()
    try:
        time.sleep(6)  # group join (~3 s) and a few failed attempts
        assert read_topic(settings, settings.kafka.evidence_topic, lambda v: v, 1, timeout_s=1) == []
        assert committed_offsets(admin, settings.evidence.group_id) == []
        minio.remove_bucket(bucket)
        (sealed,) = read_topic(
            settings, settings.kafka.evidence_topic, lambda v: decode(EvidenceSealed, v), 1
        )
        assert sealed.incident_id == scenario.incident.incident_id and sealed.frame_count == 20
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and 1 not in committed_offsets(admin, settings.evidence.group_id):
            time.sleep(0.5)
        assert max(committed_offsets(admin, settings.evidence.group_id)) == 1  # past the incident, once
    finally:
        stop.set()
        worker.join(timeout=30)
        admin.close()
    assert minio.get_object_lock_config(bucket).mode == COMPLIANCE


# --------------------------------------------------------------------------- RFC 3161 timestamps


@pytest.fixture(scope="module")
def local_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed: the local TSA runs `openssl ts -reply`")
    with LocalTsa(tmp_path_factory.mktemp("tsa")) as tsa:
        yield tsa


def sealer_with_tsa(sealer: EvidenceSealer, tsa_url: str) -> EvidenceSealer:
    evidence = sealer.settings.evidence.model_copy(update={"tsa_url": tsa_url, "tsa_timeout_s": 3.0})
    sealer.settings = sealer.settings.model_copy(update={"evidence": evidence})
    return sealer


def test_manifest_gets_a_trusted_timestamp_that_survives_a_redelivery(
    sealer: EvidenceSealer, minio: Minio, local_tsa: LocalTsa
) -> None:
    sealer = sealer_with_tsa(sealer, local_tsa.url)
    scenario = interleaved_scenario(sealer.settings, count=20)
    before = datetime.now(UTC)
    sealed = sealer.seal(scenario.incident)
    token_artifact = artifacts_of(sealed)[ArtifactKind.TIMESTAMP]
    assert token_artifact.key.endswith("/manifest.tsr")
    token = read_object(minio, sealed.bucket, token_artifact.key, token_artifact.version_id)
    assert sha256_hex(token) == token_artifact.sha256
    check = verify_token(token, sealed.manifest_sha256, local_tsa.ca_pem_path.read_bytes())
    assert check.ok, check.problems
    assert check.gen_time is not None and before - timedelta(seconds=5) <= check.gen_time <= datetime.now(UTC)
    # Written before the manifest (the sealed marker) and locked like every other artifact.
    retention = minio.get_object_retention(
        sealed.bucket, token_artifact.key, version_id=token_artifact.version_id
    )
    assert retention is not None and retention.mode == COMPLIANCE
    # A redelivered incident finds the same evidence, token included, and writes nothing new.
    assert sealer.seal(scenario.incident) == sealed


def test_an_unreachable_tsa_leaves_the_evidence_sealed_without_a_token(
    sealer: EvidenceSealer, minio: Minio, caplog: pytest.LogCaptureFixture
) -> None:
    sealer = sealer_with_tsa(sealer, "http://127.0.0.1:9/tsa")  # discard port: nothing listens
    scenario = interleaved_scenario(sealer.settings, count=20)
    sealed = sealer.seal(scenario.incident)
    assert ArtifactKind.TIMESTAMP not in artifacts_of(sealed)
    assert {ArtifactKind.MASTER, ArtifactKind.MANIFEST, ArtifactKind.SIGNATURE} <= set(artifacts_of(sealed))
    assert any("WITHOUT a trusted timestamp" in r.getMessage() for r in caplog.records)
