"""REST behaviour of the API on a real database, without the broker: data goes in through Persister.persist.

Filters, pagination, ordering, problem details, out-of-order lifecycle
messages, evidence that overtakes its incident, cameras without credentials,
and the migrations themselves (including 0002 folding the old access log into
custody chains, and back), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
import sqlalchemy.orm
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient

from api import custody
from api.app import create_app
from api.db import alembic_config, make_engine, run_migrations
from api.models import Base, CameraRow, IncidentEventRow
from api.persister import Persister
from cctv.contracts import Box, IncidentEvent
from evidence_store.custody import verify_chain
from tests.api_support import (
    LEGAL,
    T0,
    authorize,
    camera_registry,
    incident,
    isolated_database,
    jpeg,
    lifecycle,
    local_settings,
    sealed_metadata,
    status,
)

pytestmark = pytest.mark.service


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
def client_and_persister(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Persister]]:
    settings = local_settings(tmp_path, db_url, camera_heartbeat_s=10)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    with TestClient(app) as client:
        authorize(client)
        persister = Persister(
            context.sessions, None, None, settings.kafka, threading.Event(), context.metrics
        )
        yield client, persister


def problem(response_json: dict[str, object], status_code: int) -> None:
    assert {"type", "title", "status", "detail"} <= set(response_json)
    assert response_json["status"] == status_code


def test_filters_pagination_and_newest_first(client_and_persister: tuple[TestClient, Persister]) -> None:
    client, persister = client_and_persister
    ids = [uuid.uuid4() for _ in range(5)]
    messages = []
    for i, incident_id in enumerate(ids):
        at = T0 + timedelta(minutes=10 * i)
        camera, rule = ("cam1", "loitering") if i % 2 == 0 else ("cam2", "tamper")
        messages.append(
            incident(incident_id, IncidentEvent.OPENED, camera_id=camera, rule=rule, threshold_at=at)
        )
    messages.append(
        incident(ids[0], IncidentEvent.CLOSED, threshold_at=T0, event_at=T0 + timedelta(seconds=30))
    )
    persister.persist(messages)

    page = client.get("/api/v1/incidents").json()
    assert page["total"] == 5 and page["limit"] == 50 and page["offset"] == 0
    assert [item["incident_id"] for item in page["items"]] == [str(i) for i in reversed(ids)]

    cam2 = client.get("/api/v1/incidents", params={"camera_id": "cam2"}).json()
    assert {item["incident_id"] for item in cam2["items"]} == {str(ids[1]), str(ids[3])}
    assert client.get("/api/v1/incidents", params={"rule": "tamper"}).json()["total"] == 2
    closed = client.get("/api/v1/incidents", params={"status": "closed"}).json()
    assert [item["incident_id"] for item in closed["items"]] == [str(ids[0])]
    assert client.get("/api/v1/incidents", params={"status": "open"}).json()["total"] == 4

    # since is inclusive, until exclusive; an offset other than UTC is converted.
    window = client.get(
        "/api/v1/incidents",
        params={"since": (T0 + timedelta(minutes=10)).isoformat(), "until": "2025-03-01T13:30:00+01:00"},
    ).json()
    assert [item["incident_id"] for item in window["items"]] == [str(ids[2]), str(ids[1])]

    second = client.get("/api/v1/incidents", params={"limit": 2, "offset": 2}).json()
    assert second["total"] == 5 and second["limit"] == 2 and second["offset"] == 2
    assert [item["incident_id"] for item in second["items"]] == [str(ids[2]), str(ids[1])]


def test_unknown_ids_are_404_and_bad_params_422_problem_details(
    client_and_persister: tuple[TestClient, Persister],
) -> None:
    client, _ = client_and_persister
    missing = uuid.uuid4()
    for path in (
        f"/api/v1/incidents/{missing}",
        f"/api/v1/incidents/{missing}/snapshot",
        f"/api/v1/incidents/{missing}/events",
        f"/api/v1/incidents/{missing}/evidence",
        f"/api/v1/evidence/{missing}",
        f"/api/v1/evidence/{missing}/clip",
        "/api/v1/cameras/nope",
        f"/api/v1/cases/{missing}",
        f"/api/v1/evidence/{missing}/custody",
    ):
        response = client.get(path, params={"reason": "test"}, headers=LEGAL)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        problem(response.json(), 404)
        assert str(missing) in response.json()["detail"] or "nope" in response.json()["detail"]
    for params in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"status": "maybe"}, {"since": "yesterday"}):
        response = client.get("/api/v1/incidents", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        problem(body, 422)
        assert body["title"] == "Request validation failed" and body["errors"], body
    bad_id = client.get("/api/v1/evidence/not-a-uuid", headers=LEGAL)
    assert bad_id.status_code == 422 and bad_id.json()["errors"][0]["loc"] == ["path", "evidence_id"]


def test_lifecycle_out_of_order_and_redelivered(client_and_persister: tuple[TestClient, Persister]) -> None:
    client, persister = client_and_persister
    incident_id = uuid.uuid4()
    opened, updated, closed = lifecycle(incident_id)
    first = persister.persist([opened, closed])
    assert all(a.changed for a in first) and first[0].alert_latency_s is not None
    # The late "updated" is recorded as an event but neither reopens nor overwrites the closed incident.
    late = persister.persist([updated])
    assert late[0].changed and late[0].alert_latency_s is None
    again = persister.persist([opened, updated, closed])
    assert not any(a.changed for a in again)

    body = client.get(f"/api/v1/incidents/{incident_id}").json()
    assert body["status"] == "closed" and body["last_event"] == "closed" and body["dwell_s"] == 90
    assert client.get(f"/api/v1/incidents/{incident_id}/snapshot").content == closed.snapshot_jpeg
    events = client.get(f"/api/v1/incidents/{incident_id}/events").json()
    assert [e["event"] for e in events] == ["opened", "updated", "closed"]


def test_evidence_before_incident_gets_a_pending_stub_then_fills_in(
    client_and_persister: tuple[TestClient, Persister],
) -> None:
    client, persister = client_and_persister
    incident_id = uuid.uuid4()
    sealed = sealed_metadata(incident_id)
    persister.persist([sealed])
    stub = client.get(f"/api/v1/incidents/{incident_id}").json()
    assert stub["status"] == "pending" and stub["first_received_at"] is None
    assert client.get(f"/api/v1/incidents/{incident_id}/evidence").json()[0]["evidence_id"] == str(
        sealed.evidence_id
    )
    persister.persist(lifecycle(incident_id))
    filled = client.get(f"/api/v1/incidents/{incident_id}").json()
    assert filled["status"] == "closed" and filled["rule"] == "loitering" and filled["first_received_at"]


def test_cameras_have_health_and_no_credentials(
    client_and_persister: tuple[TestClient, Persister], db_url: str
) -> None:
    client, persister = client_and_persister
    now = datetime.now(UTC)
    persister.persist([status("cam1", at=now, fps=4.5), status("cam2", at=now - timedelta(seconds=31))])
    # An older heartbeat arriving late changes nothing.
    assert not persister.persist([status("cam1", at=now - timedelta(seconds=5), fps=1.0)])[0].changed
    cameras = {c["id"]: c for c in client.get("/api/v1/cameras").json()}
    assert cameras["cam1"]["source_scheme"] == "rtsp" and cameras["cam2"]["source_scheme"] == "sim"
    assert cameras["cam1"]["health"]["fps"] == 4.5 and cameras["cam1"]["health"]["stale"] is False
    assert cameras["cam2"]["health"]["stale"] is True  # 31 s > 3 x 10 s heartbeat period
    assert cameras["cam1"]["zones"][0]["id"] == "door"
    assert client.get("/api/v1/cameras/cam1").json()["health"]["state"] == "online"
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            dumped = repr(conn.execute(sqlalchemy.select(CameraRow.__table__)).all())
        assert "s3cret" not in dumped and "admin" not in dumped and "10.0.0.5" not in dumped
    finally:
        engine.dispose()


def test_migrations_are_idempotent_and_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        run_migrations(engine)
        run_migrations(engine)  # a second replica starting up
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            assert conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar() == "0006"
            conn.execute(sqlalchemy.select(IncidentEventRow.__table__)).all()
    finally:
        engine.dispose()


def test_snapshot_is_the_newest_event_with_one(client_and_persister: tuple[TestClient, Persister]) -> None:
    client, persister = client_and_persister
    incident_id = uuid.uuid4()
    opened = incident(incident_id, IncidentEvent.OPENED, snapshot=jpeg(99))
    updated = incident(incident_id, IncidentEvent.UPDATED, event_at=T0 + timedelta(seconds=1))  # no snapshot
    persister.persist([opened, updated])
    response = client.get(f"/api/v1/incidents/{incident_id}/snapshot")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == jpeg(99)
    assert client.get(f"/api/v1/incidents/{incident_id}").json()["has_snapshot"] is True


def test_vandalism_incident_has_before_and_after_snapshots_and_change_region(
    client_and_persister: tuple[TestClient, Persister],
) -> None:
    client, persister = client_and_persister
    incident_id = uuid.uuid4()
    region = Box(x1=100, y1=40, x2=220, y2=90, confidence=1.0, label="change")
    opened = incident(incident_id, IncidentEvent.OPENED, rule="area_change", snapshot=jpeg(200)).model_copy(
        update={"change_region": region, "before_snapshot_jpeg": jpeg(20)}
    )
    closed = incident(
        incident_id, IncidentEvent.CLOSED, rule="area_change", event_at=T0 + timedelta(seconds=2)
    )
    persister.persist([opened, closed])
    body = client.get(f"/api/v1/incidents/{incident_id}").json()
    assert body["rule"] == "area_change" and body["has_before_snapshot"] is True
    assert Box.model_validate(body["change_region"]) == region
    assert client.get(f"/api/v1/incidents/{incident_id}/snapshot?view=before").content == jpeg(20)
    assert client.get(f"/api/v1/incidents/{incident_id}/snapshot").content == jpeg(200)
    loitering_id = uuid.uuid4()
    persister.persist([incident(loitering_id, IncidentEvent.OPENED, snapshot=jpeg(99))])
    missing = client.get(f"/api/v1/incidents/{loitering_id}/snapshot?view=before")
    assert missing.status_code == 404 and "before snapshot" in missing.json()["detail"]
    assert client.get(f"/api/v1/incidents/{loitering_id}/snapshot?view=after").status_code == 422


def test_openapi_docs_list_every_route_with_a_summary(
    client_and_persister: tuple[TestClient, Persister],
) -> None:
    client, _ = client_and_persister
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    operations = [(path, op) for path, item in paths.items() for op in item.values()]
    assert len(operations) >= 14
    missing = [
        path
        for path, op in operations
        if not op.get("summary") or not {"200", "201", "202", "204"} & set(op["responses"])
    ]
    assert missing == []
    assert "/api/v1/evidence/{evidence_id}/clip" in paths and "/readyz" in paths and "/metrics" in paths
    for path in (
        "/api/v1/evidence/{evidence_id}/custody",
        "/api/v1/evidence/{evidence_id}/legal-hold",
        "/api/v1/evidence/{evidence_id}/retention",
        "/api/v1/cases/{case_id}/items",
        "/api/v1/keys",
        "/api/v1/custody/verify",
    ):
        assert path in paths, path


def test_migration_folds_the_access_log_into_chains(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        _migrate(engine, db_url, "0001")
        evidence_id = uuid.uuid4()
        _old_rows(engine, evidence_id)
        run_migrations(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            assert "evidence_access" not in sqlalchemy.inspect(conn).get_table_names()
        with sqlalchemy.orm.Session(engine) as session:
            chain = custody.read_chain(session, evidence_id)
        assert [e.action.value for e in chain] == [
            "sealed",
            "created",
            "downloaded",
            "download_refused",
            "downloaded",
        ]
        assert not verify_chain(evidence_id, chain)
        ok, refused, unexplained = chain[2:]
        assert (ok.actor, ok.role, ok.reason) == ("unknown (before custody log)", "system", "case 7")
        assert ok.details["client_address"] == "10.1.2.3" and ok.details["sha256_served"] == "a" * 64
        assert refused.details["result"] == "integrity_failure" and refused.details["sha256_read"] == "b" * 64
        assert unexplained.details["reason_recorded"] is False and "no reason recorded" in (
            unexplained.reason or ""
        )
        assert ok.at == "2025-03-01T12:05:00.123456+00:00"
        _migrate(engine, db_url, "0001", downgrade=True)  # and back: the access log is rebuilt, unchanged
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT client_address, user_agent, reason, result, sha256_read, sha256_served "
                    "FROM evidence_access ORDER BY at"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("10.1.2.3", "curl", "case 7", "ok", "a" * 64, "a" * 64),
            (None, None, None, "integrity_failure", "b" * 64, None),
            (None, None, None, "ok", None, None),
        ]
    finally:
        engine.dispose()


def _migrate(engine: sqlalchemy.Engine, url: str, revision: str, *, downgrade: bool = False) -> None:
    with engine.begin() as conn:
        config = alembic_config(url)
        config.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(config, revision)


def _old_rows(engine: sqlalchemy.Engine, evidence_id: uuid.UUID) -> None:
    """An incident, its evidence and three access-log rows as revision 0001 stored them."""
    meta = sqlalchemy.MetaData()
    meta.reflect(engine, only=["incidents", "evidence", "evidence_artifacts", "evidence_access"])
    t0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
    incident_id = uuid.uuid4()
    uid = (lambda u: u.hex) if engine.dialect.name == "sqlite" else (lambda u: u)
    naive = (lambda t: t.replace(tzinfo=None)) if engine.dialect.name == "sqlite" else (lambda t: t)
    with engine.begin() as conn:
        conn.execute(
            meta.tables["incidents"].insert(),
            {
                "incident_id": uid(incident_id),
                "camera_id": "cam1",
                "rule": "loitering",
                "status": "closed",
                "started_at": naive(t0),
                "threshold_at": naive(t0),
                "summary": "s",
                "track_ids": [],
                "boxes": [],
                "has_snapshot": False,
                "updated_at": naive(t0),
            },
        )
        conn.execute(
            meta.tables["evidence"].insert(),
            {
                "evidence_id": uid(evidence_id),
                "incident_id": uid(incident_id),
                "camera_id": "cam1",
                "bucket": "b",
                "manifest_sha256": "c" * 64,
                "frame_count": 3,
                "sealed_at": naive(t0),
                "retain_until": naive(t0 + timedelta(days=31)),
                "signing_key_id": "k",
                "received_at": naive(t0 + timedelta(seconds=1)),
            },
        )
        conn.execute(
            meta.tables["evidence_artifacts"].insert(),
            {
                "evidence_id": uid(evidence_id),
                "kind": "manifest",
                "key": "m.json",
                "version_id": "v1",
                "sha256": "c" * 64,
                "size": 10,
                "content_type": "application/json",
            },
        )
        access = {
            "evidence_id": uid(evidence_id),
            "artifact_kind": "working_copy",
            "action": "download",
            "client_address": None,
            "user_agent": None,
            "reason": None,
            "sha256_read": None,
            "sha256_served": None,
        }
        conn.execute(
            meta.tables["evidence_access"].insert(),
            [
                access
                | {
                    "client_address": "10.1.2.3",
                    "user_agent": "curl",
                    "reason": "case 7",
                    "at": naive(t0 + timedelta(minutes=5, microseconds=123456)),
                    "expected_sha256": "a" * 64,
                    "sha256_read": "a" * 64,
                    "sha256_served": "a" * 64,
                    "result": "ok",
                },
                access
                | {
                    "at": naive(t0 + timedelta(minutes=6)),
                    "expected_sha256": "a" * 64,
                    "sha256_read": "b" * 64,
                    "result": "integrity_failure",
                },
                access
                | {"at": naive(t0 + timedelta(minutes=7)), "expected_sha256": "a" * 64, "result": "ok"},
            ],
        )
