"""The custody log through the API, on SQLite and PostgreSQL with the real S3 store.

Every access writes an entry with who, role and why; holds and retention really
change the store's Object Lock (read back with the minio client); a database
edit is caught by chain verification and a rewritten database by the signed
WORM checkpoints; concurrent writers still form one valid chain; migration 0002
folds the old access log into chains without losing anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from minio import Minio
from minio.commonconfig import COMPLIANCE

from api import custody
from api.checkpoints import PREFIX, latest_keys
from api.models import CustodyEntryRow
from cctv.config import EvidenceSettings, Settings
from cctv.objectstore import make_client
from evidence_store.custody import ActorRole, CustodyAction, verify_chain
from evidence_store.signing import ManifestSigner, verify_manifest
from tests.api_support import (
    LEGAL,
    OPERATOR,
    OPS,
    ApiUnderTest,
    api_under_test,
    custody_chain,
    isolated_database,
)

pytestmark = pytest.mark.service

WHY = {"reason": "disclosure to the council's solicitors"}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
def api(settings: Settings, db_url: str) -> Iterator[ApiUnderTest]:
    with api_under_test(settings, db_url) as under_test:
        yield under_test


def actions(api: ApiUnderTest, evidence_id: uuid.UUID) -> list[str]:
    return [e.action.value for e in custody_chain(api.client, evidence_id)]


def hold_of(s3: Minio, bucket: str, key: str, version_id: str | None) -> bool:
    return bool(s3.is_object_legal_hold_enabled(bucket, key, version_id=version_id))


def lock_of(s3: Minio, bucket: str, key: str, version_id: str | None) -> tuple[str | None, datetime]:
    """The version's retention as the store reports it (mode, retain-until)."""
    retention = s3.get_object_retention(bucket, key, version_id=version_id)
    assert retention is not None and retention.retain_until_date is not None, f"{key} has no retention"
    return retention.mode, retention.retain_until_date


