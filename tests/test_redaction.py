"""Redacted copies: real frames in (the sim's street with real pedestrians, PETS09 footage), blurred
derivatives out; the master is untouched, the record is signed and linked, the store locks it.

Where people are is known from the sim's ground truth (``SimScene.people_at``) and from the PETS
annotations, never from the detector under test. "Blurred" is measured as the drop of the
high-frequency energy (variance of the Laplacian) inside a person's box.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from pydantic import ValidationError

from cctv.config import Camera, Settings
from cctv.contracts import (
    Box,
    DetectorInfo,
    FrameMessage,
    FrameSpan,
    IncidentEvent,
    IncidentMessage,
    sha256_hex,
)
from cctv.objectstore import make_client
from detector.detections import Detections
from evidence_store.custody import ActorRole
from evidence_store.package import CameraInfo, EvidencePackage, build_package
from evidence_store.redact import (
    KeepBox,
    RedactBox,
    RedactionError,
    RedactionRequest,
    apply_blurs,
    match_keep,
    plan_people,
    redact_frames,
)
from evidence_store.redaction_record import (
    MasterMismatch,
    RedactionExists,
    build_redaction,
    load_master,
    redaction_backend,
    redaction_problems,
    store_redaction,
)
from evidence_store.signing import ManifestSigner, verify_manifest
from evidence_store.store import EvidenceStore, incident_prefix, retain_until_for
from evidence_store.window import FrameWindow, WindowFrame, find_gaps
from ingest.sim import scene_from_url, scripted_frames

XYXY = tuple[int, int, int, int]
WALKERS = Camera(id="cam-walk", name="High Street", location="1 High St", source="sim://walkers?seed=5")
FIRST = 105  # frames 105-126 of walkers seed 5: person 6 crosses the whole clip, person 7 enters at 120
SUBJECT, BYSTANDER = 6, 7
KEEP_FRAME = 10  # mid-clip: the subject must stay sharp before and after it


@dataclass(frozen=True)
class Clip:
    frames: list[FrameMessage]
    truth: list[dict[int, XYXY]]  # per frame: person id -> box

    @property
    def images(self) -> list[bytes]:
        return [f.image for f in self.frames]


def energy(image: np.ndarray, box: XYXY) -> float:
    """High-frequency energy: variance of the Laplacian of the grey crop."""
    x1, y1, x2, y2 = box
    grey = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def inside_mask(shape: tuple[int, ...], regions: Sequence[Sequence[int]]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for x1, y1, x2, y2 in regions:
        mask[y1:y2, x1:x2] = True
    return mask


@pytest.fixture(scope="module")
def walkers() -> Clip:
    frames = scripted_frames(WALKERS, (FIRST + 22.5) / WALKERS.fps)[FIRST : FIRST + 22]
    scene = scene_from_url(WALKERS.source)
    truth = [
        {p.person_id: p.box for p in scene.people_at((FIRST + i) / WALKERS.fps)} for i in range(len(frames))
    ]
    assert all(SUBJECT in t for t in truth) and BYSTANDER in truth[-1]
    return Clip(frames, truth)


def subject_keep(clip: Clip, frame: int = KEEP_FRAME) -> KeepBox:
    x1, y1, x2, y2 = clip.truth[frame][SUBJECT]
    return KeepBox(frame=frame, x1=x1, y1=y1, x2=x2, y2=y2)


# --------------------------------------------------------------------------- request and planning rules


@pytest.mark.parametrize(
    "fields",
    [
        {"mode": "boxes"},  # boxes mode without boxes
        {"mode": "boxes", "boxes": [{"frame_from": 0, "frame_to": 0, "x1": 0, "y1": 0, "x2": 5, "y2": 5}],
         "keep": [{"frame": 0, "x1": 0, "y1": 0, "x2": 5, "y2": 5}]},  # subjects make no sense there
        {"mode": "boxes", "boxes": [{"frame_from": 3, "frame_to": 2, "x1": 0, "y1": 0, "x2": 5, "y2": 5}]},
        {"mode": "boxes", "boxes": [{"frame_from": 0, "frame_to": 0, "x1": 5, "y1": 0, "x2": 5, "y2": 5}]},
        {"mode": "people_except_subjects", "blur_faces_only": True},  # unknown field
        {"mode": "everyone"},
    ],
)  # fmt: skip
def test_invalid_requests_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RedactionRequest.model_validate(fields)


@pytest.mark.parametrize(
    ("keep", "expected"),
    [
        ((100, 100, 150, 250), 0),  # exact box
        ((95, 120, 160, 260), 0),  # operator's rougher box: IoU >= 0.3
        ((118, 160, 130, 190), 0),  # small box around the body's centre: centre inside wins
        ((300, 100, 350, 250), None),  # nobody there
        ((110, 100, 215, 250), 0),  # both centres inside: only the higher IoU claims it
    ],
)
def test_a_keep_box_is_claimed_by_one_detection(keep: XYXY, expected: int | None) -> None:
    boxes = np.array([[100, 100, 150, 250], [180, 100, 230, 250]], np.float32)
    assert match_keep(KeepBox(frame=0, x1=keep[0], y1=keep[1], x2=keep[2], y2=keep[3]), boxes) == expected


def detections(index: int, rows: list[tuple[XYXY, int]]) -> Detections:
    return Detections(
        camera_id="c",
        seq=index,
        capture_ts=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index / 5),
        width=640,
        height=480,
        boxes=np.array([r[0] for r in rows], np.float32).reshape(-1, 4),
        confidences=np.full(len(rows), 0.8, np.float32),
        class_ids=np.zeros(len(rows), np.int32),
        track_ids=np.array([r[1] for r in rows], np.int64),
    )


def test_plan_keeps_the_subject_track_and_blurs_bystanders_across_missed_frames() -> None:
    subject = ((100, 100, 150, 250), 1)
    people = [
        detections(0, [subject, ((300, 100, 350, 250), 2)]),
        detections(1, [subject]),  # bystander 2 missed by the detector in frames 1 and 2
        detections(2, [subject]),
        detections(3, [subject, ((330, 100, 380, 250), 2), ((500, 50, 540, 150), -1)]),  # + unconfirmed
        detections(4, [subject]),
        detections(20, [subject, ((400, 100, 450, 250), 2)]),  # 3.2 s later: too long a gap to fill
    ]
    keep = [KeepBox(frame=2, x1=100, y1=100, x2=150, y2=250)]  # claims track 1 in frame 2 only
    blurs, kept = plan_people(people, keep, margin=0.1, max_gap_s=2.0)
    assert [[s.track_id for s in frame] for frame in kept] == [[1]] * 6
    assert [s.claimed_keep_box for frame in kept for s in frame] == [False, False, True, False, False, False]
    summary = [[(b.source, b.track_id, b.region) for b in frame] for frame in blurs]
    assert summary == [
        [("detected", 2, (295, 85, 355, 265))],
        [("interpolated", 2, (305, 85, 365, 265))],  # a third of the way from x 300 to 330
        [("interpolated", 2, (315, 85, 375, 265))],
        [("detected", 2, (325, 85, 385, 265)), ("detected", None, (496, 40, 544, 160))],
        [],
        [("detected", 2, (395, 85, 455, 265))],
    ]


def test_requests_outside_the_clip_are_refused(walkers: Clip) -> None:
    images = walkers.images[:3]
    past_end = RedactionRequest(
        mode="boxes", boxes=(RedactBox(frame_from=1, frame_to=3, x1=0, y1=0, x2=9, y2=9),)
    )
    with pytest.raises(RedactionError, match="the clip has 3 frames"):
        redact_frames(images, past_end)
    off_frame = RedactionRequest(
        mode="boxes", boxes=(RedactBox(frame_from=0, frame_to=0, x1=900, y1=0, x2=990, y2=9),)
    )
    with pytest.raises(RedactionError, match="outside frame 0"):
        redact_frames(images, off_frame)
    with pytest.raises(RedactionError, match="needs a detector backend"):
        redact_frames(images, RedactionRequest(mode="people_except_subjects"))


# --------------------------------------------------------------------------- pixels


def test_boxes_mode_blurs_exactly_the_requested_regions(walkers: Clip) -> None:
    images = walkers.images[:6]
    person = walkers.truth[2][SUBJECT]
    plate = (20, 500, 140, 540)  # an arbitrary non-person region, frames 0-5
    request = RedactionRequest(
        mode="boxes",
        boxes=(
            RedactBox(frame_from=2, frame_to=4, x1=person[0], y1=person[1], x2=person[2], y2=person[3]),
            RedactBox(
                frame_from=0, frame_to=5, x1=plate[0] + 0.4, y1=plate[1], x2=plate[2] - 0.4, y2=plate[3]
            ),
        ),
    )
    result = redact_frames(images, request)
    for k, (data, redacted, step) in enumerate(zip(images, result.frames, result.plan, strict=True)):
        master = decode(data)
        assert redacted is not None and redacted.shape == master.shape
        regions = [plate] + ([person] if 2 <= k <= 4 else [])
        assert sorted(step.regions) == sorted(regions)  # exactly those boxes (fractions rounded outward)
        assert {b.source for b in step.blurred} == {"requested"}
        outside = ~inside_mask(master.shape, regions)
        assert np.array_equal(redacted[outside], master[outside])  # not one pixel outside changed
        for region in regions:
            assert energy(redacted, region) < 0.05 * energy(master, region)
    assert result.plan[0].subjects == ()


def test_people_mode_leaves_the_subject_sharp_and_blurs_the_others(walkers: Clip) -> None:
    request = RedactionRequest(mode="people_except_subjects", keep=(subject_keep(walkers),))
    result = redact_frames(
        walkers.images,
        request,
        backend=redaction_backend(request.detector),
        capture_times=[f.capture_ts for f in walkers.frames],
        fps=WALKERS.fps,
    )
    blurred_bystander = 0
    subject_tracks = set()
    for k, (data, redacted, step) in enumerate(zip(walkers.images, result.frames, result.plan, strict=True)):
        master = decode(data)
        assert redacted is not None
        subject_box = walkers.truth[k][SUBJECT]
        subject_tracks |= {s.track_id for s in step.subjects}
        if BYSTANDER in walkers.truth[k] and k < 21:  # frame 21: the two overlap
            bystander = walkers.truth[k][BYSTANDER]
            if energy(redacted, bystander) < 0.1 * energy(master, bystander):
                blurred_bystander += 1
            assert energy(redacted, subject_box) == pytest.approx(energy(master, subject_box))
            continue
        if k < 21:  # the subject alone: nothing blurred at all, and they are listed as kept
            assert step.blurred == () and np.array_equal(redacted, master), k
            assert len(step.subjects) == 1
    assert subject_tracks not in (set(), {None}) and len(subject_tracks) == 1  # one track all along
    assert [s.claimed_keep_box for s in result.plan[KEEP_FRAME].subjects] == [True]
    assert blurred_bystander >= 3  # HOG finds the dark-coated walker in 4 of the 6 frames before they meet
    recreated = apply_blurs(decode(walkers.images[19]), result.plan[19].regions)  # the log defines the pixels
    assert np.array_equal(recreated, result.frames[19])


def pets_frames(pets_dir: Path, count: int) -> tuple[list[bytes], list[list[tuple[int, XYXY]]]]:
    """The first ``count`` frames of the real footage as ingest would JPEG them, and the annotated people."""
    capture = cv2.VideoCapture(str(pets_dir / "vtest.avi"))
    images = []
    for _ in range(count):
        ok, image = capture.read()
        assert ok
        images.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    capture.release()
    people: list[list[tuple[int, XYXY]]] = [[] for _ in range(count)]
    for line in (pets_dir / "gt.txt").read_text().splitlines():
        frame, pid, x, y, w, h = (float(v) for v in line.split(",")[:6])
        if frame <= count:
            box = (round(x), round(y), round(x + w), round(y + h))
            people[int(frame) - 1].append((int(pid), box))
    return images, people


def test_real_pets_footage_people_but_one_are_blurred(pets_dir: Path) -> None:
    images, people = pets_frames(pets_dir, 6)
    kept_id, kept_box = people[0][0]
    request = RedactionRequest(
        mode="people_except_subjects",
        keep=(KeepBox(frame=0, x1=kept_box[0], y1=kept_box[1], x2=kept_box[2], y2=kept_box[3]),),
        detector={"hog_scale": 1.5},  # PETS people are 75-90 px tall: upscale for HOG's window
    )
    result = redact_frames(images, request, backend=redaction_backend(request.detector), fps=7.0)
    blurred = sharp = 0
    for data, redacted, annotated in zip(images, result.frames, people, strict=True):
        master = decode(data)
        assert redacted is not None
        for pid, box in annotated:
            ratio = energy(redacted, box) / energy(master, box)
            if pid == kept_id:
                sharp += ratio > 0.95
            else:
                blurred += ratio < 0.2
    others = sum(len(a) - 1 for a in people)
    assert sharp == len(images) and blurred >= 0.8 * others


# --------------------------------------------------------------------------- record, master, encoder


def incident_for(clip: Clip, boxes: tuple[Box, ...] = ()) -> IncidentMessage:
    at = clip.frames[0].capture_ts
    return IncidentMessage(
        incident_id=uuid.uuid4(),
        event=IncidentEvent.CLOSED,
        camera_id=WALKERS.id,
        rule="loitering",
        zone_id="bench",
        track_ids=(1,),
        started_at=at,
        threshold_at=clip.frames[len(clip.frames) // 2].capture_ts,
        event_at=clip.frames[-1].capture_ts,
        ended_at=clip.frames[-1].capture_ts,
        summary="person loitering",
        boxes=boxes,
        frames=FrameSpan(partition=0, start_offset=0, end_offset=len(clip.frames) - 1),
        detector=DetectorInfo(backend="hog", model_name="opencv-hog", weights_sha256=None),
    )


def package_for(clip: Clip, incident: IncidentMessage, signer: ManifestSigner) -> EvidencePackage:
    items = tuple(WindowFrame(f, offset=i) for i, f in enumerate(clip.frames))
    window = FrameWindow(
        camera_id=WALKERS.id,
        topic="t.frames",
        partition=0,
        start_offset=0,
        window_start=items[0].frame.capture_ts,
        window_end=items[-1].frame.capture_ts,
        frames=items,
        integrity_problems=(),
        gaps=find_gaps(items),
        complete=True,
        end_reason="post-roll reached",
        last_offset_read=len(items),
    )
    sealed_at = datetime.now(UTC)  # the store refuses a retention that has already ended
    return build_package(
        incident,
        window,
        CameraInfo(WALKERS.id, WALKERS.name, WALKERS.location, in_registry=True),
        sealed_at=sealed_at,
        retain_until=retain_until_for(sealed_at, 1),
        signing_key_id=signer.key_id,
    )


@pytest.fixture(scope="module")
def signer() -> ManifestSigner:
    return ManifestSigner.generate()


def test_record_is_signed_links_the_master_and_the_master_is_untouched(
    walkers: Clip, signer: ManifestSigner
) -> None:
    clip = Clip(walkers.frames[8:], walkers.truth[8:])  # 14 frames; subject keep frame 2, bystander from 12
    keep = clip.truth[2][SUBJECT]
    incident = incident_for(
        clip, boxes=(Box(x1=keep[0], y1=keep[1], x2=keep[2], y2=keep[3], confidence=0.9),)
    )
    incident = incident.model_copy(
        update={"threshold_at": clip.frames[2].capture_ts + timedelta(milliseconds=70)}
    )
    package = package_for(clip, incident, signer)
    master_before = sha256_hex(package.master)
    source = load_master(package.master, package.manifest, signer.sign(package.manifest), signer.public_key)
    built = build_redaction(
        source,
        RedactionRequest(mode="people_except_subjects"),  # keep: the incident's boxes at threshold_at
        signer,
        actor="legal@example.org",
        role=ActorRole.LEGAL,
        reason="disclosure to the council's solicitors",
        incident_boxes=incident.boxes,
    )
    document = json.loads(built.record)
    assert verify_manifest(built.record, built.signature, signer.public_key)
    assert document == built.document and list(document) == sorted(document)
    assert document["derived_from"] == "master"
    assert (
        document["master_sha256"]
        == master_before
        == package.manifest_document["artifacts"]["master"]["sha256"]
    )
    assert document["manifest_sha256"] == package.manifest_sha256
    assert document["evidence_id"] == str(package.evidence_id)
    assert document["output"]["sha256"] == sha256_hex(built.video) and document["output"]["size"] == len(
        built.video
    )
    assert document["parameters"]["keep_source"] == {
        "from": "incident boxes",
        "boxes_at": incident.threshold_at.isoformat(),
        "frame": 2,
    }
    assert (
        document["detector"]["backend"] == "hog" and document["detector"]["thresholds"]["confidence"] == 0.3
    )
    assert document["created_by"] == {"actor": "legal@example.org", "role": "legal"}
    assert [f["sha256"] for f in document["frames"]] == [f.sha256 for f in clip.frames]
    assert (
        redaction_problems(built.record, built.signature, signer.public_key, built.video, package.manifest)
        == []
    )
    assert sha256_hex(package.master) == master_before  # the master's bytes were never touched

    # The MP4: same encoder and burn-in as the working copy, the bystander blurred, the subject not.
    assert package.working_copy is not None
    assert (
        document["encoder"]["codec_options"]
        == package.manifest_document["artifacts"]["working_copy"]["encoder"]["codec_options"]
    )
    with av.open(io.BytesIO(built.video)) as container:
        redacted = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    with av.open(io.BytesIO(package.working_copy.data)) as container:
        working = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(redacted) == len(working) == len(clip.frames) == document["output"]["frames_encoded"]
    assert (
        np.abs(redacted[0][:60, :250].astype(int) - working[0][:60, :250].astype(int)).mean() < 3
    )  # burn-in
    blurred_frames = [f for f in document["frames"] if any(b["track_id"] != 1 for b in f["blurred"])]
    assert blurred_frames, "the bystander was never blurred"
    for entry in blurred_frames:
        k = entry["index"]
        region = tuple(entry["blurred"][0]["region"])
        assert energy(redacted[k], region) < 0.1 * energy(working[k], region)
        subject = clip.truth[k][SUBJECT]
        assert energy(redacted[k], subject) > 0.8 * energy(working[k], subject)

    tampered = bytearray(built.video)
    tampered[len(tampered) // 2] ^= 1
    assert redaction_problems(built.record, built.signature, signer.public_key, bytes(tampered)) != []
    with pytest.raises(RedactionError, match="needs a reason"):
        build_redaction(source, RedactionRequest(mode="people_except_subjects"), signer,
                        actor="x", role=ActorRole.LEGAL, reason="  ")  # fmt: skip


def rebuilt_master(master: bytes, change: str) -> bytes:
    """The master's members re-archived with one frame's bytes altered, two frames swapped or one dropped."""
    with tarfile.open(fileobj=io.BytesIO(master)) as archive:
        members = [(m, archive.extractfile(m).read()) for m in archive.getmembers()]  # type: ignore[union-attr]
    if change == "flip":
        info, data = members[1]
        members[1] = (info, data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif change == "swap":
        members[1], members[2] = members[2], members[1]
    else:
        del members[3]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ("flip", "frame 1 (seq 106) sha256 mismatch"),
        ("swap", "frames out of order at index 1: expected seq 106 found seq 107"),
        ("drop", "frame 3 (seq 108) missing"),
    ],
)
def test_a_master_that_does_not_match_its_manifest_is_refused(
    walkers: Clip, signer: ManifestSigner, change: str, names: str
) -> None:
    clip = Clip(walkers.frames[:6], walkers.truth[:6])
    package = package_for(clip, incident_for(clip), signer)
    assert len(load_master(package.master, package.manifest).frames) == 6
    with pytest.raises(MasterMismatch, match="refusing to redact") as refused:
        load_master(rebuilt_master(package.master, change), package.manifest)
    assert names in str(refused.value) and "is not the manifest's" in str(refused.value)
    with pytest.raises(MasterMismatch, match="cannot be read as a tar archive"):
        load_master(b"not a tar archive at all" * 40, package.manifest)
    with pytest.raises(MasterMismatch, match="signature does not verify"):
        load_master(
            package.master,
            package.manifest,
            signer.sign(package.manifest),
            ManifestSigner.generate().public_key,
        )


# --------------------------------------------------------------------------- the real S3 store


def test_stored_redaction_is_locked_verified_and_never_overwritten(
    settings: Settings, walkers: Clip, signer: ManifestSigner
) -> None:
    store = EvidenceStore(make_client(settings.s3), settings.s3)
    store.ensure_bucket()
    clip = Clip(walkers.frames[:5], walkers.truth[:5])
    incident = incident_for(clip)
    package = package_for(clip, incident, signer)
    sealed = store.write(incident, package, signer.sign(package.manifest))
    retain_until = datetime.fromisoformat(package.manifest_document["retention"]["retain_until"])
    source = load_master(package.master, package.manifest)
    box = clip.truth[0][SUBJECT]
    request = RedactionRequest(
        mode="boxes", boxes=(RedactBox(frame_from=0, frame_to=4, x1=box[0], y1=box[1], x2=box[2], y2=box[3]),)
    )
    built = build_redaction(
        source, request, signer, actor="op1", role=ActorRole.OPERATOR, reason="press request"
    )
    assert built.document["detector"] is None

    stored = store_redaction(store, incident_prefix(incident), built, retain_until=retain_until)
    prefix = f"{incident_prefix(incident)}/redactions/{built.redaction_id}"
    expected = {stored.video: built.video, stored.record: built.record, stored.signature: built.signature}
    assert [o.key for o in expected] == [f"{prefix}.mp4", f"{prefix}.json", f"{prefix}.sig.json"]
    for obj, data in expected.items():
        response = store.client.get_object(store.bucket, obj.key, version_id=obj.version_id)
        try:
            assert sha256_hex(response.read()) == obj.sha256 == sha256_hex(data) and obj.size == len(data)
        finally:
            response.close()
            response.release_conn()
        retention = store.client.get_object_retention(store.bucket, obj.key, version_id=obj.version_id)
        assert retention is not None and retention.mode == COMPLIANCE
        assert retention.retain_until_date == retain_until  # the item's own lock, to the second
        with pytest.raises(S3Error):
            store.client.remove_object(store.bucket, obj.key, version_id=obj.version_id)
    assert stored.video.content_type == "video/mp4" and stored.record.content_type == "application/json"

    with pytest.raises(RedactionExists, match="already exists"):
        store_redaction(store, incident_prefix(incident), built, retain_until=retain_until)
    again = build_redaction(
        source, request, signer, actor="op1", role=ActorRole.OPERATOR, reason="second copy"
    )
    second = store_redaction(store, incident_prefix(incident), again, retain_until=retain_until)
    assert second.redaction_id != stored.redaction_id and second.video.key != stored.video.key

    # The master: still exactly one version, with the sealed bytes.
    master = next(a for a in sealed.artifacts if a.key.endswith("/master.tar"))
    versions = [
        v for v in store.client.list_objects(store.bucket, prefix=master.key, include_version=True)
        if not v.is_delete_marker
    ]  # fmt: skip
    assert [v.version_id for v in versions] == [master.version_id]
    response = store.client.get_object(store.bucket, master.key, version_id=master.version_id)
    try:
        assert sha256_hex(response.read()) == master.sha256 == sha256_hex(package.master)
    finally:
        response.close()
        response.release_conn()
    for obj in (stored.video, stored.record, stored.signature):  # the first redaction is unchanged
        stat = store.client.stat_object(store.bucket, obj.key, version_id=obj.version_id)
        assert stat.size == obj.size
