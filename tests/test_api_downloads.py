"""Evidence downloads against the real S3 store: verified bytes, the recorded version, the custody log.

Integrity rules under test: the API serves the object version recorded at
sealing time even after a newer version is written to the same key, and never
sends bytes whose SHA-256 differs from the sealed one.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.persister import Persister
from cctv.config import Settings
from cctv.contracts import ArtifactKind
from cctv.objectstore import make_client
from evidence_store.custody import CustodyEntry
from tests.api_support import (
    LEGAL,
    OPS,
    authorize,
    camera_registry,
    custody_chain,
    isolated_database,
    lifecycle,
    seal_evidence,
    with_database,
)

pytestmark = pytest.mark.service


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
def api(settings: Settings, db_url: str) -> Iterator[tuple[TestClient, Persister, Settings]]:
    settings = with_database(settings, db_url)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    with TestClient(app) as client:
        authorize(client)
        yield (
            client,
            Persister(context.sessions, None, None, settings.kafka, threading.Event(), context.metrics),
            settings,
        )


def access_entries(client: TestClient, evidence_id: uuid.UUID) -> list[CustodyEntry]:
    """The download and refused-download entries of the item's custody chain, in order."""
    return [e for e in custody_chain(client, evidence_id) if e.action in ("downloaded", "download_refused")]


def test_downloads_are_verified_logged_and_serve_the_recorded_version(
    api: tuple[TestClient, Persister, Settings],
) -> None:
    client, persister, settings = api
    incident_id = uuid.uuid4()
    sealed = seal_evidence(settings, incident_id)
    evidence_id = sealed.message.evidence_id
    persister.persist([*lifecycle(incident_id), sealed.message])
    original = sealed.contents[ArtifactKind.WORKING_COPY]

    response = client.get(
        f"/api/v1/evidence/{evidence_id}/clip",
        params={"reason": "case 42"},
        headers={"User-Agent": "legal-ui", **LEGAL},
    )
    assert response.status_code == 200, response.text
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.content == original and digest == sealed.message.artifacts[0].sha256
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == str(len(original))
    assert response.headers["etag"] == f'"{digest}"'
    assert response.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:"
    assert f"{evidence_id}_clip.mp4" in response.headers["content-disposition"]
    [entry] = access_entries(client, evidence_id)
    clip = sealed.message.artifacts[0]
    assert (entry.action, entry.actor, entry.role, entry.reason) == (
        "downloaded",
        "Jane Smith",
        "legal",
        "case 42",
    )
    assert (entry.object_key, entry.object_version, entry.object_sha256) == (
        clip.key,
        clip.version_id,
        digest,
    )
    assert entry.details["artifact_kind"] == "working_copy" and entry.details["result"] == "ok"
    assert entry.details["sha256_served"] == entry.details["sha256_read"] == digest
    assert entry.details["user_agent"] == "legal-ui"
    assert entry.details["client_address"]  # TestClient's peer address

    # Someone writes a NEW version to the same key: the recorded version is still what is served.
    client_s3 = make_client(settings.s3)
    tampered = b"tampered working copy"
    client_s3.put_object(
        settings.s3.evidence_bucket, sealed.message.artifacts[0].key, io.BytesIO(tampered), len(tampered)
    )
    latest = client_s3.get_object(settings.s3.evidence_bucket, sealed.message.artifacts[0].key)
    try:
        assert latest.read() == tampered  # the key's newest version really is different
    finally:
        latest.close()
        latest.release_conn()
    why = {"reason": "case 42"}
    again = client.get(f"/api/v1/evidence/{evidence_id}/clip", params=why, headers=LEGAL)
    assert again.status_code == 200 and again.content == original

    master = client.get(f"/api/v1/evidence/{evidence_id}/master", params=why, headers=LEGAL)
    assert master.headers["content-type"] == "application/x-tar"
    assert master.content == sealed.contents[ArtifactKind.MASTER]
    manifest = client.get(f"/api/v1/evidence/{evidence_id}/manifest", params=why, headers=LEGAL)
    assert manifest.headers["content-type"] == "application/json"
    assert hashlib.sha256(manifest.content).hexdigest() == sealed.message.manifest_sha256

    entries = access_entries(client, evidence_id)
    assert [e.details["artifact_kind"] for e in entries] == [
        "working_copy",
        "working_copy",
        "master",
        "manifest",
    ]
    assert all(e.details["result"] == "ok" and e.action == "downloaded" for e in entries)
    metrics = client.get("/metrics", headers=OPS).text
    assert 'cctv_api_evidence_downloads_total{kind="working_copy",result="ok"} 2.0' in metrics

    listed = client.get(f"/api/v1/incidents/{incident_id}/evidence").json()
    assert [e["evidence_id"] for e in listed] == [str(evidence_id)]
    assert {a["kind"] for a in listed[0]["artifacts"]} == {"working_copy", "master", "manifest"}
    one = client.get(f"/api/v1/evidence/{evidence_id}", headers=LEGAL).json()
    assert one["manifest_sha256"] == sealed.message.manifest_sha256
    assert {a["download_path"] for a in one["artifacts"]} == {
        f"/api/v1/evidence/{evidence_id}/{route}" for route in ("clip", "master", "manifest")
    }


