"""What operations see: each component's health, consumer-group lag, workers, cameras and metric panels.

The dependency probes are the ones ``/readyz`` runs (:func:`readiness_checks`).
Broker reads are bounded by :data:`BROKER_TIMEOUT_MS` and skipped when the
broker probe already failed, so the page answers within seconds when the broker
is down, saying so instead of failing.

Lag is read without ever joining a group or committing: an ops read must not
trigger a rebalance of the workers. Committed offsets come from the admin API
(OffsetFetch); end offsets from a group-less consumer (see
:func:`cctv.bus.fetched_end_offsets` for why not only ListOffsets).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy import ColumnElement, select, text
from sqlalchemy.orm import Session

from api.access import Principal
from api.deps import AppContext
from api.models import CameraRow, CameraStatusRow
from api.routers.cameras import STALE_AFTER_PERIODS
from api.schemas import CheckOut
from api.schemas_ops import (
    CamerasSummaryOut,
    ComponentOut,
    ConsumerGroupOut,
    HistogramOut,
    OpsHealthOut,
    OpsMetricsOut,
    PartitionLagOut,
    SampleOut,
    WorkerOut,
)
from cctv.bus import fetched_end_offsets
from cctv.config import KafkaSettings, Settings
from cctv.contracts import CameraState

log = logging.getLogger(__name__)

BROKER_TIMEOUT_MS = 3000
HIGHWATER_BUDGET_S = 2.0
MAX_LISTED_GROUPS = 50  # other groups the broker lists: examined at most this many per request
_MEMBER_SUFFIX = re.compile(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# --------------------------------------------------------------------------- component probes


def run_check(probe: Callable[[], str]) -> CheckOut:
    """Run one probe: its detail, or the failure as the detail; never raises."""
    started = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as exc:  # each dependency's failure is reported, not raised
        detail, ok = f"{type(exc).__name__}: {exc}"[:500], False
    return CheckOut(ok=ok, detail=detail, duration_ms=round((time.perf_counter() - started) * 1000, 1))


def _client_args(kafka: KafkaSettings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": kafka.bootstrap_servers.split(","),
        "security_protocol": kafka.security_protocol,
        "client_id": client_id,
        "request_timeout_ms": BROKER_TIMEOUT_MS + 1000,
        "bootstrap_timeout_ms": BROKER_TIMEOUT_MS,
    }


def readiness_checks(context: AppContext) -> dict[str, CheckOut]:
    """Database (and its schema), evidence bucket and broker: what /readyz and the ops page report."""

    def database() -> str:
        with context.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        if not context.schema_ready.is_set():
            raise RuntimeError("reachable, but migrations have not been applied yet")
        return f"{context.engine.dialect.name} ok"

    def object_store() -> str:
        bucket = context.settings.s3.evidence_bucket
        if not context.store.bucket_exists(bucket):
            raise RuntimeError(f"bucket {bucket!r} does not exist")
        return f"bucket {bucket} ok"

    def broker() -> str:
        consumer = KafkaConsumer(**_client_args(context.settings.kafka, "cctv-api-readyz"))
        try:
            topics = consumer.topics()
        finally:
            consumer.close()
        return f"{len(topics)} topics"

    return {
        "database": run_check(database),
        "object_store": run_check(object_store),
        "broker": run_check(broker),
    }


# --------------------------------------------------------------------------- consumer groups


@dataclass(frozen=True)
class GroupSpec:
    group: str
    role: str | None
    topics: tuple[str, ...]


def pipeline_groups(settings: Settings) -> list[GroupSpec]:
    """The pipeline's own consumer groups and the topics each consumes (see the workers' subscribe calls)."""
    k = settings.kafka
    return [
        GroupSpec(settings.detector.group_id, "detector", (k.frames_topic,)),
        GroupSpec(settings.evidence.group_id, "evidence", (k.incidents_topic,)),
        GroupSpec(
            settings.api.group_id, "api-persister", (k.incidents_topic, k.evidence_topic, k.status_topic)
        ),
    ]


def pipeline_topics(kafka: KafkaSettings) -> frozenset[str]:
    return frozenset(
        {
            kafka.frames_topic,
            kafka.incidents_topic,
            kafka.evidence_topic,
            kafka.status_topic,
            kafka.dead_letter_topic,
            kafka.camera_config_topic,
        }
    )


def _unread(spec: GroupSpec, topic: str, detail: str) -> ConsumerGroupOut:
    return ConsumerGroupOut(
        group=spec.group, role=spec.role, topic=topic, ok=False, detail=detail, lag=None, partitions=[]
    )


def unread_groups(specs: Iterable[GroupSpec], detail: str) -> list[ConsumerGroupOut]:
    """The groups' topics, each marked unread with ``detail`` (the broker could not be asked)."""
    return [_unread(s, t, detail) for s in specs for t in s.topics]


