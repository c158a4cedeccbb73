"""Share links and the disclosure log through the API, on the real S3 store.

A link is made for an export of a real sealed item; the recipient (no actor headers) downloads
the bundle twice, every use lands on the item's chain as the recipient, the link is revoked and
then refused (410, recorded); an expired link is refused by moving the app's clock, not by
sleeping; an unknown token is 404 and records nothing; the token is never listed or stored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from api.app import ShareTokenFilter
from api.routers.disclosures import CSV_COLUMNS
from cctv.config import Settings
from evidence_store.custody import verify_chain
from tests.api_support import LEGAL, OPERATOR, ApiUnderTest, api_under_test, custody_chain, seal_sim

pytestmark = pytest.mark.service

WHY = "disclosure to the council's solicitors"
SOLICITOR = {"recipient": "A. Solicitor", "organisation": "Exampleton Borough Council Legal Services"}


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[ApiUnderTest]:
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as under_test:
        yield under_test


def make_export(api: ApiUnderTest) -> tuple[Any, dict[str, Any]]:
    item = seal_sim(api, count=2)
    body = {"evidence_ids": [str(item.evidence_id)], "reason": WHY, **SOLICITOR}
    made = api.client.post("/api/v1/exports", json=body, headers=LEGAL)
    assert made.status_code == 201, made.text
    return item, made.json()


def share(api: ApiUnderTest, export_id: str, hours: float = 2.0) -> dict[str, Any]:
    body = {"export_id": export_id, "reason": WHY, "expires_in_hours": hours, **SOLICITOR}
    made = api.client.post("/api/v1/shares", json=body, headers=LEGAL)
    assert made.status_code == 201, made.text
    return dict(made.json())


def actions(api: ApiUnderTest, item: Any) -> list[str]:
    return [e.action.value for e in custody_chain(api.client, item.evidence_id)]


def test_share_use_revoke_and_refusals(api: ApiUnderTest) -> None:
    client = api.client
    item, export = make_export(api)
    created = share(api, export["export_id"])
    token, link = created["token"], created["url_path"]
    assert link == f"/api/v1/shared/{token}" and len(token) >= 43
    assert created["share"]["status"] == "active" and created["share"]["uses"] == 0
    shared = custody_chain(client, item.evidence_id)[-1]
    assert (shared.action.value, shared.reason, shared.object_sha256) == ("shared", WHY, export["sha256"])
    assert shared.details["share_id"] == created["share"]["share_id"]
    assert shared.details["expires_at"] == created["share"]["expires_at"].replace("Z", "+00:00")

    for _ in range(2):  # the solicitor opens the link: no actor headers
        used = client.get(link, headers={"User-Agent": "SolicitorBrowser/1.0"})
        assert used.status_code == 200, used.text
        assert hashlib.sha256(used.content).hexdigest() == export["sha256"]
        assert "attachment" in used.headers["content-disposition"]
        assert used.headers["cache-control"] == "no-store"
    uses = [e for e in custody_chain(client, item.evidence_id) if e.action.value == "share_used"]
    assert len(uses) == 2
    for entry in uses:
        assert (entry.actor, entry.role.value) == ("A. Solicitor", "external")
        assert entry.details["share_id"] == created["share"]["share_id"]
        assert entry.details["organisation"] == SOLICITOR["organisation"]
        assert entry.details["client_address"] == "testclient"
        assert entry.details["user_agent"] == "SolicitorBrowser/1.0" and entry.details["result"] == "ok"
        assert entry.object_sha256 == export["sha256"]
    [listed] = client.get("/api/v1/shares", headers=LEGAL).json()
    assert listed["uses"] == 2 and listed["status"] == "active" and listed["last_used_at"]

    revoke = f"/api/v1/shares/{listed['share_id']}/revoke"
    assert client.post(revoke, json={}, headers=LEGAL).status_code == 422  # a reason is required
    assert client.post(revoke, json={"reason": "x"}, headers=OPERATOR).status_code == 403
    revoked = client.post(revoke, json={"reason": "wrong recipient"}, headers=LEGAL)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = client.post(revoke, json={"reason": "again"}, headers=LEGAL)
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    gone = client.get(link)
    assert gone.status_code == 410 and gone.json()["title"] == "Share link revoked"
    assert b"PK" not in gone.content[:2]
    refused = custody_chain(client, item.evidence_id)[-1]
    assert refused.action.value == "share_used" and refused.details["result"] == "refused"
    assert refused.details["refused_because"] == "revoked"
    assert actions(api, item)[-5:] == ["shared", "share_used", "share_used", "share_revoked", "share_used"]
    assert client.get("/api/v1/shares", headers=LEGAL).json()[0]["uses"] == 2  # refusals are not uses

    before = custody_chain(client, item.evidence_id)
    assert client.get("/api/v1/shared/not-a-real-token").status_code == 404
    assert client.get(f"/api/v1/shared/{token[:-1]}").status_code == 404
    assert custody_chain(client, item.evidence_id) == before
    assert not verify_chain(item.evidence_id, before)

    # The token is shown once: never listed, never stored (only its SHA-256), never in the custody log.
    texts = [
        client.get("/api/v1/shares", headers=LEGAL).text,
        client.get(f"/api/v1/shares/{listed['share_id']}", headers=LEGAL).text,
        client.get("/api/v1/disclosures", headers=LEGAL).text,
        client.get("/api/v1/disclosures", params={"format": "csv"}, headers=LEGAL).text,
    ]
    with api.context.engine.connect() as conn:
        for table in ("shares", "custody_entries", "exports"):
            texts += [
                json.dumps([str(v) for v in row])
                for row in conn.execute(sqlalchemy.text(f"SELECT * FROM {table}"))
            ]
        digests = conn.execute(sqlalchemy.text("SELECT token_sha256 FROM shares")).scalars().all()
    assert not any(token in text for text in texts)
    assert digests == [hashlib.sha256(token.encode()).hexdigest()]


def test_share_limits_and_an_expired_link(api: ApiUnderTest) -> None:
    client = api.client
    item, export = make_export(api)
    base = {"export_id": export["export_id"], "reason": WHY, **SOLICITOR}
    too_long = client.post("/api/v1/shares", json={**base, "expires_in_hours": 169}, headers=LEGAL)
    assert too_long.status_code == 422 and "168" in too_long.json()["detail"]
    for hours in (0, -1):
        assert (
            client.post("/api/v1/shares", json={**base, "expires_in_hours": hours}, headers=LEGAL).status_code
            == 422
        )
    no_org = {k: v for k, v in base.items() if k != "organisation"}
    assert (
        client.post("/api/v1/shares", json={**no_org, "expires_in_hours": 1}, headers=LEGAL).status_code
        == 422
    )
    assert (
        client.post("/api/v1/shares", json={**base, "expires_in_hours": 1}, headers=OPERATOR).status_code
        == 403
    )
    unknown = {**base, "export_id": "00000000-0000-0000-0000-000000000000", "expires_in_hours": 1}
    assert client.post("/api/v1/shares", json=unknown, headers=LEGAL).status_code == 404

    created = share(api, export["export_id"], hours=1)
    assert client.get(created["url_path"]).status_code == 200
    later = datetime.now(UTC) + timedelta(hours=1, seconds=1)
    api.context.clock = lambda: later  # an hour passes
    try:
        expired = client.get(created["url_path"])
        assert expired.status_code == 410 and expired.json()["title"] == "Share link expired"
        assert client.get("/api/v1/shares", headers=LEGAL).json()[0]["status"] == "expired"
    finally:
        api.context.clock = lambda: datetime.now(UTC)
    last = custody_chain(client, item.evidence_id)[-1]
    assert last.action.value == "share_used" and last.details["refused_because"] == "expired"
    assert last.actor == "A. Solicitor"


def test_disclosure_log(api: ApiUnderTest) -> None:
    client = api.client
    item, export = make_export(api)
    internal = client.post(
        "/api/v1/exports",
        json={"evidence_ids": [str(item.evidence_id)], "reason": "internal review"},
        headers=LEGAL,
    )
    assert internal.status_code == 201
    created = share(api, export["export_id"])
    client.get(created["url_path"])
    assert client.get("/api/v1/disclosures", headers=OPERATOR).status_code == 403

    rows = client.get("/api/v1/disclosures", headers=LEGAL).json()
    assert [r["kind"] for r in rows] == ["export", "share"]  # date order; the internal export is not listed
    export_row, share_row = rows
    assert export_row["export_id"] == share_row["export_id"] == export["export_id"]
    assert share_row["share_id"] == created["share"]["share_id"] and share_row["uses"] == 1
    for row in rows:
        assert (row["recipient"], row["organisation"], row["reason"]) == (
            SOLICITOR["recipient"],
            SOLICITOR["organisation"],
            WHY,
        )
        assert row["shared_by"] == "Jane Smith" and row["evidence_ids"] == [str(item.evidence_id)]
        assert row["exhibit_refs"] == [str(item.evidence_id)]
    assert share_row["expires_at"] and share_row["revoked_at"] is None

    response = client.get("/api/v1/disclosures", params={"format": "csv"}, headers=LEGAL)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == CSV_COLUMNS and len(table) == 3
    record = dict(zip(table[0], table[2], strict=True))
    assert (record["kind"], record["recipient"], record["organisation"]) == (
        "share",
        "A. Solicitor",
        SOLICITOR["organisation"],
    )
    assert record["reason"] == WHY and record["uses"] == "1"
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert client.get("/api/v1/disclosures", params={"since": future}, headers=LEGAL).json() == []


def test_access_log_never_shows_a_share_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None
    )
    record.args = ("10.0.0.9:5000", "GET", "/api/v1/shared/abcDEF_123-xyz?x=1", "1.1", 200)
    assert ShareTokenFilter().filter(record)
    assert "abcDEF_123-xyz" not in record.getMessage()
    assert "/api/v1/shared/<redacted>?x=1" in record.getMessage()
