"""The operations view on the real broker, store and a SQLite database: lag, workers, cameras, panels.

Lag is proven with real commits of a real group member; the broker-down case
points the app at a closed port; the panels are compared with the /metrics text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from cctv.bus import ensure_topics
from cctv.config import Settings
from cctv.objectstore import ensure_evidence_bucket, make_client
from tests.api_support import (
    ADMIN,
    LEGAL,
    OPERATOR,
    OPS,
    ApiUnderTest,
    api_under_test,
    free_port,
    isolated_database,
    lifecycle,
    status,
)

pytestmark = pytest.mark.service

HEALTH, METRICS = "/api/v1/ops/health", "/api/v1/ops/metrics"
PRODUCED = 7  # incidents-topic messages: 3 on partition 0, 2 on 1, 2 on 2
CONSUMED = 4  # of which the test group member commits this many


def private_groups(settings: Settings, unique: str) -> Settings:
    """Consumer groups of this test only (the session's broker is shared by every test)."""
    return settings.model_copy(
        update={
            "detector": settings.detector.model_copy(update={"group_id": f"det-{unique}"}),
            "evidence": settings.evidence.model_copy(update={"group_id": f"evi-{unique}"}),
            "api": settings.api.model_copy(update={"group_id": f"api-{unique}"}),
        }
    )


@pytest.fixture
def api(
    settings: Settings, unique: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[ApiUnderTest]:
    settings = private_groups(settings, unique)
    ensure_topics(settings.kafka)
    ensure_evidence_bucket(make_client(settings.s3), settings.s3)
    with isolated_database("sqlite", tmp_path, request) as url, api_under_test(settings, url) as under_test:
        yield under_test


def consume_and_commit(settings: Settings, count: int) -> KafkaConsumer:
    """A real member of the evidence group that has consumed and committed exactly ``count`` records."""
    consumer = KafkaConsumer(
        settings.kafka.incidents_topic,
        bootstrap_servers=settings.kafka.bootstrap_servers.split(","),
        group_id=settings.evidence.group_id,
        client_id="ops-test-member",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka.session_timeout_ms,
    )
    consumed, deadline = 0, time.monotonic() + 45
    while consumed < count and time.monotonic() < deadline:
        consumed += sum(len(r) for r in consumer.poll(timeout_ms=500, max_records=1).values())
    assert consumed == count, f"consumed {consumed} of {count} within 45 s"
    consumer.commit()  # the positions of the records returned: exactly `count` of them
    return consumer


def test_lag_per_group_workers_and_cameras(api: ApiUnderTest) -> None:
    settings = api.settings
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers.split(","))
    try:
        for i in range(PRODUCED):
            producer.send(settings.kafka.incidents_topic, b"{}", partition=i % 3).get(timeout=30)
    finally:
        producer.close(timeout=5)
    now = datetime.now(UTC)
    api.persister.persist([status("cam1", at=now), status("cam2", at=now - timedelta(hours=1))])
    member = consume_and_commit(settings, CONSUMED)
    try:
        response = api.client.get(HEALTH, headers=OPS)
    finally:
        member.close(autocommit=False)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {c["name"]: c["ok"] for c in body["components"]} == {
        "database": True,
        "object_store": True,
        "broker": True,
    }
    assert body["ok"] is True
    groups = {(g["group"], g["topic"]): g for g in body["consumer_groups"]}
    kafka = settings.kafka

    evidence = groups[(settings.evidence.group_id, kafka.incidents_topic)]
    assert evidence["role"] == "evidence" and evidence["ok"] is True
    assert evidence["lag"] == PRODUCED - CONSUMED
    assert sum(p["end"] for p in evidence["partitions"]) == PRODUCED, evidence
    assert sum(p["committed"] or 0 for p in evidence["partitions"]) == CONSUMED
    for p in evidence["partitions"]:
        assert p["lag"] == p["end"] - (p["committed"] or 0)

    # The persister's group never committed on this topic: everything in it is still to do.
    persister = groups[(settings.api.group_id, kafka.incidents_topic)]
    assert persister["role"] == "api-persister" and persister["lag"] == PRODUCED
    assert all(p["committed"] is None for p in persister["partitions"])
    assert groups[(settings.api.group_id, kafka.status_topic)]["lag"] == 0  # persisted directly, not produced
    detector = groups[(settings.detector.group_id, kafka.frames_topic)]
    assert detector["role"] == "detector" and detector["lag"] == 0
    assert len(detector["partitions"]) == kafka.frames_partitions

    assert body["cameras"] == {"online": 1, "offline": 0, "stale": 1, "total": 2}
    ingest = [w for w in body["workers"] if w["kind"] == "ingest"]
    assert [(w["name"], w["cameras"], w["stale"]) for w in ingest] == [
        ("ingest@test", ["cam1", "cam2"], False)
    ]
    assert datetime.fromisoformat(ingest[0]["last_heartbeat_at"]) == now
    members = [w for w in body["workers"] if w["kind"] == "consumer"]
    assert [(w["name"], w["group"]) for w in members] == [("ops-test-member", settings.evidence.group_id)]


def test_broker_down_is_reported_not_raised(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    closed = free_port()  # nothing listens on it
    down = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{closed}"})}
    )
    ensure_evidence_bucket(make_client(down.s3), down.s3)
    with isolated_database("sqlite", tmp_path, request) as url, api_under_test(down, url) as api:
        started = time.monotonic()
        response = api.client.get(HEALTH, headers=ADMIN)
        took = time.monotonic() - started
    assert response.status_code == 200, response.text
    body = response.json()
    components = {c["name"]: c for c in body["components"]}
    assert components["broker"]["ok"] is False and "bootstrap" in components["broker"]["detail"].lower()
    assert components["database"]["ok"] is True and components["object_store"]["ok"] is True
    assert body["ok"] is False
    # Every group is reported unread with the reason, and no lag read was attempted after the probe failed.
    assert {g["role"] for g in body["consumer_groups"]} == {"detector", "evidence", "api-persister"}
    for group in body["consumer_groups"]:
        assert group["ok"] is False and group["lag"] is None
        assert group["detail"].startswith("broker unreachable")
    # A bound far above the probe's 3 s timeout and far below kafka-python's default waits (30-60 s):
    # what it proves is that the page does not hang on a dead broker.
    assert took < 20, f"ops health took {took:.1f} s with the broker down"


def test_only_ops_and_admin(api: ApiUnderTest) -> None:
    client = api.client
    for path in (HEALTH, METRICS):
        client.headers.pop("Authorization", None)
        assert client.get(path).status_code == 401
        for who in (OPERATOR, LEGAL):
            response = client.get(path, headers=who)
            assert response.status_code == 403, (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        for who in (OPS, ADMIN):
            assert client.get(path, headers=who).status_code == 200, path


def test_panels_are_the_numbers_metrics_shows(api: ApiUnderTest) -> None:
    for _ in range(2):
        api.persister.persist([*lifecycle(uuid.uuid4()), status("cam1")])
    latency = api.context.metrics.alert_latency.labels(rule="tamper")
    for seconds in (0.05, 0.05, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 3, 3):
        latency.observe(seconds)

    panels = api.client.get(METRICS, headers=OPS).json()
    text = api.client.get("/metrics", headers=OPS).text
    shown = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    counters = {(c["name"], tuple(sorted(c["labels"].items()))): c["value"] for c in panels["counters"]}
    opened = ("cctv_api_incident_events_persisted_total", (("event", "opened"), ("rule", "loitering")))
    assert counters[opened] == 2 == shown[opened]
    assert counters[("cctv_api_camera_heartbeats_persisted_total", ())] == 2
    for key, value in counters.items():
        assert shown[key] == value, key
    for gauge in panels["gauges"]:
        assert shown[(gauge["name"], tuple(sorted(gauge["labels"].items())))] == gauge["value"]

    histograms = {(h["name"], h["labels"].get("rule")): h for h in panels["histograms"]}
    for (name, rule), h in histograms.items():
        labels = (("rule", rule),) if rule else ()
        assert h["count"] == shown[(f"{name}_count", labels)] and h["sum"] == shown[(f"{name}_sum", labels)]
    # Buckets (0.1, 0.25, 0.5, 1, 2, 5, ...] hold 2, 3, 3, 0, 0, 2: the median is the 0.25 bucket's top,
    # the 95th percentile three quarters into (2, 5] (rank 9.5 of 10, 8 below it, 2 inside).
    tamper = histograms[("cctv_api_alert_latency_seconds", "tamper")]
    assert tamper["count"] == 10 and tamper["sum"] == pytest.approx(7.9)
    assert tamper["p50"] == pytest.approx(0.25) and tamper["p95"] == pytest.approx(4.25)
    # Persisted incidents of 2025 arrive long past the largest finite bucket: the estimate says so.
    assert histograms[("cctv_api_alert_latency_seconds", "loitering")]["p50"] == 900