def test_every_access_is_recorded_with_who_role_and_why(api: ApiUnderTest) -> None:
    client, settings = api.client, api.settings
    sealed = api.sealed()
    evidence_id = sealed.message.evidence_id
    [sealed_entry, created] = custody_chain(client, evidence_id)
    assert (sealed_entry.action, sealed_entry.actor, sealed_entry.role) == (
        "sealed",
        "evidence-worker",
        "system",
    )
    assert sealed_entry.at == sealed.message.sealed_at.isoformat(timespec="microseconds")
    assert sealed_entry.object_sha256 == sealed.message.manifest_sha256
    assert set(sealed_entry.details["artifacts"]) == {"working_copy", "master", "manifest"}
    assert (created.action, created.actor) == ("created", "api-persister")
    api.persister.persist([sealed.message])  # redelivery: the chain does not grow
    assert len(custody_chain(client, evidence_id)) == 2

    viewed = client.get(f"/api/v1/evidence/{evidence_id}", headers=OPERATOR)
    assert viewed.status_code == 200 and viewed.json()["legal_hold"] is False
    for route in ("clip", "master", "manifest"):
        response = client.get(f"/api/v1/evidence/{evidence_id}/{route}", params=WHY, headers=LEGAL)
        assert response.status_code == 200, response.text

    # Refused before anything is read: no reason, a blank reason, no credentials, a role without footage.
    before = custody_chain(client, evidence_id)
    no_reason = client.get(f"/api/v1/evidence/{evidence_id}/clip", headers=LEGAL)
    assert no_reason.status_code == 400 and no_reason.headers["content-type"] == "application/problem+json"
    assert no_reason.json()["detail"] == (
        "a reason is required to download evidence; it is recorded in the custody log"
    )
    assert b"ftypmp42" not in no_reason.content
    blank = client.get(f"/api/v1/evidence/{evidence_id}/master", params={"reason": "   "}, headers=LEGAL)
    assert blank.status_code == 400
    unauthenticated = {"Authorization": ""}  # drops the client's default credentials
    for headers in (unauthenticated, {"Authorization": "Bearer cctv_s_not-a-session"}, OPS):
        for path in (f"/api/v1/evidence/{evidence_id}", f"/api/v1/evidence/{evidence_id}/clip"):
            refused = client.get(path, params=WHY, headers=headers)
            assert refused.status_code == (403 if headers is OPS else 401), (headers, path)
            assert refused.headers["content-type"] == "application/problem+json"
    assert custody_chain(client, evidence_id) == before

    chain = custody_chain(client, evidence_id)
    assert [e.action.value for e in chain] == [
        "sealed",
        "created",
        "viewed",
        "downloaded",
        "downloaded",
        "downloaded",
    ]
    assert (chain[2].actor, chain[2].role, chain[2].details["client_address"]) == (
        "Sam Patel",
        ActorRole.OPERATOR,
        "testclient",
    )
    by_kind = {a.kind.value: a for a in sealed.message.artifacts}
    for entry in chain[3:]:
        artifact = by_kind[entry.details["artifact_kind"]]
        assert (entry.actor, entry.role, entry.reason) == ("Jane Smith", "legal", WHY["reason"])
        assert (entry.object_key, entry.object_version) == (artifact.key, artifact.version_id)
        assert entry.object_sha256 == entry.details["sha256_served"] == artifact.sha256
    log = client.get(f"/api/v1/evidence/{evidence_id}/custody", headers=OPERATOR).json()
    assert log["verification"] == {"ok": True, "problems": []}
    assert [e["entry_hash"] for e in log["entries"]] == [e.entry_hash for e in chain]
    assert not verify_chain(evidence_id, chain)
    # Operators may look, not change what protects evidence.
    refused = client.put(
        f"/api/v1/evidence/{evidence_id}/legal-hold", json={"on": True, "reason": "x"}, headers=OPERATOR
    )
    assert refused.status_code == 403 and "legal" in refused.json()["detail"]
    assert settings.s3.evidence_bucket == sealed.message.bucket


