"""Shared helpers of the API tests: a database per test, contract messages, evidence objects in S3."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from api import auth
from api.app import create_app
from api.custody import read_chain
from api.models import ApiKeyRow
from api.persister import Persister
from cctv.bus import send
from cctv.config import ApiSettings, Camera, CameraRegistry, EvidenceSettings, Settings
from cctv.contracts import (
    ArtifactKind,
    Box,
    CameraState,
    CameraStatus,
    DeadLetter,
    DetectorInfo,
    EvidenceSealed,
    FrameSpan,
    IncidentEvent,
    IncidentMessage,
    StoredArtifact,
    TopicMessage,
    decode,
)
from cctv.objectstore import ensure_evidence_bucket, make_client
from cctv.rule_config import Zone
from evidence_store.custody import ActorRole, CustodyEntry
from evidence_store.package import CameraInfo, EvidencePackage, build_package
from evidence_store.store import EvidenceStore, retain_until_for
from evidence_store.timestamp import request_token
from evidence_store.window import FrameWindow, WindowFrame, find_gaps
from ingest.sim import scene_from_url, scripted_frames

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# Who is acting: real API keys with well-known secrets, imported into each test's database by
# :func:`authorize` (the same import ops use for a key provisioned as a Kubernetes Secret).
TEST_KEYS = {
    "Jane Smith": (ActorRole.LEGAL, "cctv_k_test-legal-0123456789abcdef0123456789abcdef"),
    "Sam Patel": (ActorRole.OPERATOR, "cctv_k_test-operator-0123456789abcdef0123456789ab"),
    "Olu Okafor": (ActorRole.OPS, "cctv_k_test-ops-0123456789abcdef0123456789abcdef01"),
    "Ada Admin": (ActorRole.ADMIN, "cctv_k_test-admin-0123456789abcdef0123456789abcdef"),
}
# An operator who may see cam2 only (per-camera visibility).
CAM2_KEY_NAME, CAM2_KEY = "Kim Car Park", "cctv_k_test-cam2-operator-0123456789abcdef0123456789"


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TEST_KEYS[name][1]}"}


LEGAL = bearer("Jane Smith")
OPERATOR = bearer("Sam Patel")
OPS = bearer("Olu Okafor")
ADMIN = bearer("Ada Admin")
CAM2_OPERATOR = {"Authorization": f"Bearer {CAM2_KEY}"}
DETECTOR = DetectorInfo(backend="hog", model_name="opencv-hog", weights_sha256=None, thresholds={"conf": 0.4})


def free_port() -> int:
    """A loopback port nothing listens on now (for a server the test starts itself)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def camera_registry() -> CameraRegistry:
    zone = Zone(id="door", name="Doorway", polygon=((0.1, 0.1), (0.9, 0.1), (0.5, 0.9)))
    return CameraRegistry(
        cameras=(
            Camera(
                id="cam1",
                name="High St",
                location="High St / Bridge Rd",
                source="rtsp://admin:s3cret@10.0.0.5/stream1",
                zones=(zone,),
            ),
            Camera(id="cam2", name="Car park", source="sim://loiter"),
        )
    )


@contextlib.contextmanager
def isolated_database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL private to one test: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'cctv.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    schema = f"api_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
        # search_path in the connection options: migrations and the app see only this schema.
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def local_settings(tmp_path: Path, db_url: str, **api: Any) -> Settings:
    """Settings of an API on ``db_url`` with its own signing key, for tests that need no broker or store."""
    return Settings(
        data_dir=tmp_path,
        api=ApiSettings(database_url=db_url, **api),
        evidence=EvidenceSettings(signing_key_path=tmp_path / "keys" / "signing.key"),
    )


def with_database(settings: Settings, url: str, group_id: str | None = None) -> Settings:
    """``settings`` on database ``url``, with a signing key of its own under ``data_dir`` (the API signs)."""
    api = ApiSettings(
        **{**settings.api.model_dump(), "database_url": url, "group_id": group_id or settings.api.group_id}
    )
    evidence = EvidenceSettings(
        **{**settings.evidence.model_dump(), "signing_key_path": settings.data_dir / "keys" / "signing.key"}
    )
    return settings.model_copy(update={"api": api, "evidence": evidence})


