"""Court export bundles through the API, on the real S3 store: made from real sealed items (sim
frames, H.264 working copy, manifest signed with the API's key, RFC 3161 token from the local
``openssl ts`` TSA), stored COMPLIANCE-locked, downloaded hash-checked, then verified offline with
nothing but the bundle and the key from ``GET /api/v1/keys`` (``verify_bundle`` and ``cctv verify``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from api.models import EvidenceArtifactRow, ExportRow, RedactionRow
from cctv.config import Settings
from cctv.contracts import ArtifactKind
from cctv.local_tsa import LocalTsa
from cctv.objectstore import make_client
from evidence_store.verify import VerificationReport, verify_bundle
from tests.api_support import (
    LEGAL,
    OPERATOR,
    ApiUnderTest,
    api_under_test,
    custody_chain,
    isolated_database,
    seal_sim,
)
from tests.bundle_support import first_frame

pytestmark = pytest.mark.service

REPO = Path(__file__).resolve().parents[1]
WHY = "disclosure to the council's solicitors for the injunction hearing"
SOLICITOR = {"recipient": "A. Solicitor", "organisation": "Exampleton Borough Council Legal Services"}


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    if shutil.which("openssl") is None:
        pytest.skip("the OpenSSL CLI (openssl) is missing: it runs the local TSA")
    with LocalTsa(tmp_path_factory.mktemp("export-tsa")) as running:
        yield running


@pytest.fixture
def api(settings: Settings, tmp_path: Path, tsa: LocalTsa) -> Iterator[ApiUnderTest]:
    evidence = settings.evidence.model_copy(
        update={"tsa_ca_path": tsa.ca_pem_path, "export_retention_days": 2}
    )
    with api_under_test(
        settings.model_copy(update={"evidence": evidence}), f"sqlite:///{tmp_path / 'cctv.db'}"
    ) as a:
        yield a


def public_key(api: ApiUnderTest) -> str:
    return str(api.client.get("/api/v1/keys").json()["current"]["public_key"])


def download(api: ApiUnderTest, export_id: str) -> bytes:
    response = api.client.get(f"/api/v1/exports/{export_id}/download", params={"reason": WHY}, headers=LEGAL)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert "attachment" in response.headers["content-disposition"]
    return response.content


def verified(bundle: bytes, key: str, tsa_ca: bytes | None = None) -> VerificationReport:
    report = verify_bundle(bundle, [key], tsa_ca)
    assert report.ok, report.render()
    return report


def bundle_custody(bundle: bytes, folder: str) -> list[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        lines = archive.read(f"{folder}/custody.jsonl").decode().splitlines()
    return [json.loads(line) for line in lines]


def test_export_one_item_download_and_verify_offline(
    api: ApiUnderTest, tsa: LocalTsa, tmp_path: Path
) -> None:
    client, s3 = api.client, make_client(api.settings.s3)
    item = seal_sim(api, count=5, tsa_url=tsa.url)
    evidence_id = str(item.evidence_id)

    made = client.post(
        "/api/v1/exports", json={"evidence_ids": [evidence_id], "reason": WHY, **SOLICITOR}, headers=LEGAL
    )
    assert made.status_code == 201, made.text
    export = made.json()
    assert export["key"].startswith("exports/" + datetime.now(UTC).strftime("%Y/%m/%d/"))
    assert export["key"].endswith(f"/{export['export_id']}.zip")
    assert export["items"] == [{"evidence_id": evidence_id, "exhibit_ref": evidence_id, "redaction_ids": []}]
    assert export["contents"] == "full"
    assert (export["actor"], export["role"], export["recipient"]) == ("Jane Smith", "legal", "A. Solicitor")
    retention = s3.get_object_retention(export["bucket"], export["key"], version_id=export["version_id"])
    assert retention is not None and retention.mode == "COMPLIANCE"
    assert s3.stat_object(export["bucket"], export["key"]).content_type == "application/zip"

    no_reason = client.get(f"/api/v1/exports/{export['export_id']}/download", headers=LEGAL)
    assert no_reason.status_code == 400 and no_reason.headers["content-type"] == "application/problem+json"
    bundle = download(api, export["export_id"])
    assert hashlib.sha256(bundle).hexdigest() == export["sha256"] and len(bundle) == export["size"]

    report = verified(bundle, public_key(api), tsa.ca_pem_path.read_bytes())
    checks = {c.name: c.detail for c in report.checks}
    assert "timestamped at" in checks[f"item[{evidence_id}].timestamp"]
    assert "the chain passes through it" in checks[f"item[{evidence_id}].custody.checkpoint"]
    in_bundle = bundle_custody(bundle, f"items/{evidence_id}")
    assert [e["action"] for e in in_bundle] == ["sealed", "created", "exported"]
    exported = in_bundle[-1]
    assert exported["details"]["export_id"] == export["export_id"] and exported["reason"] == WHY
    assert exported["details"]["organisation"] == SOLICITOR["organisation"]
    assert exported["details"]["bundle_key"] == export["key"]

    chain = custody_chain(client, item.evidence_id)
    assert [e.action.value for e in chain] == ["sealed", "created", "exported", "downloaded"]
    downloaded = chain[-1]
    assert (downloaded.object_key, downloaded.object_version, downloaded.object_sha256) == (
        export["key"],
        export["version_id"],
        export["sha256"],
    )
    assert downloaded.details["export_id"] == export["export_id"] and downloaded.reason == WHY

    # The CLI a solicitor runs: exit 0 untouched, 1 with one byte changed.
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle)
    cli = [sys.executable, "-m", "cctv", "verify", str(path), "--public-key", public_key(api)]
    ok = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "VERIFIED: all" in ok.stdout
    data = bytearray(bundle)
    offset = bundle.index(b"JFIF") + 200  # a byte of a frame inside the stored master.tar
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    bad = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "NOT VERIFIED" in bad.stdout

    listed = client.get("/api/v1/exports", headers=LEGAL).json()
    assert listed["total"] == 1 and listed["items"][0]["sha256"] == export["sha256"]
    assert client.get(f"/api/v1/exports/{export['export_id']}", headers=LEGAL).json() == export


def test_export_refusals(api: ApiUnderTest) -> None:
    client = api.client
    item = seal_sim(api, count=2)
    ids = [str(item.evidence_id)]
    no_reason = client.post("/api/v1/exports", json={"evidence_ids": ids}, headers=LEGAL)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["detail"]
    blank = client.post("/api/v1/exports", json={"evidence_ids": ids, "reason": "  "}, headers=LEGAL)
    assert blank.status_code == 422 and "reason" in blank.json()["detail"]
    both = {"evidence_ids": ids, "case_id": str(uuid.uuid4()), "reason": WHY}
    assert "exactly one" in client.post("/api/v1/exports", json=both, headers=LEGAL).json()["detail"]
    operator = client.post("/api/v1/exports", json={"evidence_ids": ids, "reason": WHY}, headers=OPERATOR)
    assert operator.status_code == 403
    anonymous = {"Authorization": ""}  # drops the client's default credentials
    assert (
        client.post(
            "/api/v1/exports", json={"evidence_ids": ids, "reason": WHY}, headers=anonymous
        ).status_code
        == 401
    )
    missing = uuid.uuid4()
    unknown = client.post(
        "/api/v1/exports", json={"evidence_ids": [*ids, str(missing)], "reason": WHY}, headers=LEGAL
    )
    assert unknown.status_code == 404 and str(missing) in unknown.json()["detail"]
    assert [e.action.value for e in custody_chain(client, item.evidence_id)] == ["sealed", "created"]
    with api.context.sessions() as session:
        assert session.query(ExportRow).count() == 0


def test_an_integrity_failure_aborts_the_export_and_is_recorded(api: ApiUnderTest) -> None:
    client = api.client
    good, broken = seal_sim(api, count=2), seal_sim(api, first=110, count=2)
    # What the API sees when the stored master no longer matches the hash sealed for it.
    with api.context.engine.begin() as conn:
        conn.execute(
            sqlalchemy.update(EvidenceArtifactRow)
            .where(
                EvidenceArtifactRow.evidence_id == broken.evidence_id,
                EvidenceArtifactRow.kind == ArtifactKind.MASTER.value,
            )
            .values(sha256="0" * 64)
        )
    ids = [str(good.evidence_id), str(broken.evidence_id)]
    refused = client.post("/api/v1/exports", json={"evidence_ids": ids, "reason": WHY}, headers=LEGAL)
    assert refused.status_code == 502, refused.text
    assert refused.json()["title"] == "Evidence integrity check failed"
    assert refused.json()["expected_sha256"] == "0" * 64
    chain = custody_chain(client, broken.evidence_id)
    assert [e.action.value for e in chain] == ["sealed", "created", "download_refused"]
    assert chain[-1].details["result"] == "integrity_failure" and chain[-1].details["purpose"] == "export"
    assert chain[-1].details["artifact_kind"] == "master" and chain[-1].reason == WHY
    assert [e.action.value for e in custody_chain(client, good.evidence_id)] == ["sealed", "created"]
    assert client.get("/api/v1/exports", headers=LEGAL).json()["total"] == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_api(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path, tsa: LocalTsa
) -> Iterator[ApiUnderTest]:
    evidence = settings.evidence.model_copy(update={"tsa_ca_path": tsa.ca_pem_path})
    with (
        isolated_database(request.param, tmp_path, request) as url,
        api_under_test(settings.model_copy(update={"evidence": evidence}), url) as a,
    ):
        yield a


def test_export_a_case_of_two_items(any_db_api: ApiUnderTest, tsa: LocalTsa) -> None:
    api = any_db_api
    client = api.client
    first, second = seal_sim(api, count=3, tsa_url=tsa.url), seal_sim(api, first=120, count=3)
    case = client.post("/api/v1/cases", json={"reference": "ASB-2025-014", "title": "High St"}, headers=LEGAL)
    case_id = case.json()["case_id"]
    for item in (first, second):
        added = client.post(
            f"/api/v1/cases/{case_id}/items", json={"evidence_id": str(item.evidence_id)}, headers=LEGAL
        )
        assert added.status_code == 201, added.text
    made = client.post("/api/v1/exports", json={"case_id": case_id, "reason": WHY}, headers=LEGAL)
    assert made.status_code == 201, made.text
    export = made.json()
    assert export["case_reference"] == "ASB-2025-014" and export["recipient"] is None
    assert [i["exhibit_ref"] for i in export["items"]] == ["ASB-2025-014/001", "ASB-2025-014/002"]

    bundle = download(api, export["export_id"])
    report = verified(bundle, public_key(api))
    names = [c.name for c in report.checks]
    assert "item[ASB-2025-014/001].timestamp" in names and "item[ASB-2025-014/002].custody.chain" in names
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        index = json.loads(archive.read("bundle.json"))
    assert index["case"] == {"reference": "ASB-2025-014", "title": "High St"}
    assert [i["path"] for i in index["items"]] == ["items/ASB-2025-014_001", "items/ASB-2025-014_002"]
    for number, item in enumerate((first, second), start=1):
        entries = bundle_custody(bundle, f"items/ASB-2025-014_{number:03d}")
        assert entries[-1]["action"] == "exported"
        assert entries[-1]["details"]["exhibit_ref"] == f"ASB-2025-014/{number:03d}"
        assert entries[-1]["details"]["case_reference"] == "ASB-2025-014"
        assert [e.action.value for e in custody_chain(client, item.evidence_id)][-2:] == [
            "exported",
            "downloaded",
        ]
    listed = client.get("/api/v1/exports", params={"case_id": case_id}, headers=LEGAL).json()
    assert listed["total"] == 1
    assert (
        client.get("/api/v1/exports", params={"case_id": str(uuid.uuid4())}, headers=LEGAL).json()["total"]
        == 0
    )


# --------------------------------------------------------------------------- redacted disclosures

BOXES = {
    "mode": "boxes",
    "boxes": [{"frame_from": 0, "frame_to": 2, "x1": 100, "y1": 80, "x2": 200, "y2": 300}],
}


def redacted_copy(api: ApiUnderTest, evidence_id: uuid.UUID, timeout_s: float = 60) -> str:
    """A done boxes-mode redaction of the item, made by the API's background job; its id."""
    url = f"/api/v1/evidence/{evidence_id}/redactions"
    made = api.client.post(url, json={"request": BOXES, "reason": WHY}, headers=LEGAL)
    assert made.status_code == 202, made.text
    redaction_id = str(made.json()["redaction_id"])
    deadline = time.monotonic() + timeout_s
    while (body := api.client.get(f"{url}/{redaction_id}", headers=LEGAL).json())["status"] == "pending":
        assert time.monotonic() < deadline, f"redaction {redaction_id} still pending after {timeout_s}s"
        time.sleep(0.1)
    assert body["status"] == "done", body["error"]
    return redaction_id


