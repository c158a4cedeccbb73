"""Builders of real evidence items and bundle tamper helpers for tests/test_bundle_verify.py."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from cctv.config import Camera
from cctv.contracts import DetectorInfo, FrameSpan, IncidentEvent, IncidentMessage, sha256_hex
from evidence_store.bundle import UNLISTED, BundleItem, ExportRequest, file_entry
from evidence_store.custody import (
    ActorRole,
    CustodyAction,
    CustodyEntry,
    canonical,
    chain_head,
    checkpoint_document,
    next_entry,
)
from evidence_store.package import CameraInfo, EvidencePackage, build_package, canonical_json
from evidence_store.signing import ManifestSigner
from evidence_store.verify import VerificationReport
from evidence_store.window import FrameWindow, WindowFrame, find_gaps
from ingest.sim import scripted_frames

REPO = Path(__file__).resolve().parents[1]
SUMMER = datetime(2025, 7, 1, 11, 59, 58, tzinfo=UTC)  # BST: UK time = UTC + 1
WINTER = datetime(2026, 1, 15, 9, 30, 0, tzinfo=UTC)  # GMT: UK time = UTC
FIRST_SEQ = 10  # the window starts at seq 10, so every frame's index and seq differ
REF, REF2 = "JS/1", "JS/2"
ITEM, ITEM2 = "items/JS_1", "items/JS_2"
ITEM_FILES = (
    "manifest.json",
    "manifest.sig.json",
    "manifest.tsr",
    "master.tar",
    "working.mp4",
    "custody.jsonl",
    "checkpoint.json",
    "checkpoint.sig.json",
    "redactions/blurred-000.jpg",
    "redactions/blurred-000.json",
    "redactions/blurred-000.sig.json",
)
MEMBERS = (
    "README.txt",
    "exhibit_report.txt",
    "bundle.json",
    "bundle.sig.json",
    "public_key.txt",
    "tsa-ca.pem",
    *(f"{ITEM}/{name}" for name in ITEM_FILES),
)
# The check that must fail (besides bundle.files naming the file) when any byte of this file changes.
CAUSE = {
    "bundle.json": "bundle.signature",
    "bundle.sig.json": "bundle.signature",
    f"{ITEM}/manifest.json": f"item[{REF}].manifest.signature",
    f"{ITEM}/manifest.sig.json": f"item[{REF}].manifest.signature",
    f"{ITEM}/master.tar": f"item[{REF}].master.sha256",
    f"{ITEM}/working.mp4": f"item[{REF}].working_copy.sha256",
    f"{ITEM}/custody.jsonl": f"item[{REF}].custody.chain",
    f"{ITEM}/checkpoint.json": f"item[{REF}].custody.checkpoint",
    f"{ITEM}/checkpoint.sig.json": f"item[{REF}].custody.checkpoint",
    f"{ITEM}/redactions/blurred-000.jpg": f"item[{REF}].redactions",
    f"{ITEM}/redactions/blurred-000.json": f"item[{REF}].redactions",
    f"{ITEM}/redactions/blurred-000.sig.json": f"item[{REF}].redactions",
}
ITEM_CHECKS = (
    "manifest",
    "manifest.signature",
    "manifest.sha256",
    "master.sha256",
    "master.frames",
    "working_copy.sha256",
    "custody.chain",
    "custody.checkpoint",
    "timestamp",
    "redactions",
)


# --------------------------------------------------------------------------- building real items


def sim_window(camera: Camera, start: datetime, count: int) -> FrameWindow:
    messages = scripted_frames(camera, (FIRST_SEQ + count) / camera.fps, start=start)[FIRST_SEQ:]
    frames = tuple(WindowFrame(message, offset=500 + message.seq) for message in messages)
    return FrameWindow(
        camera_id=camera.id,
        topic="cctv.frames",
        partition=0,
        start_offset=500 + FIRST_SEQ,
        window_start=frames[0].frame.capture_ts,
        window_end=frames[-1].frame.capture_ts,
        frames=frames,
        integrity_problems=(),
        gaps=find_gaps(frames),
        complete=True,
        end_reason="post-roll reached",
        last_offset_read=500 + FIRST_SEQ + count,
    )


def sim_incident(camera: Camera, window: FrameWindow) -> IncidentMessage:
    first = window.frames[0].frame.capture_ts
    return IncidentMessage(
        incident_id=uuid.uuid4(),
        event=IncidentEvent.CLOSED,
        camera_id=camera.id,
        rule="loitering",
        zone_id="bench",
        started_at=first + timedelta(seconds=0.4),
        threshold_at=first + timedelta(seconds=1.0),
        event_at=first + timedelta(seconds=1.6),
        ended_at=first + timedelta(seconds=1.6),
        summary="person loitered 61 s at the bench",
        frames=FrameSpan(partition=0, start_offset=window.start_offset, end_offset=window.start_offset + 10),
        detector=DetectorInfo(
            backend="hog", model_name="opencv-hog", weights_sha256=None, thresholds={"confidence": 0.4}
        ),
    )


def sealed_package(camera: Camera, start: datetime, signer: ManifestSigner, count: int) -> EvidencePackage:
    window = sim_window(camera, start, count)
    info = CameraInfo(camera.id, camera.name, camera.location, in_registry=True)
    sealed = start + timedelta(minutes=2)
    return build_package(
        sim_incident(camera, window),
        window,
        info,
        sealed_at=sealed,
        retain_until=sealed + timedelta(days=31),
        signing_key_id=signer.key_id,
    )


CUSTODY_STEPS: list[tuple[CustodyAction, str, ActorRole, str | None]] = [
    (CustodyAction.SEALED, "evidence-worker", ActorRole.SYSTEM, None),
    (CustodyAction.CREATED, "api-persister", ActorRole.SYSTEM, None),
    (CustodyAction.VIEWED, "op.jones", ActorRole.OPERATOR, None),
    (CustodyAction.DOWNLOADED, "legal.smith", ActorRole.LEGAL, "review for injunction application"),
    (CustodyAction.HOLD_PLACED, "legal.smith", ActorRole.LEGAL, "litigation hold, claim 42"),
    (CustodyAction.EXPORTED, "legal.smith", ActorRole.LEGAL, "disclosure to the council's solicitors"),
]


def custody_chain(evidence_id: str, sealed: datetime, master_sha: str) -> list[CustodyEntry]:
    entries: list[CustodyEntry] = []
    for number, (action, actor, role, reason) in enumerate(CUSTODY_STEPS):
        entries.append(
            next_entry(
                entries[-1] if entries else None,
                evidence_id,
                action,
                actor=actor,
                role=role,
                at=sealed + timedelta(minutes=5 * number),
                reason=reason,
                object_key=f"incidents/{evidence_id}/master.tar",
                object_sha256=master_sha,
            )
        )
    return entries


def signed_checkpoint(entries: list[CustodyEntry], signer: ManifestSigner) -> tuple[bytes, bytes]:
    """A checkpoint of every item's head taken before the export entry, as the API writes them."""
    head = chain_head(entries[:-1])
    assert head is not None
    at = datetime.fromisoformat(entries[-2].at) + timedelta(seconds=30)
    heads = {entries[0].evidence_id: head, "another-item": (0, "0" * 64)}
    document = canonical(checkpoint_document(heads, at=at, previous_checkpoint_sha256=None))
    return document, signer.sign(document)