def jpeg(shade: int) -> bytes:
    image = np.full((48, 64, 3), shade, dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def incident(
    incident_id: uuid.UUID,
    event: IncidentEvent,
    *,
    camera_id: str = "cam1",
    rule: str = "loitering",
    threshold_at: datetime = T0,
    event_at: datetime | None = None,
    dwell_s: float = 60.0,
    snapshot: bytes | None = None,
) -> IncidentMessage:
    return IncidentMessage(
        incident_id=incident_id,
        event=event,
        camera_id=camera_id,
        rule=rule,  # type: ignore[arg-type]
        zone_id="door",
        track_ids=(7,),
        started_at=threshold_at - timedelta(seconds=60),
        threshold_at=threshold_at,
        event_at=event_at or threshold_at,
        ended_at=(event_at or threshold_at) if event is IncidentEvent.CLOSED else None,
        dwell_s=dwell_s,
        summary=f"person 7 {event.value} in Doorway",
        boxes=(Box(x1=1, y1=2, x2=30, y2=40, confidence=0.9, track_id=7),),
        frames=FrameSpan(partition=0, start_offset=10, end_offset=50),
        snapshot_jpeg=snapshot,
        detector=DETECTOR,
    )


def open_alert(persister: Persister, camera_id: str = "cam1", threshold_at: datetime = T0) -> uuid.UUID:
    """A new alert, persisted as the persister would from the detector's OPENED message."""
    incident_id = uuid.uuid4()
    persister.persist(
        [incident(incident_id, IncidentEvent.OPENED, camera_id=camera_id, threshold_at=threshold_at)]
    )
    return incident_id


def lifecycle(incident_id: uuid.UUID, threshold_at: datetime = T0, **kw: object) -> list[IncidentMessage]:
    """opened, updated, closed of one incident, each with its own snapshot."""
    return [
        incident(incident_id, IncidentEvent.OPENED, threshold_at=threshold_at, snapshot=jpeg(10), **kw),  # type: ignore[arg-type]
        incident(
            incident_id,
            IncidentEvent.UPDATED,
            threshold_at=threshold_at,
            event_at=threshold_at + timedelta(seconds=5),
            dwell_s=65,
            snapshot=jpeg(20),
            **kw,  # type: ignore[arg-type]
        ),
        incident(
            incident_id,
            IncidentEvent.CLOSED,
            threshold_at=threshold_at,
            event_at=threshold_at + timedelta(seconds=30),
            dwell_s=90,
            snapshot=jpeg(30),
            **kw,  # type: ignore[arg-type]
        ),
    ]


def sealed_metadata(
    incident_id: uuid.UUID, *, sealed_at: datetime = T0, frame_count: int = 1
) -> EvidenceSealed:
    """A sealed-evidence message with no objects behind it: for tests that never download."""
    return EvidenceSealed(
        evidence_id=uuid.uuid4(),
        incident_id=incident_id,
        camera_id="cam1",
        bucket="b",
        artifacts=(
            StoredArtifact(
                kind=ArtifactKind.WORKING_COPY,
                key="k",
                version_id="v1",
                sha256="0" * 64,
                size=1,
                content_type="video/mp4",
            ),
        ),
        manifest_sha256="1" * 64,
        frame_count=frame_count,
        first_capture_ts=T0,
        last_capture_ts=T0,
        sealed_at=sealed_at,
        retain_until=sealed_at + timedelta(days=1),
        signing_key_id="k1",
    )


def status(camera_id: str = "cam1", at: datetime | None = None, fps: float = 5.0) -> CameraStatus:
    at = at or datetime.now(UTC)
    return CameraStatus(
        camera_id=camera_id,
        state=CameraState.ONLINE,
        at=at,
        fps=fps,
        last_frame_at=at,
        frames_sent=100,
        frames_dropped=1,
        reconnects=0,
        worker="ingest@test",
    )


@dataclass(frozen=True)
class SealedObjects:
    message: EvidenceSealed
    contents: dict[ArtifactKind, bytes]


def seal_evidence(
    settings: Settings, incident_id: uuid.UUID, *, wrong_hash_for: ArtifactKind | None = None
) -> SealedObjects:
    """Put real working copy, master and manifest objects in the Object-Lock bucket; the sealed message."""
    client = make_client(settings.s3)
    ensure_evidence_bucket(client, settings.s3)
    evidence_id = uuid.uuid4()
    master = io.BytesIO()
    with tarfile.open(fileobj=master, mode="w") as tar:
        for i in range(3):
            frame = jpeg(40 + i)
            info = tarfile.TarInfo(f"frames/{i:06d}.jpg")
            info.size = len(frame)
            tar.addfile(info, io.BytesIO(frame))
    contents = {
        ArtifactKind.WORKING_COPY: b"\x00\x00\x00\x18ftypmp42" + uuid.uuid4().bytes * 64,
        ArtifactKind.MASTER: master.getvalue(),
    }
    contents[ArtifactKind.MANIFEST] = json.dumps(
        {
            "evidence_id": str(evidence_id),
            "artifacts": {k.value: hashlib.sha256(v).hexdigest() for k, v in contents.items()},
        }
    ).encode()
    types = {
        ArtifactKind.WORKING_COPY: "video/mp4",
        ArtifactKind.MASTER: "application/x-tar",
        ArtifactKind.MANIFEST: "application/json",
    }
    artifacts = []
    for kind, data in contents.items():
        key = f"evidence/{evidence_id}/{kind.value}"
        result = client.put_object(
            settings.s3.evidence_bucket, key, io.BytesIO(data), len(data), content_type=types[kind]
        )
        digest = hashlib.sha256(data).hexdigest()
        if kind is wrong_hash_for:
            digest = hashlib.sha256(b"what the evidence store sealed").hexdigest()
        artifacts.append(
            StoredArtifact(
                kind=kind,
                key=key,
                version_id=result.version_id,
                sha256=digest,
                size=len(data),
                content_type=types[kind],
            )
        )
    message = EvidenceSealed(
        evidence_id=evidence_id,
        incident_id=incident_id,
        camera_id="cam1",
        bucket=settings.s3.evidence_bucket,
        artifacts=tuple(artifacts),
        manifest_sha256=hashlib.sha256(contents[ArtifactKind.MANIFEST]).hexdigest(),
        frame_count=3,
        first_capture_ts=T0 - timedelta(seconds=70),
        last_capture_ts=T0 + timedelta(seconds=35),
        sealed_at=T0 + timedelta(seconds=40),
        retain_until=T0 + timedelta(days=1),
        signing_key_id="test-key",
    )
    return SealedObjects(message, contents)


def produce(producer: KafkaProducer, settings: Settings, messages: Sequence[TopicMessage]) -> None:
    topics = {
        IncidentMessage: settings.kafka.incidents_topic,
        EvidenceSealed: settings.kafka.evidence_topic,
        CameraStatus: settings.kafka.status_topic,
    }
    for message in messages:
        key = getattr(message, "camera_id", "")
        send(producer, topics[type(message)], key, message).get(timeout=30)


def drain(persister: Persister, expected_records: int, timeout_s: float = 45.0) -> int:
    """Drive the persister until it has handled ``expected_records`` (group join included)."""
    handled, deadline = 0, time.monotonic() + timeout_s
    while handled < expected_records and time.monotonic() < deadline:
        count = persister.poll_once(0.5)
        assert count >= 0, "persister stopped while retrying"
        handled += count
    return handled


def dead_letters(settings: Settings, expected: int, timeout_s: float = 20.0) -> list[DeadLetter]:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers.split(","), enable_auto_commit=False
    )
    try:
        tp = TopicPartition(settings.kafka.dead_letter_topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        letters: list[DeadLetter] = []
        deadline = time.monotonic() + timeout_s
        while len(letters) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                letters.extend(decode(DeadLetter, r.value, list(r.headers or [])) for r in records)
        return letters
    finally:
        consumer.close()


def custody_chain(client: TestClient, evidence_id: uuid.UUID) -> list[CustodyEntry]:
    """An item's custody chain read straight from the app's database (not through the API)."""
    context = client.app.state.context  # type: ignore[attr-defined]
    with context.sessions() as session:
        return read_chain(session, evidence_id)


@dataclass
class ApiUnderTest:
    """An app (no persister thread) on a real database and the session's S3 store, plus its persister."""

    client: TestClient
    persister: Persister
    settings: Settings

    @property
    def context(self) -> Any:
        return self.client.app.state.context  # type: ignore[attr-defined]

    def sealed(self) -> SealedObjects:
        """A new incident with real evidence objects in the bucket, persisted as the persister would."""
        incident_id = uuid.uuid4()
        sealed = seal_evidence(self.settings, incident_id)
        self.persister.persist([*lifecycle(incident_id), sealed.message])
        return sealed


def seed_keys(sessions: Any) -> None:
    """The test principals' API keys in the app's database (idempotent)."""
    with sessions.begin() as session:
        existing = set(session.scalars(sqlalchemy.select(ApiKeyRow.name)))
        keys = [(name, role, secret, None) for name, (role, secret) in TEST_KEYS.items()]
        keys.append((CAM2_KEY_NAME, ActorRole.OPERATOR, CAM2_KEY, ["cam2"]))
        for name, role, secret, cameras in keys:
            if name not in existing:
                auth.create_api_key(
                    session,
                    name=name,
                    role=role,
                    cameras=cameras,
                    created_by="tests",
                    now=datetime.now(UTC),
                    secret=secret,
                )


def authorize(client: TestClient, default: dict[str, str] | None = None) -> TestClient:
    """Seed the test keys into the app and send ``default`` (legal) unless a request says otherwise."""
    seed_keys(client.app.state.context.sessions)  # type: ignore[attr-defined]
    client.headers.update(LEGAL if default is None else default)
    return client


@contextlib.contextmanager
def api_under_test(settings: Settings, url: str) -> Iterator[ApiUnderTest]:
    settings = with_database(settings, url)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    with TestClient(app) as client:
        authorize(client)
        persister = Persister(
            context.sessions, None, None, settings.kafka, threading.Event(), context.metrics
        )
        yield ApiUnderTest(client, persister, settings)


# --------------------------------------------------------------------------- real sealed evidence

# The sim's street with real (rendered) pedestrians; frames 105.. of seed 5: person 6 crosses the
# whole clip, person 7 enters later (see tests/test_redaction.py).
WALKERS = Camera(id="cam2", name="Car park", location="Car park, Bridge Rd", source="sim://walkers?seed=5")
WALKERS_FIRST = 105
WALKERS_SUBJECT = 6


@dataclass(frozen=True)
class SimSealed:
    """A sim clip sealed exactly as the evidence worker seals one, and persisted by the API."""

    message: EvidenceSealed
    package: EvidencePackage
    opened: IncidentMessage
    truth: list[dict[int, tuple[int, int, int, int]]]  # per frame: person id -> box

    @property
    def evidence_id(self) -> uuid.UUID:
        return self.message.evidence_id


def seal_sim(
    api: ApiUnderTest,
    *,
    camera: Camera = WALKERS,
    first: int = WALKERS_FIRST,
    count: int = 6,
    subject_frame: int = 0,
    subjects: tuple[int, ...] = (WALKERS_SUBJECT,),
    tsa_url: str | None = None,
) -> SimSealed:
    """Frames ``first..first+count-1`` of a sim camera: master, H.264 working copy, manifest signed with
    the API's key (the evidence worker's), optional RFC 3161 token, written COMPLIANCE-locked by
    :class:`EvidenceStore`; the incident's OPENED event carries the sim's true boxes of ``subjects``
    at ``subject_frame`` (a redaction's default subjects), then it is persisted like the topics."""
    now = datetime.now(UTC)
    start = now - timedelta(minutes=5)
    frames = scripted_frames(camera, (first + count + 0.5) / camera.fps, start=start)[first : first + count]
    scene = scene_from_url(camera.source)
    truth = [{p.person_id: p.box for p in scene.people_at((first + i) / camera.fps)} for i in range(count)]
    items = tuple(WindowFrame(f, offset=1000 + i) for i, f in enumerate(frames))
    window = FrameWindow(
        camera_id=camera.id,
        topic="t.frames",
        partition=0,
        start_offset=1000,
        window_start=items[0].frame.capture_ts,
        window_end=items[-1].frame.capture_ts,
        frames=items,
        integrity_problems=(),
        gaps=find_gaps(items),
        complete=True,
        end_reason="post-roll reached",
        last_offset_read=1000 + count,
    )
    incident_id, at = uuid.uuid4(), frames[subject_frame].capture_ts
    boxes = tuple(
        Box(x1=b[0], y1=b[1], x2=b[2], y2=b[3], confidence=0.9, track_id=pid)
        for pid, b in truth[subject_frame].items()
        if pid in subjects
    )
    common: dict[str, Any] = {
        "incident_id": incident_id,
        "camera_id": camera.id,
        "rule": "loitering",
        "zone_id": "door",
        "track_ids": tuple(b.track_id for b in boxes if b.track_id is not None),
        "started_at": frames[0].capture_ts,
        "threshold_at": at,
        "summary": "person loitering by the door",
        "frames": FrameSpan(partition=0, start_offset=1000, end_offset=1000 + count - 1),
        "detector": DETECTOR,
    }
    opened = IncidentMessage(event=IncidentEvent.OPENED, event_at=at, boxes=boxes, dwell_s=60.0, **common)
    closed = IncidentMessage(
        event=IncidentEvent.CLOSED,
        event_at=frames[-1].capture_ts,
        ended_at=frames[-1].capture_ts,
        boxes=boxes,
        dwell_s=61.0,
        **common,
    )
    signer = api.context.signer
    package = build_package(
        closed,
        window,
        CameraInfo(camera.id, camera.name, camera.location, in_registry=True),
        sealed_at=now,
        retain_until=retain_until_for(now, 1),
        signing_key_id=signer.key_id,
    )
    token = request_token(tsa_url, package.manifest_sha256, timeout_s=10) if tsa_url else None
    store = EvidenceStore(make_client(api.settings.s3), api.settings.s3)
    store.ensure_bucket()
    message = store.write(closed, package, signer.sign(package.manifest), token)
    api.persister.persist([opened, closed, message])
    return SimSealed(message, package, opened, truth)