def export(api: ApiUnderTest, evidence_id: uuid.UUID, **extra: Any) -> Any:
    body = {"evidence_ids": [str(evidence_id)], "reason": WHY, **SOLICITOR, **extra}
    return api.client.post("/api/v1/exports", json=body, headers=LEGAL)


def test_redacted_export_discloses_only_the_redacted_copy(api: ApiUnderTest, tsa: LocalTsa) -> None:
    client = api.client
    item = seal_sim(api, count=3, tsa_url=tsa.url)
    evidence_id, folder = str(item.evidence_id), f"items/{item.evidence_id}"
    first, newest = redacted_copy(api, item.evidence_id), redacted_copy(api, item.evidence_id)

    made = export(api, item.evidence_id, contents="redacted")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["contents"] == "redacted"
    assert body["items"] == [
        {"evidence_id": evidence_id, "exhibit_ref": evidence_id, "redaction_ids": [newest]}
    ]
    bundle = download(api, body["export_id"])
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        names = archive.namelist()
    assert not any(name.endswith(("master.tar", "working.mp4")) for name in names), names
    assert [n for n in names if "/redactions/" in n] == [
        f"{folder}/redactions/{newest}{suffix}" for suffix in (".json", ".mp4", ".sig.json")
    ]
    assert first_frame(item.package) not in bundle  # not one original frame, in any member

    report = verified(bundle, public_key(api), tsa.ca_pem_path.read_bytes())
    checks = {c.name: c.detail for c in report.checks}
    master = item.package.manifest_document["artifacts"]["master"]
    assert (
        f"master.tar withheld from this redacted disclosure; the signed manifest records sha256 "
        f"{master['sha256']} (3 frames)" == checks[f"item[{evidence_id}].master.sha256"]
    )
    assert f"{newest}.mp4 (record {newest}.json)" in checks[f"item[{evidence_id}].redactions"]
    exported = bundle_custody(bundle, folder)[-1]
    assert exported["action"] == "exported"
    assert (exported["details"]["contents"], exported["details"]["redaction_ids"]) == ("redacted", [newest])
    assert custody_chain(client, item.evidence_id)[-2].details == exported["details"]

    chosen = export(api, item.evidence_id, contents="redacted", redaction_ids=[first])
    assert chosen.status_code == 201, chosen.text
    assert chosen.json()["items"][0]["redaction_ids"] == [first]
    full = export(api, item.evidence_id)
    assert full.status_code == 201 and full.json()["contents"] == "full"
    assert full.json()["items"][0]["redaction_ids"] == [first, newest]  # a full export carries every one
    assert custody_chain(client, item.evidence_id)[-1].details["contents"] == "full"

    in_order = ["redacted", "redacted", "full"]
    assert [r["contents"] for r in client.get("/api/v1/disclosures", headers=LEGAL).json()] == in_order
    as_csv = client.get("/api/v1/disclosures", params={"format": "csv"}, headers=LEGAL).text
    assert [row["contents"] for row in csv.DictReader(io.StringIO(as_csv))] == in_order


