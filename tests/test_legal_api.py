"""The legal team's case work through the API, on SQLite and PostgreSQL with the real S3 store.

A case for an injunction application is built from whole incidents (every sealed
item becomes the next exhibit, refs sequential and never renumbered), held (the
store's Object Lock legal hold really set on every version, read back with the
minio client, and set at once on an exhibit added later), noted, exported and
shared; the timeline shows each of those once, in order; the custody log view
pages and filters every chain and exports exactly the case's entries as CSV; the
disclosure log pages and filters by case. Operators and ops are refused (403) on
every route added for this, and nobody gets in without credentials (401).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from api.routers.custody import CSV_COLUMNS
from cctv.config import Settings
from cctv.objectstore import make_client
from evidence_store.retention import ObjectVersion, lock_status
from tests.api_support import (
    OPERATOR,
    OPS,
    ApiUnderTest,
    SealedObjects,
    api_under_test,
    custody_chain,
    isolated_database,
    lifecycle,
    seal_evidence,
    seal_sim,
)

pytestmark = pytest.mark.service

REF = "INJ-2025-007"
WHY = "application for an injunction: evidence for the hearing"
SOLICITOR = {"recipient": "A. Solicitor", "organisation": "Exampleton Borough Council Legal Services"}


@pytest.fixture(params=["sqlite", "postgresql"])
def api(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ApiUnderTest]:
    with isolated_database(request.param, tmp_path, request) as url, api_under_test(settings, url) as a:
        yield a


def held(s3: Minio, sealed: SealedObjects) -> list[bool]:
    """The store's legal hold of every artifact version of the item, as the store reports it."""
    return [
        lock_status(s3, sealed.message.bucket, ObjectVersion(a.key, a.version_id or "")).legal_hold
        for a in sealed.message.artifacts
    ]


def open_case(api: ApiUnderTest, reference: str = REF) -> str:
    made = api.client.post("/api/v1/cases", json={"reference": reference, "title": "High St ASB"})
    assert made.status_code == 201, made.text
    return str(made.json()["case_id"])


def add_incident(api: ApiUnderTest, case_id: str, incident_id: uuid.UUID, **extra: str) -> Any:
    return api.client.post(
        f"/api/v1/cases/{case_id}/incidents", json={"incident_id": str(incident_id), **extra}
    )