def test_integrity_failure_returns_a_problem_and_never_the_bytes(
    api: tuple[TestClient, Persister, Settings],
) -> None:
    client, persister, settings = api
    incident_id = uuid.uuid4()
    sealed = seal_evidence(settings, incident_id, wrong_hash_for=ArtifactKind.WORKING_COPY)
    persister.persist([*lifecycle(incident_id), sealed.message])
    evidence_id = sealed.message.evidence_id
    stored = sealed.contents[ArtifactKind.WORKING_COPY]

    why = {"reason": "disclosure to defence"}
    response = client.get(f"/api/v1/evidence/{evidence_id}/clip", params=why, headers=LEGAL)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Evidence integrity check failed" and body["status"] == 502
    assert body["actual_sha256"] == hashlib.sha256(stored).hexdigest()
    assert stored[:64] not in response.content and len(response.content) < len(stored)
    [entry] = access_entries(client, evidence_id)
    assert entry.action == "download_refused" and entry.reason == "disclosure to defence"
    assert entry.details["result"] == "integrity_failure" and entry.details["sha256_served"] is None
    assert entry.details["sha256_read"] == hashlib.sha256(stored).hexdigest()
    assert entry.object_sha256 == entry.details["expected_sha256"] == sealed.message.artifacts[0].sha256
    assert (
        'cctv_api_evidence_integrity_failures_total{kind="working_copy"} 1.0'
        in client.get("/metrics", headers=OPS).text
    )
    # The other artifacts of the same item are intact and still served.
    assert client.get(f"/api/v1/evidence/{evidence_id}/master", params=why, headers=LEGAL).status_code == 200


def test_missing_object_is_a_store_error_and_logged(api: tuple[TestClient, Persister, Settings]) -> None:
    client, persister, settings = api
    incident_id = uuid.uuid4()
    sealed = seal_evidence(settings, incident_id)
    artifacts = tuple(
        a.model_copy(update={"key": "evidence/never-written"}) if a.kind is ArtifactKind.MASTER else a
        for a in sealed.message.artifacts
    )
    persister.persist([*lifecycle(incident_id), sealed.message.model_copy(update={"artifacts": artifacts})])
    response = client.get(
        f"/api/v1/evidence/{sealed.message.evidence_id}/master", params={"reason": "review"}, headers=LEGAL
    )
    assert response.status_code == 502 and response.json()["title"] == "Evidence store unavailable"
    [entry] = access_entries(client, sealed.message.evidence_id)
    assert (entry.action, entry.details["result"]) == ("download_refused", "store_error")
    assert entry.details["sha256_read"] is None and "evidence/never-written" in entry.details["error"]