def test_legal_hold_and_retention_change_the_store(api: ApiUnderTest) -> None:
    client, s3, bucket = api.client, make_client(api.settings.s3), api.settings.s3.evidence_bucket
    sealed = api.sealed()
    evidence_id, artifacts = sealed.message.evidence_id, sealed.message.artifacts

    placed = client.put(
        f"/api/v1/evidence/{evidence_id}/legal-hold", json={"on": True, "reason": "injunction"}, headers=LEGAL
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["store_legal_hold"] is True and placed.json()["entry"]["action"] == "hold_placed"
    assert all(hold_of(s3, bucket, a.key, a.version_id) for a in artifacts)
    assert client.get(f"/api/v1/evidence/{evidence_id}", headers=LEGAL).json()["legal_hold"] is True
    missing_reason = client.put(
        f"/api/v1/evidence/{evidence_id}/legal-hold", json={"on": False}, headers=LEGAL
    )
    assert missing_reason.status_code == 422 and hold_of(
        s3, bucket, artifacts[0].key, artifacts[0].version_id
    )
    released = client.put(
        f"/api/v1/evidence/{evidence_id}/legal-hold",
        json={"on": False, "reason": "case closed"},
        headers=LEGAL,
    )
    assert released.status_code == 200 and released.json()["legal_hold"] is False
    assert not any(hold_of(s3, bucket, a.key, a.version_id) for a in artifacts)

    retention = f"/api/v1/evidence/{evidence_id}/retention"
    _, locked_until = lock_of(s3, bucket, artifacts[0].key, artifacts[0].version_id)
    store_only = datetime.now(UTC) + timedelta(hours=1)  # after the database's date, before the store's
    assert sealed.message.retain_until < store_only < locked_until
    for too_early in (datetime(2025, 3, 1, tzinfo=UTC), store_only):
        shorter = client.post(
            retention, json={"retain_until": too_early.isoformat(), "reason": "x"}, headers=LEGAL
        )
        assert shorter.status_code == 409, shorter.text
        assert "retention can be extended, never shortened" in shorter.json()["detail"]
    assert lock_of(s3, bucket, artifacts[0].key, artifacts[0].version_id)[1] == locked_until
    target = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    extended = client.post(
        retention, json={"retain_until": target.isoformat(), "reason": "appeal lodged"}, headers=LEGAL
    )
    assert extended.status_code == 200, extended.text
    for artifact in artifacts:
        assert lock_of(s3, bucket, artifact.key, artifact.version_id) == (COMPLIANCE, target)
    body = extended.json()
    assert body["entry"]["details"]["retain_until"] == target.isoformat()
    assert body["entry"]["details"]["previous_retain_until"] == sealed.message.retain_until.isoformat()
    assert (
        client.get(f"/api/v1/evidence/{evidence_id}", headers=LEGAL)
        .json()["retain_until"]
        .startswith(target.strftime("%Y-%m-%dT%H:%M:%S"))
    )
    assert actions(api, evidence_id)[2:] == [
        "hold_placed",
        "viewed",
        "hold_released",
        "retention_extended",
        "viewed",
    ]
    chain = custody_chain(api.client, evidence_id)
    assert [e.reason for e in chain if e.action != "viewed"][2:] == [
        "injunction",
        "case closed",
        "appeal lodged",
    ]


def test_cases_exhibits_and_case_holds(api: ApiUnderTest) -> None:
    client, s3, bucket = api.client, make_client(api.settings.s3), api.settings.s3.evidence_bucket
    first, second = api.sealed(), api.sealed()
    case = client.post("/api/v1/cases", json={"reference": "ASB-2025-014", "title": "High St"}, headers=LEGAL)
    assert case.status_code == 201, case.text
    case_id = case.json()["case_id"]
    taken = client.post("/api/v1/cases", json={"reference": "ASB-2025-014", "title": "again"}, headers=LEGAL)
    assert taken.status_code == 409
    assert (
        client.post("/api/v1/cases", json={"reference": "a/b", "title": "t"}, headers=LEGAL).status_code
        == 422
    )
    items = f"/api/v1/cases/{case_id}/items"
    for sealed in (first, second):
        added = client.post(items, json={"evidence_id": str(sealed.message.evidence_id)}, headers=LEGAL)
        assert added.status_code == 201, added.text
    again = client.post(items, json={"evidence_id": str(first.message.evidence_id)}, headers=LEGAL)
    assert again.status_code == 409 and "ASB-2025-014/001" in again.json()["detail"]
    body = client.get(f"/api/v1/cases/{case_id}", headers=LEGAL).json()
    assert [i["exhibit_ref"] for i in body["items"]] == ["ASB-2025-014/001", "ASB-2025-014/002"]
    [added_entry] = [
        e for e in custody_chain(client, first.message.evidence_id) if e.action == "added_to_case"
    ]
    assert added_entry.details["exhibit_ref"] == "ASB-2025-014/001" and added_entry.actor == "Jane Smith"

    # The first item is also held on its own; the case hold covers both.
    own = {"on": True, "reason": "own hold"}
    client.put(f"/api/v1/evidence/{first.message.evidence_id}/legal-hold", json=own, headers=LEGAL)
    held = client.put(
        f"/api/v1/cases/{case_id}/legal-hold", json={"on": True, "reason": "claim"}, headers=LEGAL
    )
    assert held.status_code == 200 and held.json()["case"]["legal_hold"] is True
    for sealed in (first, second):
        assert all(hold_of(s3, bucket, a.key, a.version_id) for a in sealed.message.artifacts)
        assert actions(api, sealed.message.evidence_id)[-1] == "hold_placed"
    blocked = client.put(
        f"/api/v1/evidence/{second.message.evidence_id}/legal-hold",
        json={"on": False, "reason": "x"},
        headers=LEGAL,
    )
    assert blocked.status_code == 409 and "ASB-2025-014" in blocked.json()["detail"]

    third = api.sealed()  # added to a held case: held at once
    client.post(items, json={"evidence_id": str(third.message.evidence_id), "reason": "new"}, headers=LEGAL)
    assert all(hold_of(s3, bucket, a.key, a.version_id) for a in third.message.artifacts)
    assert actions(api, third.message.evidence_id)[-2:] == ["added_to_case", "hold_placed"]

    released = client.put(
        f"/api/v1/cases/{case_id}/legal-hold", json={"on": False, "reason": "end"}, headers=LEGAL
    )
    assert released.status_code == 200, released.text
    assert all(hold_of(s3, bucket, a.key, a.version_id) for a in first.message.artifacts)  # its own hold
    assert not any(hold_of(s3, bucket, a.key, a.version_id) for a in second.message.artifacts)
    kept = custody_chain(client, first.message.evidence_id)[-1]
    assert kept.action == "hold_released" and kept.details["store_hold_kept_by"] == ["item"]
    listed = client.get("/api/v1/cases", headers=LEGAL).json()
    assert [(c["reference"], c["item_count"], c["legal_hold"]) for c in listed] == [
        ("ASB-2025-014", 3, False)
    ]


def test_tampering_is_detected_by_the_chain_and_the_worm_checkpoints(api: ApiUnderTest) -> None:
    client, context = api.client, api.context
    altered, rewritten = api.sealed(), api.sealed()
    for sealed in (altered, rewritten):
        for _ in range(2):
            client.get(f"/api/v1/evidence/{sealed.message.evidence_id}/clip", params=WHY, headers=LEGAL)
    written = client.post("/api/v1/custody/checkpoints", headers=LEGAL)
    assert written.status_code == 201, written.text
    assert written.json()["object_key"].startswith(PREFIX + datetime.now(UTC).strftime("%Y/%m/%d/"))
    assert client.get("/api/v1/custody/verify", headers=LEGAL).json()["ok"] is True

    # 1. An UPDATE of one stored entry: its own chain no longer verifies.
    target = altered.message.evidence_id
    with context.engine.begin() as conn:
        conn.execute(
            sqlalchemy.update(CustodyEntryRow)
            .where(CustodyEntryRow.evidence_id == target, CustodyEntryRow.seq == 2)
            .values(reason="routine check")
        )
    log = client.get(f"/api/v1/evidence/{target}/custody", headers=LEGAL).json()
    assert log["verification"]["ok"] is False
    assert any(p.startswith("entry 2: content altered") for p in log["verification"]["problems"])

    # 2. A rewritten database: the newest entries deleted, then forged ones appended with valid hashes.
    victim = rewritten.message.evidence_id
    with context.engine.begin() as conn:
        conn.execute(
            sqlalchemy.delete(CustodyEntryRow).where(
                CustodyEntryRow.evidence_id == victim, CustodyEntryRow.seq >= 2
            )
        )
    with context.sessions() as session:
        assert not verify_chain(victim, custody.read_chain(session, victim))  # consistent on its own
    result = client.get("/api/v1/custody/verify", headers=OPERATOR).json()
    assert result["ok"] is False and result["checkpoints"][0]["signature_ok"] is True
    assert any(f"evidence {victim}" in p and "entries deleted" in p for p in result["problems"])
    assert any(f"evidence {target}: entry 2: content altered" in p for p in result["problems"])
    forger = custody.Actor("someone", ActorRole.ADMIN)
    with context.sessions() as session:
        for _ in range(2):
            custody.commit_with_retry(
                session,
                lambda s: custody.append(s, victim, CustodyAction.VIEWED, forger, at=datetime.now(UTC)),
            )
        assert not verify_chain(victim, custody.read_chain(session, victim))
    result = client.get("/api/v1/custody/verify", headers=OPERATOR).json()
    assert any(
        f"evidence {victim}: entry 3 hashes to" in p and "log rewritten" in p for p in result["problems"]
    )


def test_checkpoints_are_signed_locked_linked_and_written_when_heads_change(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"custody_checkpoint_s": 0.3}),
            "evidence": EvidenceSettings(checkpoint_retention_days=3),
        }
    )
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        s3, bucket = make_client(api.settings.s3), api.settings.s3.evidence_bucket
        sealed = api.sealed()
        first = _wait_for_checkpoints(s3, bucket, 1)
        signature = _read(s3, bucket, first[0].removesuffix(".json") + ".sig.json")
        document = _read(s3, bucket, first[0])
        key = api.client.get("/api/v1/keys").json()["current"]
        assert verify_manifest(document, signature, key["public_key"])
        mode, until = lock_of(s3, bucket, first[0], None)
        assert mode == COMPLIANCE and abs(until - datetime.now(UTC) - timedelta(days=3)) < timedelta(
            minutes=1
        )
        threading.Event().wait(1.0)
        assert latest_keys(s3, bucket, 5) == first  # nothing changed: nothing written
        api.client.get(f"/api/v1/evidence/{sealed.message.evidence_id}", headers=LEGAL)
        second = _wait_for_checkpoints(s3, bucket, 2)
        newest = json.loads(_read(s3, bucket, second[0]))
        assert newest["previous_checkpoint_sha256"] == hashlib.sha256(document).hexdigest()
        assert newest["items"][str(sealed.message.evidence_id)]["seq"] == 2
        verified = api.client.get("/api/v1/custody/verify", headers=LEGAL).json()
        assert verified["ok"] is True and [c["key"] for c in verified["checkpoints"]] == second