def test_redacted_export_refusals(api: ApiUnderTest) -> None:
    client = api.client
    plain, other = seal_sim(api, count=2), seal_sim(api, first=110, count=2)
    refused = export(api, plain.evidence_id, contents="redacted")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert refused.headers["content-type"] == "application/problem+json"
    assert problem["title"] == "No redaction to disclose" and problem["evidence_id"] == str(plain.evidence_id)
    assert f"exhibit {plain.evidence_id}" in problem["detail"] and "no done redaction" in problem["detail"]

    not_done = uuid.uuid4()
    with api.context.sessions() as session:
        session.add(
            RedactionRow(
                redaction_id=not_done,
                evidence_id=other.evidence_id,
                status="failed",
                error="outside frame",
                mode="boxes",
                request=BOXES,
                requested_by="Jane Smith",
                role="legal",
                reason=WHY,
                created_at=datetime.now(UTC),
            )
        )
        session.commit()
    failed_job = export(api, other.evidence_id, contents="redacted", redaction_ids=[str(not_done)])
    assert failed_job.status_code == 409 and f"redaction {not_done} is failed" in failed_job.json()["detail"]
    elsewhere = export(api, plain.evidence_id, contents="redacted", redaction_ids=[str(not_done)])
    assert elsewhere.status_code == 409 and "which is not in this export" in elsewhere.json()["detail"]
    unknown = export(api, plain.evidence_id, contents="redacted", redaction_ids=[str(uuid.uuid4())])
    assert unknown.status_code == 404
    full_with_ids = export(api, plain.evidence_id, redaction_ids=[str(not_done)])
    assert full_with_ids.status_code == 422 and "contents 'redacted' only" in full_with_ids.json()["detail"]
    assert export(api, plain.evidence_id, contents="partial").status_code == 422

    for item in (plain, other):  # nothing was read or recorded
        assert [e.action.value for e in custody_chain(client, item.evidence_id)] == ["sealed", "created"]
    with api.context.sessions() as session:
        assert session.query(ExportRow).count() == 0