def _committed(admin: KafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    # One group per OffsetFetch: Tansu answers a multi-group request (v8+) with no offsets at all.
    offsets = admin.list_group_offsets({group: None}).get(group, {})
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset is not None and meta.offset >= 0}


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition] | None:
    found = consumer.partitions_for_topic(topic)
    return None if found is None else [TopicPartition(topic, p) for p in sorted(found)]


def _group_lags(
    consumer: KafkaConsumer, spec: GroupSpec, committed: dict[TopicPartition, int]
) -> list[ConsumerGroupOut]:
    out: list[ConsumerGroupOut] = []
    for topic in spec.topics:
        partitions = _partitions(consumer, topic)
        if not partitions:
            out.append(_unread(spec, topic, "topic does not exist"))
            continue
        begin = consumer.beginning_offsets(partitions, timeout_ms=BROKER_TIMEOUT_MS)
        start = {tp: committed.get(tp, begin.get(tp) or 0) for tp in partitions}
        ends, unconfirmed = fetched_end_offsets(consumer, start, HIGHWATER_BUDGET_S, BROKER_TIMEOUT_MS)
        detail = f"partitions {unconfirmed}: end offset as listed, may be behind" if unconfirmed else None
        rows = [
            PartitionLagOut(
                partition=tp.partition,
                committed=committed.get(tp),
                end=ends[tp],
                lag=max(0, ends[tp] - start[tp]),
            )
            for tp in partitions
        ]
        out.append(
            ConsumerGroupOut(
                group=spec.group,
                role=spec.role,
                topic=topic,
                ok=True,
                detail=detail,
                lag=sum(r.lag for r in rows),
                partitions=rows,
            )
        )
    return out


def _listed_groups(admin: KafkaAdminClient, known: set[str], topics: frozenset[str]) -> list[GroupSpec]:
    """Other groups the broker lists that have offsets on pipeline topics (best effort)."""
    listed = sorted({g["group_id"] for g in admin.list_groups()} - known)[:MAX_LISTED_GROUPS]
    found = []
    for group in listed:
        mine = sorted({tp.topic for tp in _committed(admin, group)} & topics)
        if mine:
            found.append(GroupSpec(group, None, tuple(mine)))
    return found


def _members(kafka: KafkaSettings, groups: list[str]) -> list[WorkerOut]:
    """Live members of ``groups``, as consumer workers; none when the broker cannot say.

    DescribeGroups v3+ adds authorized_operations, which Tansu fills with bits
    kafka-python cannot map (ValueError); v2, which every Kafka since 2.0
    answers, carries the members without them, hence the pinned api_version.
    """
    admin = KafkaAdminClient(**_client_args(kafka, "cctv-api-ops-members"), api_version=(2, 2))
    try:
        described = admin.describe_groups(groups)
    finally:
        admin.close()
    workers = []
    for group, info in sorted(described.items()):
        for member in info.get("members") or []:
            name = member.get("client_id") or _MEMBER_SUFFIX.sub("", member.get("member_id") or "?")
            host = member.get("client_host") or ""
            workers.append(
                WorkerOut(
                    name=f"{name} ({host.strip('/')})" if host else name,
                    kind="consumer",
                    group=group,
                    cameras=[],
                    last_heartbeat_at=None,
                    stale=None,
                )
            )
    return workers


def consumer_groups(
    kafka: KafkaSettings, specs: list[GroupSpec]
) -> tuple[list[ConsumerGroupOut], list[WorkerOut]]:
    """Lag of each group on each of its topics, and the groups' live members (never joins a group)."""
    admin = KafkaAdminClient(**_client_args(kafka, "cctv-api-ops"))
    consumer = KafkaConsumer(
        **_client_args(kafka, "cctv-api-ops"),
        group_id=None,  # no group: nothing to join, nothing committed
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,  # not 0: Tansu then answers no fetch at all
        max_partition_fetch_bytes=1,  # the broker still returns one whole batch: the minimum there is
        fetch_max_bytes=1,
    )
    try:
        try:
            specs = specs + _listed_groups(admin, {s.group for s in specs}, pipeline_topics(kafka))
        except Exception as exc:  # listing is a bonus: the pipeline's groups are known anyway
            log.info("could not list consumer groups: %s", exc)
        groups: list[ConsumerGroupOut] = []
        for spec in specs:
            try:
                groups += _group_lags(consumer, spec, _committed(admin, spec.group))
            except Exception as exc:
                groups += unread_groups([spec], f"{type(exc).__name__}: {exc}"[:500])
    finally:
        consumer.close(autocommit=False)
        admin.close()
    try:
        members = _members(kafka, sorted({s.group for s in specs}))
    except Exception as exc:
        log.info("could not describe consumer groups: %s", exc)
        members = []
    return groups, members


