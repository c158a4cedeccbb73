"""Seal-time benchmark: read window + build + sign + store for one incident of real-sized frames.

Frames are 768x576 JPEGs (quality 90) from the PETS09 clip when it is present
(``CCTV_PETS_DIR`` or ``../shared/data/pets09-s2l1``), else ultralytics'
``bus.jpg`` scaled to 768x576 with a frame counter drawn. A second camera's
frames are interleaved in the same partition, as in production.

``cctv bench`` calls :func:`bench_evidence` with the settings of its private stack.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from cctv.bus import ensure_topics, make_consumer, make_producer, send_all
from cctv.config import CameraRegistry, Settings
from cctv.contracts import (
    ArtifactKind,
    DetectorInfo,
    EvidenceSealed,
    FrameMessage,
    FrameSpan,
    IncidentEvent,
    IncidentMessage,
    StoredArtifact,
    sha256_hex,
)
from cctv.objectstore import make_client
from evidence_store.bundle import BundleItem, ExportRequest, build_bundle
from evidence_store.custody import ActorRole, CustodyAction, CustodyEntry, next_entry, verify_chain
from evidence_store.signing import ManifestSigner
from evidence_store.verify import verify_bundle
from evidence_store.window import WindowReader
from evidence_store.worker import EvidenceSealer

WIDTH, HEIGHT, FPS = 768, 576, 5.0


class Figure(NamedTuple):
    """One printed number (the same fields as ``cctv.bench.Result`` minus the section)."""

    metric: str
    value: float
    unit: str
    note: str = ""


def _pets_video() -> Path | None:
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "pets09-s2l1"
    path = Path(os.environ.get("CCTV_PETS_DIR", default)) / "vtest.avi"
    return path if path.exists() else None


def _images(count: int) -> Iterator[tuple[np.ndarray, str]]:
    video = _pets_video()
    if video is not None:
        capture = cv2.VideoCapture(str(video))
        try:
            for _ in range(count):
                ok, image = capture.read()
                if not ok:
                    break
                yield cv2.resize(image, (WIDTH, HEIGHT)), "PETS09 S2L1 frames"
        finally:
            capture.release()
        return
    import ultralytics

    bus = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
    if bus is None:
        raise FileNotFoundError("ultralytics/assets/bus.jpg not found")
    base = cv2.resize(bus, (WIDTH, HEIGHT))
    for i in range(count):
        image = base.copy()
        cv2.putText(image, f"frame {i}", (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 255, 255), 3)
        yield image, "ultralytics bus.jpg with a counter"


def _frames(camera: str, images: list[np.ndarray], t0: datetime, shift: float) -> list[FrameMessage]:
    frames = []
    for seq, image in enumerate(images):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        at = t0 + timedelta(seconds=seq / FPS + shift)
        frames.append(
            FrameMessage(
                camera_id=camera,
                stream_id=f"{camera}-bench",
                seq=seq,
                capture_ts=at,
                ingest_ts=at,
                width=WIDTH,
                height=HEIGHT,
                sha256=sha256_hex(data.tobytes()),
                fps=FPS,
                image=data.tobytes(),
            )
        )
    return frames


def bench_evidence(settings: Settings, frame_count: int = 100) -> list[Figure]:
    """Seal one incident whose window holds ``frame_count`` frames; report the stages and the sizes."""
    ensure_topics(settings.kafka)
    settings = settings.model_copy(
        update={"evidence": settings.evidence.model_copy(update={"pre_roll_s": 0.0, "post_roll_s": 0.0})}
    )
    pairs = list(_images(frame_count + 2))
    source = pairs[0][1]
    images = [image for image, _ in pairs]
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    frames = [
        f
        for pair in zip(_frames("bench-a", images, t0, 0), _frames("bench-b", images, t0, 0.1), strict=True)
        for f in pair
    ]
    producer = make_producer(settings.kafka, "bench-evidence")
    offsets = send_all(producer, settings.kafka.frames_topic, frames, partition=0)
    producer.close()
    end = t0 + timedelta(seconds=(frame_count - 1) / FPS)
    incident = IncidentMessage(
        incident_id=uuid.uuid4(),
        event=IncidentEvent.CLOSED,
        camera_id="bench-a",
        rule="loitering",
        started_at=t0,
        threshold_at=t0,
        event_at=end,
        ended_at=end,
        summary="benchmark incident",
        frames=FrameSpan(partition=0, start_offset=offsets[0], end_offset=offsets[-1]),
        detector=DetectorInfo(backend="hog", model_name="opencv-hog", weights_sha256=None),
    )
    consumer = make_consumer(settings.kafka, "bench-window", None)
    try:
        reader = WindowReader(consumer, settings.kafka.frames_topic, settings.evidence)
        registry = CameraRegistry(cameras=())
        signer = ManifestSigner.generate()
        sealer = EvidenceSealer(settings, registry, make_client(settings.s3), reader, signer)
        sealer.store.ensure_bucket()  # bucket creation is once per deployment, not per seal
        sealed = sealer.seal(incident)
    finally:
        consumer.close()
    timings = sealer.last_timings
    sizes = {a.kind.value: a.size for a in sealed.artifacts}
    note = f"{sealed.frame_count} x {WIDTH}x{HEIGHT} JPEG q90 ({source})"
    return [
        Figure("seal total (read+build+sign+store)", timings["total_s"], "s", note),
        Figure("  read window", timings["read_window_s"], "s"),
        Figure("  build master + MP4 + manifest", timings["build_s"], "s"),
        Figure("  sign", timings["sign_s"] * 1000, "ms"),
        Figure("  store + verify (4 objects)", timings["store_s"], "s"),
        Figure("master size", sizes["master"] / 1e6, "MB"),
        Figure("working copy (MP4) size", sizes["working_copy"] / 1e6, "MB"),
        Figure("manifest size", sizes["manifest"] / 1e3, "KB"),
        *bench_bundle(sealer, sealed, signer),
    ]


def _read(sealer: EvidenceSealer, artifact: StoredArtifact) -> bytes:
    response = sealer.store.client.get_object(
        sealer.store.bucket, artifact.key, version_id=artifact.version_id
    )
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def bench_bundle(
    sealer: EvidenceSealer, sealed: EvidenceSealed, signer: ManifestSigner, entries: int = 1000
) -> list[Figure]:
    """Export bundle build and offline verification of the sealed item, and custody-chain throughput.

    The chain is ``entries`` long (a busy item after years of views); verification
    re-hashes every entry, so its cost grows linearly with the log.
    """
    blobs = {a.kind: _read(sealer, a) for a in sealed.artifacts}
    evidence_id = str(sealed.evidence_id)
    chain: list[CustodyEntry] = []
    started = time.perf_counter()
    for _ in range(entries):
        chain.append(
            next_entry(
                chain[-1] if chain else None,
                evidence_id,
                CustodyAction.VIEWED,
                actor="bench",
                role=ActorRole.OPERATOR,
                at=datetime.now(UTC),
            )
        )
    append_s = time.perf_counter() - started
    started = time.perf_counter()
    problems = verify_chain(evidence_id, chain)
    verify_chain_s = time.perf_counter() - started
    assert not problems, problems
    item = BundleItem(
        evidence_id=evidence_id,
        exhibit_ref="BENCH/001",
        manifest=blobs[ArtifactKind.MANIFEST],
        signature=blobs[ArtifactKind.SIGNATURE],
        master=blobs[ArtifactKind.MASTER],
        working_copy=blobs.get(ArtifactKind.WORKING_COPY),
        timestamp_token=blobs.get(ArtifactKind.TIMESTAMP),
        custody=chain,
        checkpoint=None,
    )
    request = ExportRequest(
        export_id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
        actor="bench",
        role="legal",
        reason="benchmark",
        recipient=None,
        organisation=None,
        case_reference=None,
        case_title=None,
    )
    started = time.perf_counter()
    bundle = build_bundle([item], request, signer)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    report = verify_bundle(bundle, [signer.public_key])
    verify_s = time.perf_counter() - started
    assert report.ok, report.render()
    return [
        Figure(
            "export bundle build (1 item)", build_s, "s", f"{len(bundle) / 1e6:.1f} MB ZIP, {entries} entries"
        ),
        Figure("export bundle verify (cctv verify)", verify_s, "s", f"{len(report.checks)} checks"),
        Figure("custody entries appended", entries / append_s, "entries/s", "pure, no database"),
        Figure("custody chain verified", entries / verify_chain_s, "entries/s"),
    ]
