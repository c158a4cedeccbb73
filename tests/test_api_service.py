"""The API with the real broker: topics -> persister -> database -> REST, readiness and `run_api`."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from kafka import TopicPartition

from api.app import create_app, run_api
from api.db import make_engine, make_sessions, run_migrations
from api.models import CustodyEntryRow, EvidenceArtifactRow, EvidenceRow, IncidentEventRow, IncidentRow
from api.persister import Persister
from cctv.bus import DeadLetterSink, ensure_topics, make_consumer, make_producer
from cctv.config import Settings
from cctv.contracts import IncidentEvent, TopicMessage
from tests.api_support import (
    LEGAL,
    OPS,
    authorize,
    camera_registry,
    dead_letters,
    drain,
    free_port,
    incident,
    isolated_database,
    lifecycle,
    produce,
    seal_evidence,
    seed_keys,
    status,
    with_database,
)

pytestmark = pytest.mark.service


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


def snapshot_of_api(client: TestClient, incident_ids: list[uuid.UUID]) -> dict[str, Any]:
    """Everything the REST API says about the given incidents (used to prove redelivery changes nothing)."""
    state: dict[str, Any] = {"list": client.get("/api/v1/incidents").json()}
    for incident_id in incident_ids:
        state[str(incident_id)] = client.get(f"/api/v1/incidents/{incident_id}").json()
        state[f"{incident_id}/events"] = client.get(f"/api/v1/incidents/{incident_id}/events").json()
        state[f"{incident_id}/evidence"] = client.get(f"/api/v1/incidents/{incident_id}/evidence").json()
        state[f"{incident_id}/snapshot"] = client.get(f"/api/v1/incidents/{incident_id}/snapshot").content
    # lag_s is "seconds since the last frame, now": it moves with the clock, not with the data.
    state["cameras"] = [
        {k: v for k, v in c.items() if k != "lag_s"} for c in client.get("/api/v1/cameras").json()
    ]
    return state


def row_counts(client: TestClient) -> dict[str, int]:
    context = client.app.state.context  # type: ignore[attr-defined]
    with context.sessions() as session:
        return {
            model.__tablename__: session.scalar(sqlalchemy.select(sqlalchemy.func.count()).select_from(model))
            or 0
            for model in (IncidentRow, IncidentEventRow, EvidenceRow, EvidenceArtifactRow, CustodyEntryRow)
        }


def test_topics_are_persisted_served_and_redelivery_changes_nothing(
    settings: Settings, db_url: str, unique: str
) -> None:
    settings = with_database(settings, db_url, group_id=f"api-{unique}")
    ensure_topics(settings.kafka)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    producer = make_producer(settings.kafka, "api-test")
    consumer = make_consumer(settings.kafka, "api-test", settings.api.group_id)
    stop = threading.Event()
    persister = Persister(
        context.sessions,
        consumer,
        DeadLetterSink(producer, settings.kafka.dead_letter_topic, "api-test"),
        settings.kafka,
        stop,
        context.metrics,
    )
    consumer.subscribe(persister.topics)
    loiter, tamper = uuid.uuid4(), uuid.uuid4()
    threshold = datetime.now(UTC) - timedelta(seconds=2)
    sealed = seal_evidence(settings, loiter)
    closing = lifecycle(loiter, threshold_at=threshold)
    messages: list[TopicMessage] = [
        *closing,
        incident(
            tamper,
            IncidentEvent.OPENED,
            camera_id="cam2",
            rule="tamper",
            threshold_at=threshold - timedelta(hours=1),
        ),
        sealed.message,
        status("cam1"),
    ]
    try:
        with TestClient(app) as client:
            authorize(client)
            produce(producer, settings, messages)
            producer.send(settings.kafka.incidents_topic, key=b"cam1", value=b'{"not": "an incident"}').get(
                30
            )
            assert drain(persister, len(messages) + 1) == len(messages) + 1

            page = client.get("/api/v1/incidents").json()
            assert page["total"] == 2
            assert [i["incident_id"] for i in page["items"]] == [str(loiter), str(tamper)]  # newest first
            assert (
                client.get("/api/v1/incidents", params={"rule": "tamper"}).json()["items"][0]["camera_id"]
                == "cam2"
            )
            assert (
                client.get("/api/v1/incidents", params={"status": "open", "camera_id": "cam2"}).json()[
                    "total"
                ]
                == 1
            )
            body = client.get(f"/api/v1/incidents/{loiter}").json()
            assert body["status"] == "closed" and body["dwell_s"] == 90 and body["ended_at"]
            assert 0 <= body["alert_latency_s"] < 60
            assert client.get(f"/api/v1/incidents/{loiter}/snapshot").content == closing[2].snapshot_jpeg
            assert [e["event"] for e in client.get(f"/api/v1/incidents/{loiter}/events").json()] == [
                "opened",
                "updated",
                "closed",
            ]
            [evidence] = client.get(f"/api/v1/incidents/{loiter}/evidence").json()
            assert (
                evidence["evidence_id"] == str(sealed.message.evidence_id) and len(evidence["artifacts"]) == 3
            )
            cam1 = client.get("/api/v1/cameras/cam1").json()
            assert cam1["health"]["state"] == "online" and cam1["health"]["stale"] is False

            [letter] = dead_letters(settings, expected=1)
            assert (
                letter.source_topic == settings.kafka.incidents_topic and "validation error" in letter.reason
            )
            assert letter.payload == b'{"not": "an incident"}'

            metrics = client.get("/metrics", headers=OPS).text
            assert 'cctv_api_alert_latency_seconds_count{rule="loitering"} 1.0' in metrics
            assert 'cctv_api_alert_latency_seconds_bucket{le="0.1",rule="loitering"}' in metrics
            assert 'cctv_api_incident_events_persisted_total{event="closed",rule="loitering"} 1.0' in metrics
            assert "cctv_api_evidence_sealed_persisted_total 1.0" in metrics
            assert "cctv_api_persister_dead_letters_total 1.0" in metrics

            # Offsets were committed after the transaction: a fresh member of the group gets nothing again.
            for tp in consumer.assignment():
                assert consumer.committed(tp) == consumer.position(tp)

            before, counts = snapshot_of_api(client, [loiter, tamper]), row_counts(client)
            produce(producer, settings, messages)  # at-least-once delivery: the very same messages again
            assert drain(persister, len(messages)) == len(messages)
            assert snapshot_of_api(client, [loiter, tamper]) == before
            assert (
                row_counts(client)
                == counts
                == {
                    "incidents": 2,
                    "incident_events": 4,
                    "evidence": 1,
                    "evidence_artifacts": 3,
                    "custody_entries": 2,  # sealed + created, once: redelivery adds none
                }
            )
            assert (
                'cctv_api_alert_latency_seconds_count{rule="loitering"} 1.0'
                in client.get("/metrics", headers=OPS).text
            )
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)


def test_database_outage_commits_no_offsets_and_the_batch_is_redelivered(
    settings: Settings, tmp_path: Path, unique: str
) -> None:
    settings = with_database(settings, f"sqlite:///{tmp_path / 'cctv.db'}", group_id=f"api-{unique}")
    ensure_topics(settings.kafka)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    producer = make_producer(settings.kafka, "api-test")
    dead = DeadLetterSink(producer, settings.kafka.dead_letter_topic, "api-test")
    incident_id = uuid.uuid4()
    messages = lifecycle(incident_id)
    produce(producer, settings, messages)
    # A database that refuses every connection (nothing listens on port 1).
    nowhere = make_sessions(sqlalchemy.create_engine("postgresql+psycopg://x@127.0.0.1:1/none"))
    stop = threading.Event()
    consumer = make_consumer(settings.kafka, "api-test", settings.api.group_id)
    try:
        down = Persister(nowhere, consumer, dead, settings.kafka, stop, context.metrics)
        consumer.subscribe(down.topics)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while len(records) < len(messages) and time.monotonic() < deadline:
            records.extend(r for batch in consumer.poll(timeout_ms=500).values() for r in batch)
        assert len(records) == len(messages)
        threading.Timer(1.5, stop.set).start()
        assert down.handle(records) is False  # retried with backoff until stopped, never committed
        partitions = {TopicPartition(settings.kafka.incidents_topic, r.partition) for r in records}
        assert all(consumer.committed(tp) is None for tp in partitions)
        assert context.metrics.persister_errors.labels(stage="database")._value.get() >= 2
    finally:
        consumer.close(autocommit=False)

    consumer = make_consumer(settings.kafka, "api-test", settings.api.group_id)
    try:
        with TestClient(app) as client:
            authorize(client)
            up = Persister(
                context.sessions, consumer, dead, settings.kafka, threading.Event(), context.metrics
            )
            consumer.subscribe(up.topics)
            assert drain(up, len(messages)) == len(messages)
            assert client.get(f"/api/v1/incidents/{incident_id}").json()["status"] == "closed"
    finally:
        consumer.close(autocommit=False)
        producer.close(timeout=5)


def test_readyz_reports_each_dependency(settings: Settings, tmp_path: Path) -> None:
    good = with_database(settings, f"sqlite:///{tmp_path / 'cctv.db'}")
    seal_evidence(good, uuid.uuid4())  # creates the evidence bucket
    with TestClient(create_app(good, camera_registry(), start_persister=False)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert all(check["ok"] for check in ready.json()["checks"].values())

    bad = with_database(settings, "postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
    with TestClient(create_app(bad, camera_registry(), start_persister=False)) as client:
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        response = client.get("/readyz")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["database"]["ok"] is False and "127.0.0.1" in checks["database"]["detail"]
        assert checks["object_store"]["ok"] is True and checks["broker"]["ok"] is True


def test_run_api_persists_in_the_background_and_stops(
    settings: Settings, tmp_path: Path, unique: str
) -> None:
    """`cctv api` as deployed: uvicorn + start_persister=True, a real HTTP port, stopped by the event."""
    port = free_port()
    base = with_database(settings, f"sqlite:///{tmp_path / 'cctv.db'}", group_id=f"api-{unique}")
    served = base.model_copy(update={"api": base.api.model_copy(update={"port": port})})
    ensure_topics(served.kafka)
    engine = make_engine(served.api.database_url)  # migrated and keyed first, as `cctv users key` would
    run_migrations(engine)
    seed_keys(make_sessions(engine))
    engine.dispose()
    stop = threading.Event()
    thread = threading.Thread(target=run_api, args=(served, camera_registry(), stop), daemon=True)
    thread.start()
    producer = make_producer(served.kafka, "api-test")
    incident_id = uuid.uuid4()
    try:
        produce(producer, served, [incident(incident_id, IncidentEvent.OPENED)])
        url = f"http://127.0.0.1:{port}/api/v1/incidents/{incident_id}"
        started, found = time.monotonic(), None
        while time.monotonic() - started < 45 and found is None:
            try:
                response = httpx.get(url, timeout=2, headers=LEGAL)
                if response.status_code == 200:
                    found = response.json()
            except httpx.TransportError:
                pass  # server still starting
            if found is None:
                time.sleep(0.25)
        assert found is not None and found["status"] == "open", "not persisted within 45 s"
        print(f"incident visible over HTTP {time.monotonic() - started:.1f} s after producing")
    finally:
        stop.set()
        thread.join(timeout=30)
        producer.close(timeout=5)
    assert not thread.is_alive(), "run_api did not stop after the stop event"