# --------------------------------------------------------------------------- cameras and ingest workers


def camera_health(
    session: Session, settings: Settings, now: datetime, visible: ColumnElement[bool]
) -> tuple[CamerasSummaryOut, list[WorkerOut]]:
    """Online/offline/stale counts of the registry's cameras; the ingest workers behind their heartbeats."""
    stale_after = timedelta(seconds=STALE_AFTER_PERIODS * settings.api.camera_heartbeat_s)
    rows = session.execute(
        select(CameraRow.id, CameraStatusRow)
        .outerjoin(CameraStatusRow, CameraStatusRow.camera_id == CameraRow.id)
        .where(CameraRow.in_registry.is_(True), visible)
        .order_by(CameraRow.id)
    ).all()
    counts = {"online": 0, "offline": 0, "stale": 0}
    workers: dict[str, list[tuple[str, datetime]]] = {}
    for camera_id, status in rows:
        if status is None:
            counts["offline"] += 1
            continue
        if now - status.at > stale_after:
            counts["stale"] += 1
        else:
            counts["online" if status.state == CameraState.ONLINE else "offline"] += 1
        workers.setdefault(status.worker, []).append((camera_id, status.at))
    summary = CamerasSummaryOut(**counts, total=len(rows))
    return summary, [
        WorkerOut(
            name=name,
            kind="ingest",
            group=None,
            cameras=[c for c, _ in cams],
            last_heartbeat_at=max(at for _, at in cams),
            stale=now - max(at for _, at in cams) > stale_after,
        )
        for name, cams in sorted(workers.items())
    ]


def ops_health(context: AppContext, session: Session, now: datetime, caller: Principal) -> OpsHealthOut:
    """The ops page: components, consumer groups, workers and cameras (those ``caller`` may see)."""
    checks = readiness_checks(context)
    components = [ComponentOut(name=name, **check.model_dump()) for name, check in checks.items()]
    specs = pipeline_groups(context.settings)
    if checks["broker"].ok:
        groups, members = consumer_groups(context.settings.kafka, specs)
    else:
        groups, members = unread_groups(specs, "broker unreachable: " + checks["broker"].detail), []
    summary = CamerasSummaryOut(online=0, offline=0, stale=0, total=0)
    ingest: list[WorkerOut] = []
    if checks["database"].ok:
        summary, ingest = camera_health(session, context.settings, now, caller.camera_clause(CameraRow.id))
    return OpsHealthOut(
        at=now,
        ok=all(c.ok for c in components) and all(g.ok for g in groups),
        components=components,
        consumer_groups=groups,
        workers=ingest + members,
        cameras=summary,
    )


# --------------------------------------------------------------------------- metric panels


def _quantile(q: float, buckets: list[tuple[float, float]], count: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket holding rank q*count.

    ``buckets`` are (upper bound, cumulative count) sorted by bound, +Inf last;
    a rank in the +Inf bucket answers the highest finite bound.
    """
    if count <= 0:
        return None
    rank, lower, below = q * count, 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if upper == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, cumulative
    return lower


def metric_panels(registry: CollectorRegistry, now: datetime) -> OpsMetricsOut:
    """The registry /metrics renders, as numbers: counters and gauges per label set, histogram summaries."""
    counters: list[SampleOut] = []
    gauges: list[SampleOut] = []
    histograms: list[HistogramOut] = []
    for family in registry.collect():
        if family.type == "counter":
            counters += [
                SampleOut(name=s.name, labels=dict(s.labels), value=s.value)
                for s in family.samples
                if s.name.endswith("_total")
            ]
        elif family.type == "gauge":
            gauges += [SampleOut(name=s.name, labels=dict(s.labels), value=s.value) for s in family.samples]
        elif family.type == "histogram":
            series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
            for s in family.samples:
                labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                entry = series.setdefault(labels, {"buckets": [], "count": 0.0, "sum": 0.0})
                if s.name.endswith("_bucket"):
                    entry["buckets"].append((float(s.labels["le"]), s.value))
                elif s.name.endswith("_count"):
                    entry["count"] = s.value
                elif s.name.endswith("_sum"):
                    entry["sum"] = s.value
            for labels, entry in sorted(series.items()):
                buckets = sorted(entry["buckets"])
                histograms.append(
                    HistogramOut(
                        name=family.name,
                        labels=dict(labels),
                        count=entry["count"],
                        sum=entry["sum"],
                        p50=_quantile(0.5, buckets, entry["count"]),
                        p95=_quantile(0.95, buckets, entry["count"]),
                    )
                )
    return OpsMetricsOut(at=now, counters=counters, gauges=gauges, histograms=histograms)