def first_frame(package: EvidencePackage) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(package.master)) as archive:
        handle = archive.extractfile(archive.getmembers()[0])
        assert handle is not None
        return handle.read()


def redaction(package: EvidencePackage, signer: ManifestSigner) -> dict[str, bytes]:
    """A blurred copy of the first frame and its signed record linking it to the master."""
    frame = cv2.imdecode(np.frombuffer(first_frame(package), np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None
    ok, encoded = cv2.imencode(".jpg", cv2.GaussianBlur(frame, (31, 31), 0))
    assert ok
    blurred = encoded.tobytes()
    record = canonical_json(
        {
            "kind": "redaction",
            "method": "gaussian blur 31x31, whole frame",
            "master_sha256": package.manifest_document["artifacts"]["master"]["sha256"],
            "derivative": {"name": "blurred-000.jpg", "sha256": sha256_hex(blurred), "size": len(blurred)},
        }
    )
    return {
        "blurred-000.jpg": blurred,
        "blurred-000.json": record,
        "blurred-000.sig.json": signer.sign(record),
    }


def bundle_item(
    package: EvidencePackage, ref: str, signer: ManifestSigner, *, token: bytes | None, extras: bool
) -> BundleItem:
    evidence_id = str(package.evidence_id)
    sealed = datetime.fromisoformat(package.manifest_document["created_at"])
    entries = custody_chain(evidence_id, sealed, package.manifest_document["artifacts"]["master"]["sha256"])
    assert package.working_copy is not None
    return BundleItem(
        evidence_id=evidence_id,
        exhibit_ref=ref,
        manifest=package.manifest,
        signature=signer.sign(package.manifest),
        master=package.master,
        working_copy=package.working_copy.data,
        timestamp_token=token,
        custody=entries,
        checkpoint=signed_checkpoint(entries, signer) if extras else None,
        derivatives=redaction(package, signer) if extras else {},
    )


def master_of(item: BundleItem) -> bytes:
    assert item.master is not None, "a full item"
    return item.master


def redacted_item(item: BundleItem) -> BundleItem:
    """The item as a redacted disclosure carries it: everything but the master and working copy."""
    return replace(item, master=None, working_copy=None)


def foreign_redaction(item: BundleItem, signer: ManifestSigner) -> dict[str, bytes]:
    """The item's redacted copy with a genuinely signed record that names another master."""
    record = json.loads(item.derivatives["blurred-000.json"])
    record["master_sha256"] = "ab" * 32
    data = canonical_json(record)
    return {**item.derivatives, "blurred-000.json": data, "blurred-000.sig.json": signer.sign(data)}


def request(case: bool = False, contents: Literal["full", "redacted"] = "full") -> ExportRequest:
    return ExportRequest(
        export_id="exp-2025-0042",
        created_at=datetime(2025, 7, 2, 9, 15, 0, tzinfo=UTC),
        actor="legal.smith",
        role="legal",
        reason="disclosure to the council's solicitors for the injunction hearing",
        recipient="A. Solicitor",
        organisation="Exampleton Borough Council Legal Services",
        case_reference="CASE-7" if case else None,
        case_title="High Street persons unknown" if case else None,
        contents=contents,
    )


# --------------------------------------------------------------------------- helpers


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _changed(data: bytes, changes: Mapping[str, bytes | None]) -> dict[str, bytes]:
    files = members(data)
    for name, value in changes.items():
        if value is None:
            files.pop(name)
        else:
            files[name] = value
    return files


def tampered(data: bytes, changes: Mapping[str, bytes | None]) -> bytes:
    """The bundle with members replaced, added, or (value None) removed; nothing re-signed."""
    return _zipped(_changed(data, changes))


def resigned(
    data: bytes,
    changes: Mapping[str, bytes | None],
    signer: ManifestSigner,
    edit_index: Callable[[dict[str, Any]], None] | None = None,
) -> bytes:
    """A key holder's forgery: members changed, bundle.json's file list (and ``edit_index``)
    made to match, and the index re-signed, so only the item checks can tell."""
    files = _changed(data, changes)
    index = json.loads(files["bundle.json"])
    index["files"] = {name: file_entry(value) for name, value in files.items() if name not in UNLISTED}
    if edit_index is not None:
        edit_index(index)
    files["bundle.json"] = canonical(index)
    files["bundle.sig.json"] = signer.sign(files["bundle.json"])
    return _zipped(files)


def edited_index(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    """The bundle with ``edit`` applied to bundle.json and nothing re-signed."""
    index = json.loads(members(data)["bundle.json"])
    edit(index)
    return tampered(data, {"bundle.json": canonical(index)})


def _zipped(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def failed(report: VerificationReport) -> dict[str, str]:
    return {check.name: check.detail for check in report.failures}


def details(report: VerificationReport) -> dict[str, str]:
    return {check.name: check.detail for check in report.checks}


TarEntries = list[tuple[tarfile.TarInfo, bytes]]
TarEdit = Callable[[TarEntries], TarEntries]


def rebuild_tar(master: bytes, edit: TarEdit) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(master)) as archive:
        entries = []
        for info in archive.getmembers():
            handle = archive.extractfile(info)
            assert handle is not None
            entries.append((info, handle.read()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for info, content in edit(entries):
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def drop_frame(index: int) -> TarEdit:
    return lambda entries: [entry for number, entry in enumerate(entries) if number != index]


def swap_frames(a: int, b: int) -> TarEdit:
    def edit(entries: TarEntries) -> TarEntries:
        swapped = list(entries)
        swapped[a], swapped[b] = swapped[b], swapped[a]
        return swapped

    return edit


def replace_frame(index: int, content: bytes) -> TarEdit:
    return lambda entries: [(info, content if n == index else data) for n, (info, data) in enumerate(entries)]


def add_member(name: str, content: bytes) -> TarEdit:
    return lambda entries: [*entries, (tarfile.TarInfo(name), content)]


def resealed(item: BundleItem, master: bytes, signer: ManifestSigner) -> BundleItem:
    """An insider holding the signing key: new master, its hash fixed in a re-signed manifest.

    The frame list is left as it was, so only the frame-by-frame check can tell. The timestamp
    and the redaction record name the old manifest/master, so the insider leaves them out.
    """
    document = json.loads(item.manifest)
    document["artifacts"]["master"].update(sha256=sha256_hex(master), size=len(master))
    manifest = canonical_json(document)
    return replace(
        item,
        manifest=manifest,
        signature=signer.sign(manifest),
        master=master,
        timestamp_token=None,
        derivatives={},
    )


def custody_lines(bundle: bytes, folder: str = ITEM) -> list[bytes]:
    return members(bundle)[f"{folder}/custody.jsonl"].splitlines(keepends=True)


def with_custody(bundle: bytes, lines: list[bytes]) -> bytes:
    return tampered(bundle, {f"{ITEM}/custody.jsonl": b"".join(lines)})