def test_a_case_built_from_incidents_held_noted_and_logged(api: ApiUnderTest) -> None:
    client, s3 = api.client, make_client(api.settings.s3)
    first, second, outsider = api.sealed(), api.sealed(), api.sealed()
    first_incident = first.message.incident_id
    again = seal_evidence(api.settings, first_incident)  # a second item sealed for the same incident
    api.persister.persist([again.message])
    case_id = open_case(api)

    added = add_incident(api, case_id, first_incident)
    assert added.status_code == 201, added.text
    in_seal_order = sorted([first, again], key=lambda s: (s.message.sealed_at, s.message.evidence_id))
    assert [(i["exhibit_ref"], i["evidence_id"], i["incident_id"]) for i in added.json()] == [
        (f"{REF}/00{n}", str(s.message.evidence_id), str(first_incident))
        for n, s in enumerate(in_seal_order, start=1)
    ]
    assert set(added.json()[0]) == {
        "evidence_id",
        "number",
        "exhibit_ref",
        "added_at",
        "added_by",
        "incident_id",
        "camera_id",
        "sealed_at",
    }
    assert added.json()[0]["added_by"] == "Jane Smith" and added.json()[0]["number"] == 1
    [third_ref] = add_incident(api, case_id, second.message.incident_id).json()
    assert third_ref["exhibit_ref"] == f"{REF}/003"
    repeat = add_incident(api, case_id, first_incident)
    assert repeat.status_code == 409 and f"{REF}/001" in repeat.json()["detail"]
    entry = custody_chain(client, first.message.evidence_id)[-1]
    assert entry.action == "added_to_case" and entry.details["case_reference"] == REF

    case = client.get(f"/api/v1/cases/{case_id}").json()
    refs = [(i["exhibit_ref"], i["evidence_id"]) for i in case["items"]]
    assert [r for r, _ in refs] == [f"{REF}/001", f"{REF}/002", f"{REF}/003"]
    assert (case["item_count"], case["incident_count"], case["export_count"], case["note_count"]) == (
        3,
        2,
        0,
        0,
    )
    assert case["incident_ids"] == [str(first_incident), str(second.message.incident_id)]

    # The case hold: every exhibit's versions held by the store; an incident added later is held at once.
    hold = client.put(f"/api/v1/cases/{case_id}/legal-hold", json={"on": True, "reason": WHY})
    assert hold.status_code == 200, hold.text
    for sealed in (first, again, second):
        assert held(s3, sealed) == [True] * 3
    assert held(s3, outsider) == [False] * 3
    late = api.sealed()
    [late_item] = add_incident(api, case_id, late.message.incident_id, reason="a later incident").json()
    assert late_item["exhibit_ref"] == f"{REF}/004" and held(s3, late) == [True] * 3
    assert [e.action for e in custody_chain(client, late.message.evidence_id)][-2:] == [
        "added_to_case",
        "hold_placed",
    ]
    now = client.get(f"/api/v1/cases/{case_id}").json()
    assert [(i["exhibit_ref"], i["evidence_id"]) for i in now["items"]][:3] == refs  # never renumbered

    # Notes: append-only, who and role from the credentials.
    note = client.post(f"/api/v1/cases/{case_id}/notes", json={"text": "  Witness statement from Mr B.  "})
    assert note.status_code == 201, note.text
    assert set(note.json()) == {"id", "at", "actor", "role", "text"}
    assert (note.json()["actor"], note.json()["role"], note.json()["text"]) == (
        "Jane Smith",
        "legal",
        "Witness statement from Mr B.",
    )
    for bad in ({"text": "   "}, {"text": "x", "actor": "someone else"}, {}):
        assert client.post(f"/api/v1/cases/{case_id}/notes", json=bad).status_code == 422
    assert client.get(f"/api/v1/cases/{case_id}/notes").json() == [note.json()]

    released = client.put(f"/api/v1/cases/{case_id}/legal-hold", json={"on": False, "reason": "order made"})
    assert released.status_code == 200 and held(s3, first) == [False] * 3

    timeline = client.get(f"/api/v1/cases/{case_id}/timeline").json()
    assert [e["kind"] for e in timeline] == [
        *["incident_alert"] * 3,
        "case_created",
        *["exhibit_added"] * 3,
        "hold_placed",  # one event for the request that held three exhibits
        "exhibit_added",
        "hold_placed",
        "note",
        "hold_released",
    ]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    alerts = {e["incident_id"]: e for e in timeline if e["kind"] == "incident_alert"}
    assert alerts[str(first_incident)]["ref"] == f"{REF}/001, {REF}/002"
    assert alerts[str(first_incident)]["camera_id"] == "cam1"
    assert alerts[str(first_incident)]["at"].startswith("2025-03-01T12:00:00")  # the alert time
    placed = timeline[7]
    assert placed["ref"] == f"{REF}/001, {REF}/002, {REF}/003" and placed["actor"] == "Jane Smith"
    assert WHY in placed["label"] and "3 exhibits" in placed["label"]
    assert timeline[9]["ref"] == f"{REF}/004"
    assert timeline[10]["note_id"] == note.json()["id"] and timeline[10]["label"] == note.json()["text"]
    assert timeline[-1]["ref"].count(REF) == 4 and "order made" in timeline[-1]["label"]
    assert timeline[3]["label"] == f"Case {REF} opened: High St ASB"

    # The custody log view: the case's exhibits' chains, whole, and nothing else.
    members = [first, again, second, late]
    expected = {str(s.message.evidence_id): custody_chain(client, s.message.evidence_id) for s in members}
    page = client.get("/api/v1/custody/entries", params={"case_id": case_id, "limit": 5}).json()
    assert page["total"] == sum(len(chain) for chain in expected.values()) and len(page["items"]) == 5
    assert set(page) == {"items", "total", "limit", "offset"}
    exhibit_of = {e: r for r, e in refs} | {str(late.message.evidence_id): f"{REF}/004"}
    for item in page["items"]:
        assert item["exhibit_ref"] == exhibit_of[item["evidence_id"]]
        assert item["entry_hash"] == expected[item["evidence_id"]][item["seq"]].entry_hash
    response = client.get("/api/v1/custody/entries", params={"case_id": case_id, "format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert (
        "attachment" in response.headers["content-disposition"]
        and REF in response.headers["content-disposition"]
    )
    table = list(csv.reader(io.StringIO(response.text)))
    assert tuple(table[0]) == CSV_COLUMNS
    rows = [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    assert sorted((r["evidence_id"], int(r["seq"])) for r in rows) == sorted(
        (e, entry.seq) for e, chain in expected.items() for entry in chain
    )
    for row in rows:
        stored = expected[row["evidence_id"]][int(row["seq"])]
        assert (row["at"], row["action"], row["actor"], row["entry_hash"]) == (
            stored.at,
            stored.action.value,
            stored.actor,
            stored.entry_hash,
        )
        assert row["exhibit_ref"] == exhibit_of[row["evidence_id"]]
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)


def test_custody_log_filters_and_pages(api: ApiUnderTest) -> None:
    client = api.client
    one, two = api.sealed(), api.sealed()
    entries = "/api/v1/custody/entries"
    for item in (one, two):
        client.get(f"/api/v1/evidence/{item.message.evidence_id}", headers=OPERATOR)  # viewed, by Sam
    everything = client.get(entries).json()
    assert everything["total"] == 6 and everything["offset"] == 0 and everything["limit"] == 100
    ids = [e["id"] for e in everything["items"]]
    pages = [client.get(entries, params={"limit": 4, "offset": o}).json() for o in (0, 4)]
    assert [e["id"] for p in pages for e in p["items"]] == ids and pages[1]["total"] == 6
    newest = client.get(entries, params={"order": "desc"}).json()["items"]
    assert [e["id"] for e in newest] == ids[::-1]
    mine = client.get(entries, params={"evidence_id": str(one.message.evidence_id)}).json()
    assert mine["total"] == 3 and {e["evidence_id"] for e in mine["items"]} == {str(one.message.evidence_id)}
    assert all(e["exhibit_ref"] is None for e in mine["items"])
    by_sam = client.get(entries, params={"actor": "Sam Patel"}).json()
    assert by_sam["total"] == 2 and {e["action"] for e in by_sam["items"]} == {"viewed"}
    both = client.get(entries, params=[("action", "sealed"), ("action", "viewed")]).json()
    assert both["total"] == 4 and {e["action"] for e in both["items"]} == {"sealed", "viewed"}
    assert client.get(entries, params={"action": "not-an-action"}).status_code == 422
    # The sealed entries carry the seal time (2025-03-01), the others now.
    cut = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert client.get(entries, params={"until": cut}).json()["total"] == 2
    assert client.get(entries, params={"since": cut}).json()["total"] == 4
    naive = client.get(entries, params={"until": "2025-03-02T00:00:00"}).json()
    assert naive["total"] == 2  # no offset means UTC
    unknown = client.get(entries, params={"case_id": str(uuid.uuid4())})
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert client.get(entries, params={"limit": 0}).status_code == 422


def test_adding_incidents_refused_with_reasons(api: ApiUnderTest) -> None:
    client = api.client
    case_id = open_case(api)
    missing = add_incident(api, case_id, uuid.uuid4())
    assert missing.status_code == 404 and "incident" in missing.json()["detail"]
    unsealed = uuid.uuid4()
    api.persister.persist(lifecycle(unsealed))  # alerted, clip not sealed yet
    early = add_incident(api, case_id, unsealed)
    assert early.status_code == 409 and early.json()["title"] == "No sealed evidence yet"
    assert "no sealed evidence" in early.json()["detail"]
    no_case = add_incident(api, str(uuid.uuid4()), unsealed)
    assert no_case.status_code == 404
    assert add_incident(api, case_id, unsealed, note="x").status_code == 422  # unknown field
    assert client.get(f"/api/v1/cases/{case_id}").json()["item_count"] == 0
    for path in ("notes", "timeline"):
        assert client.get(f"/api/v1/cases/{uuid.uuid4()}/{path}").status_code == 404
    assert client.post(f"/api/v1/cases/{uuid.uuid4()}/notes", json={"text": "x"}).status_code == 404


@pytest.mark.parametrize("who", [OPERATOR, OPS, {}], ids=["operator", "ops", "nobody"])
def test_legal_routes_refuse_other_roles(api: ApiUnderTest, who: dict[str, str]) -> None:
    client = api.client
    sealed = api.sealed()
    case_id = open_case(api)
    incident = {"incident_id": str(sealed.message.incident_id)}
    headers = who or {"Authorization": ""}  # no credentials: an empty header replaces the default
    routes = [
        ("POST", f"/api/v1/cases/{case_id}/incidents", incident),
        ("POST", f"/api/v1/cases/{case_id}/notes", {"text": "x"}),
        ("GET", f"/api/v1/cases/{case_id}/notes", None),
        ("GET", f"/api/v1/cases/{case_id}/timeline", None),
        ("GET", "/api/v1/custody/entries", None),
        ("GET", "/api/v1/custody/entries?format=csv", None),
        ("GET", "/api/v1/disclosures?limit=1", None),
    ]
    for method, path, body in routes:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == (403 if who else 401), (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    case = client.get(f"/api/v1/cases/{case_id}").json()
    assert (case["item_count"], case["note_count"]) == (0, 0)


def test_a_case_exported_shared_and_in_the_logs(api: ApiUnderTest) -> None:
    client = api.client
    first, second = seal_sim(api, count=3), seal_sim(api, first=120, count=3)
    case_id = open_case(api)
    for item in (first, second):
        assert add_incident(api, case_id, item.opened.incident_id).status_code == 201
    made = client.post("/api/v1/exports", json={"case_id": case_id, "reason": WHY, **SOLICITOR})
    assert made.status_code == 201, made.text
    export = made.json()
    link = {"export_id": export["export_id"], "reason": WHY, "expires_in_hours": 2, **SOLICITOR}
    shared = client.post("/api/v1/shares", json=link)
    assert shared.status_code == 201, shared.text

    case = client.get(f"/api/v1/cases/{case_id}").json()
    assert case["export_count"] == 1 and case["export_ids"] == [export["export_id"]]
    assert client.get("/api/v1/cases").json()[0]["export_count"] == 1
    timeline = client.get(f"/api/v1/cases/{case_id}/timeline").json()
    assert [e["kind"] for e in timeline][-2:] == ["exported", "shared"]
    exported = timeline[-2]
    assert exported["export_id"] == export["export_id"] and exported["actor"] == "Jane Smith"
    assert exported["ref"] == f"{REF}/001, {REF}/002" and SOLICITOR["recipient"] in exported["label"]
    assert timeline[-1]["share_id"] == shared.json()["share"]["share_id"]

    logged = client.get("/api/v1/custody/entries", params={"case_id": case_id, "action": "exported"}).json()
    assert logged["total"] == 2
    assert {e["details"]["export_id"] for e in logged["items"]} == {export["export_id"]}

    # The disclosure log: paged for a list page, filtered by case.
    disclosures = "/api/v1/disclosures"
    whole = client.get(disclosures, params={"case_id": case_id})
    assert [r["kind"] for r in whole.json()] == ["export", "share"] and whole.headers["x-total-count"] == "2"
    second_page = client.get(disclosures, params={"case_id": case_id, "limit": 1, "offset": 1})
    assert [r["kind"] for r in second_page.json()] == ["share"] and second_page.headers[
        "x-total-count"
    ] == "2"
    assert client.get(disclosures, params={"case_id": str(uuid.uuid4())}).json() == []
    other = open_case(api, "INJ-2025-008")
    assert client.get(disclosures, params={"case_id": other}).json() == []
    as_csv = client.get(disclosures, params={"case_id": case_id, "format": "csv", "limit": 1})
    assert len(list(csv.reader(io.StringIO(as_csv.text)))) == 3  # the CSV is the whole filtered register
