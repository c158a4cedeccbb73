"""Redaction jobs through the API, on the real S3 store and real sealed sim evidence.

A request returns 202 at once; the app's background runner makes the copy; the stored video is
COMPLIANCE-locked with the hash its signed record names; ``redacted`` is on the chain; the video
download needs a reason; a failed job references nothing; an export then carries the redaction
and still verifies offline; a job left pending by a stopped API is marked failed at start-up.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from minio.commonconfig import COMPLIANCE

from api.models import RedactionRow
from api.redaction_jobs import STOPPED_WHILE_RUNNING
from cctv.config import Settings
from cctv.objectstore import make_client
from evidence_store.verify import verify_bundle
from tests.api_support import LEGAL, OPERATOR, ApiUnderTest, api_under_test, custody_chain, seal_sim

pytestmark = pytest.mark.service

WHY = "disclosure to the council: bystanders must be obscured"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cctv.db'}"


@pytest.fixture
def api(settings: Settings, db_url: str) -> Iterator[ApiUnderTest]:
    with api_under_test(settings, db_url) as under_test:
        yield under_test


def boxes_request(frame_to: int, x1: float = 100) -> dict[str, Any]:
    box = {"frame_from": 0, "frame_to": frame_to, "x1": x1, "y1": 80, "x2": x1 + 100, "y2": 300}
    return {"mode": "boxes", "boxes": [box]}


def request_redaction(api: ApiUnderTest, evidence_id: uuid.UUID, request: dict[str, Any]) -> dict[str, Any]:
    made = api.client.post(
        f"/api/v1/evidence/{evidence_id}/redactions", json={"request": request, "reason": WHY}, headers=LEGAL
    )
    assert made.status_code == 202, made.text
    assert made.headers["location"].endswith(made.json()["redaction_id"])
    return dict(made.json())


def wait_for(
    api: ApiUnderTest, evidence_id: uuid.UUID, redaction_id: str, timeout_s: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = api.client.get(
            f"/api/v1/evidence/{evidence_id}/redactions/{redaction_id}", headers=LEGAL
        ).json()
        if body["status"] != "pending":
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"redaction {redaction_id} still pending after {timeout_s}s")


def read(api: ApiUnderTest, key: str, version_id: str | None) -> bytes:
    response = make_client(api.settings.s3).get_object(
        api.settings.s3.evidence_bucket, key, version_id=version_id
    )
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def test_boxes_redaction_is_stored_locked_recorded_and_exported(api: ApiUnderTest) -> None:
    client, s3 = api.client, make_client(api.settings.s3)
    item = seal_sim(api, count=6)
    evidence_id = item.evidence_id
    pending = request_redaction(api, evidence_id, boxes_request(frame_to=5))
    assert (
        pending["status"] == "pending"
        and pending["video"] is None
        and pending["requested_by"] == "Jane Smith"
    )
    done = wait_for(api, evidence_id, pending["redaction_id"])
    assert done["status"] == "done", done["error"]
    assert done["error"] is None and done["finished_at"] and done["video_path"]

    video, record = done["video"], done["record"]
    data, record_bytes = (
        read(api, video["key"], video["version_id"]),
        read(api, record["key"], record["version_id"]),
    )
    document = json.loads(record_bytes)
    assert hashlib.sha256(data).hexdigest() == video["sha256"] == document["output"]["sha256"]
    assert document["master_sha256"] == item.package.manifest_document["artifacts"]["master"]["sha256"]
    assert document["created_by"] == {"actor": "Jane Smith", "role": "legal"} and document["reason"] == WHY
    assert hashlib.sha256(record_bytes).hexdigest() == record["sha256"]
    for obj in (video, record, done["signature"]):
        retention = s3.get_object_retention(
            api.settings.s3.evidence_bucket, obj["key"], version_id=obj["version_id"]
        )
        assert retention is not None and retention.mode == COMPLIANCE
        assert (
            retention.retain_until_date is not None
            and retention.retain_until_date >= item.message.retain_until
        )
    assert video["key"].startswith(item.message.artifacts[0].key.rsplit("/", 1)[0] + "/redactions/")

    redacted = custody_chain(client, evidence_id)[-1]
    assert (redacted.action.value, redacted.actor, redacted.reason) == ("redacted", "Jane Smith", WHY)
    assert (redacted.object_key, redacted.object_version, redacted.object_sha256) == (
        record["key"],
        record["version_id"],
        record["sha256"],
    )
    assert redacted.details["redaction_id"] == done["redaction_id"] and redacted.details["mode"] == "boxes"
    assert redacted.details["video"]["sha256"] == video["sha256"]

    path = done["video_path"]
    assert client.get(path, headers=LEGAL).status_code == 400
    assert client.get(path, params={"reason": "x"}, headers=OPERATOR).status_code == 403
    downloaded = client.get(path, params={"reason": "check before disclosure"}, headers=LEGAL)
    assert downloaded.status_code == 200 and downloaded.content == data
    assert downloaded.headers["content-type"] == "video/mp4"
    entry = custody_chain(client, evidence_id)[-1]
    assert entry.action.value == "downloaded" and entry.object_sha256 == video["sha256"]
    assert (
        entry.details["redaction_id"] == done["redaction_id"]
        and entry.details["artifact_kind"] == "redacted_copy"
    )
    [listed] = client.get(f"/api/v1/evidence/{evidence_id}/redactions", headers=LEGAL).json()
    assert listed == done

    # Exported with its redaction: the offline verifier checks the signed record and the video.
    made = client.post(
        "/api/v1/exports", json={"evidence_ids": [str(evidence_id)], "reason": WHY}, headers=LEGAL
    )
    assert made.status_code == 201, made.text
    bundle = client.get(
        f"/api/v1/exports/{made.json()['export_id']}/download", params={"reason": WHY}, headers=LEGAL
    ).content
    key = client.get("/api/v1/keys").json()["current"]["public_key"]
    report = verify_bundle(bundle, [key])
    assert report.ok, report.render()
    checks = {c.name: c.detail for c in report.checks}
    assert checks[f"item[{evidence_id}].redactions"].startswith("1 redacted copy")


def test_bad_requests_and_a_failed_job(api: ApiUnderTest) -> None:
    client = api.client
    item = seal_sim(api, count=3)
    url = f"/api/v1/evidence/{item.evidence_id}/redactions"
    out_of_range = client.post(url, json={"request": boxes_request(frame_to=3), "reason": WHY}, headers=LEGAL)
    assert out_of_range.status_code == 422, out_of_range.text
    assert out_of_range.headers["content-type"] == "application/problem+json"
    assert "3 frames" in out_of_range.json()["detail"] and "boxes[0]" in out_of_range.json()["detail"]
    no_reason = client.post(url, json={"request": boxes_request(frame_to=2)}, headers=LEGAL)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    no_boxes = client.post(url, json={"request": {"mode": "boxes"}, "reason": WHY}, headers=LEGAL)
    assert no_boxes.status_code == 422 and "at least one box" in no_boxes.json()["detail"]
    assert (
        client.post(url, json={"request": boxes_request(2), "reason": WHY}, headers=OPERATOR).status_code
        == 403
    )
    missing = client.post(
        f"/api/v1/evidence/{uuid.uuid4()}/redactions",
        json={"request": boxes_request(2), "reason": WHY},
        headers=LEGAL,
    )
    assert missing.status_code == 404
    assert client.get(url, headers=LEGAL).json() == []

    # Inside the clip but outside the picture: only the job can tell; it fails and references nothing.
    pending = request_redaction(api, item.evidence_id, boxes_request(frame_to=2, x1=5000))
    failed = wait_for(api, item.evidence_id, pending["redaction_id"])
    assert failed["status"] == "failed" and "outside frame" in failed["error"]
    assert failed["video"] is None and failed["record"] is None and failed["video_path"] is None
    with api.context.sessions() as session:
        row = session.get(RedactionRow, uuid.UUID(pending["redaction_id"]))
        assert row is not None and row.video_key is None and row.record_key is None
    assert "redacted" not in [e.action.value for e in custody_chain(client, item.evidence_id)]
    video = client.get(f"{url}/{pending['redaction_id']}/video", params={"reason": WHY}, headers=LEGAL)
    assert video.status_code == 409


def test_people_except_subjects_keeps_the_incident_subject(api: ApiUnderTest) -> None:
    item = seal_sim(api, count=8, subject_frame=4)
    started = time.monotonic()
    pending = request_redaction(api, item.evidence_id, {"mode": "people_except_subjects"})
    done = wait_for(api, item.evidence_id, pending["redaction_id"], timeout_s=120)
    assert done["status"] == "done", done["error"]
    assert time.monotonic() - started < 60
    document = json.loads(read(api, done["record"]["key"], done["record"]["version_id"]))
    source = document["parameters"]["keep_source"]
    assert source["from"] == "incident boxes" and source["frame"] == 4
    assert datetime.fromisoformat(source["boxes_at"]) == item.opened.event_at  # the OPENED event's time
    assert document["detector"]["scan"] == "every frame, whole frame"
    assert any(frame["subjects"] for frame in document["frames"])  # person 6 kept sharp
    assert custody_chain(api.client, item.evidence_id)[-1].details["mode"] == "people_except_subjects"


def test_a_job_left_pending_by_a_stopped_api_is_failed_at_start(settings: Settings, db_url: str) -> None:
    with api_under_test(settings, db_url) as api:
        item = seal_sim(api, count=2)
        with api.context.sessions() as session:
            session.add(
                RedactionRow(
                    redaction_id=(orphan := uuid.uuid4()),
                    evidence_id=item.evidence_id,
                    status="pending",
                    mode="boxes",
                    request=boxes_request(1),
                    requested_by="Jane Smith",
                    role="legal",
                    reason=WHY,
                    created_at=datetime.now(UTC),
                )
            )
            session.commit()
    with api_under_test(settings, db_url) as restarted:
        body = restarted.client.get(
            f"/api/v1/evidence/{item.evidence_id}/redactions/{orphan}", headers=LEGAL
        ).json()
        assert body["status"] == "failed" and body["error"] == STOPPED_WHILE_RUNNING