def _read(s3: Minio, bucket: str, key: str) -> bytes:
    response = s3.get_object(bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def _wait_for_checkpoints(s3: Minio, bucket: str, count: int, timeout_s: float = 15.0) -> list[str]:
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    while datetime.now(UTC) < deadline:
        keys = latest_keys(s3, bucket, 10)
        if len(keys) >= count:
            return keys
        threading.Event().wait(0.2)
    raise AssertionError(f"fewer than {count} checkpoints after {timeout_s}s")


def test_concurrent_appends_form_one_valid_chain(api: ApiUnderTest) -> None:
    sealed = api.sealed()
    evidence_id, sessions = sealed.message.evidence_id, api.context.sessions
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        actor = custody.Actor(f"writer {n}", ActorRole.OPERATOR)
        try:
            with sessions() as session:
                for _ in range(8):
                    custody.commit_with_retry(
                        session,
                        lambda s: custody.append(
                            s, evidence_id, CustodyAction.VIEWED, actor, at=datetime.now(UTC)
                        ),
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    chain = custody_chain(api.client, evidence_id)
    assert [e.seq for e in chain] == list(range(2 + 6 * 8))
    assert not verify_chain(evidence_id, chain)
    assert {e.actor for e in chain[2:]} == {f"writer {n}" for n in range(6)}


def test_keys_are_public_and_include_retired_ones(settings: Settings, tmp_path: Path) -> None:
    retired = ManifestSigner.generate()
    settings = settings.model_copy(
        update={"evidence": EvidenceSettings(retired_public_keys=(retired.public_key.hex(),))}
    )
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        body = api.client.get("/api/v1/keys").json()  # no actor headers: public keys are public
        signer = api.context.signer
        assert body["current"] == {
            "key_id": signer.key_id,
            "algorithm": "ed25519",
            "public_key": base64.b64encode(signer.public_key).decode(),
        }
        assert [k["key_id"] for k in body["retired"]] == [retired.key_id]
        assert api.settings.evidence.signing_key_path.is_file()  # the evidence worker's key file
