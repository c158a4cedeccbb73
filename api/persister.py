"""The persister: incidents, evidence and camera-status topics in, database rows out.

Delivery rules:
- a poll's records are applied in ONE database transaction; Kafka offsets are
  committed only after that transaction commits, so a crash in between
  redelivers, and redelivery is idempotent (see :mod:`api.upserts`);
- a database failure commits nothing: the same decoded batch is retried with
  exponential backoff until it succeeds or the stop event is set;
- a record that does not decode as its topic's contract goes to the
  dead-letter topic with the reason (and is committed with its batch).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, make_sessions, run_migrations
from api.metrics import ApiMetrics
from api.upserts import Applied, apply_evidence, apply_incident, apply_status
from cctv.bus import DeadLetterSink, ensure_topics, make_consumer, make_producer, poll_records, worker_name
from cctv.config import KafkaSettings, Settings
from cctv.contracts import CameraStatus, ContractError, EvidenceSealed, IncidentMessage, decode
from cctv.runtime import Backoff, retry_until_stopped

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 0.5
MAX_BACKOFF_S = 10.0
LAG_EVERY_S = 10.0

PersistedMessage = IncidentMessage | EvidenceSealed | CameraStatus


@dataclass(frozen=True)
class Decoded:
    message: PersistedMessage
    partition: int | None = None
    offset: int | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Persister:
    """One consumer-group member that writes the API's topics to the database.

    Source (consumer), sink (sessions), dead letters, stop and clock are
    injected so tests drive :meth:`poll_once` or :meth:`persist` directly.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        consumer: KafkaConsumer | None,
        dead_letters: DeadLetterSink | None,
        topics: KafkaSettings,
        stop: threading.Event,
        metrics: ApiMetrics | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.sessions, self.consumer, self.dead_letters = sessions, consumer, dead_letters
        self.stop, self.metrics, self.clock = stop, metrics or ApiMetrics(), clock
        self.models: dict[str, type[PersistedMessage]] = {
            topics.incidents_topic: IncidentMessage,
            topics.evidence_topic: EvidenceSealed,
            topics.status_topic: CameraStatus,
        }
        self._last_lag = 0.0

    @property
    def topics(self) -> list[str]:
        return list(self.models)

    def run(self) -> None:
        while not self.stop.is_set():
            if self.poll_once() < 0:
                break
        log.info("persister stopped")

    def poll_once(self, timeout_s: float = POLL_TIMEOUT_S) -> int:
        """Poll, persist and commit one batch: the number of records handled, -1 if stopped mid-retry."""
        assert self.consumer is not None, "poll_once needs a consumer"
        records = list(poll_records(self.consumer, timeout_s))
        if records and not self.handle(records):
            return -1
        if time.monotonic() - self._last_lag >= LAG_EVERY_S:
            self._update_lag()
        return len(records)

    def handle(self, records: Sequence[ConsumerRecord]) -> bool:
        """Decode, persist (with retries), then commit. False if stopped before the batch was durable."""
        assert self.consumer is not None and self.dead_letters is not None
        batch: list[Decoded] = []
        for record in records:
            model = self.models.get(record.topic)
            try:
                if model is None:
                    raise ContractError(f"topic {record.topic!r} is not consumed by the API")
                message = decode(model, record.value, list(record.headers or []))
            except ContractError as exc:
                self.dead_letters.reject(record, f"invalid {record.topic} message: {exc}")
                self.metrics.dead_letters.inc()
                continue
            batch.append(Decoded(message, record.partition, record.offset))
        if self.persist_with_retry(batch) is None:
            return False
        try:
            self.consumer.commit()
            self.metrics.persister_committed.set(time.time())
        except Exception as exc:  # rebalance in progress: the batch is redelivered and upserted again
            self.metrics.persister_errors.labels(stage="commit").inc()
            log.warning("offset commit failed (batch will be redelivered, idempotently): %s", exc)
        return True

    def persist_with_retry(self, batch: Sequence[Decoded]) -> list[Applied] | None:
        """Persist until the database accepts the batch; None if ``stop`` was set first."""
        return retry_until_stopped(
            lambda: self.persist(batch),
            self.stop,
            f"persisting a batch of {len(batch)}",
            retry_on=(SQLAlchemyError,),
            backoff=Backoff(0.5, MAX_BACKOFF_S),
            on_error=lambda _: self.metrics.persister_errors.labels(stage="database").inc(),
        )

    def persist(self, batch: Sequence[Decoded | PersistedMessage]) -> list[Applied]:
        """Apply messages in one transaction; metrics count only what changed, after the commit."""
        now = self.clock()
        applied: list[Applied] = []
        with self.sessions.begin() as session:
            for item in batch:
                entry = item if isinstance(item, Decoded) else Decoded(item)
                msg = entry.message
                if isinstance(msg, IncidentMessage):
                    applied.append(apply_incident(session, msg, now, entry.partition, entry.offset))
                elif isinstance(msg, EvidenceSealed):
                    applied.append(apply_evidence(session, msg, now))
                else:
                    applied.append(apply_status(session, msg, now))
        self._count(applied)
        return applied

    def _count(self, applied: Sequence[Applied]) -> None:
        for result in applied:
            if not result.changed:
                continue
            if result.kind == "incident":
                self.metrics.incident_events.labels(rule=result.rule, event=result.event).inc()
                if result.alert_latency_s is not None:
                    self.metrics.alert_latency.labels(rule=result.rule).observe(
                        max(0.0, result.alert_latency_s)
                    )
            elif result.kind == "evidence":
                self.metrics.evidence_sealed.inc()
            else:
                self.metrics.camera_heartbeats.inc()

    def _update_lag(self) -> None:
        self._last_lag = time.monotonic()
        assert self.consumer is not None
        try:
            assigned: list[TopicPartition] = list(self.consumer.assignment())
            if not assigned:
                return
            ends = self.consumer.end_offsets(assigned)
            per_topic: dict[str, int] = {}
            for tp in assigned:
                lag = max(0, ends.get(tp, 0) - self.consumer.position(tp))
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + lag
            for topic, lag in per_topic.items():
                self.metrics.persister_lag.labels(topic=topic).set(lag)
        except Exception as exc:  # lag is diagnostic: never let it stop persisting
            log.debug("could not compute persister lag: %s", exc)


def run_persister(
    settings: Settings,
    stop: threading.Event,
    *,
    engine: Engine | None = None,
    metrics: ApiMetrics | None = None,
) -> None:
    """Persist the API's topics until ``stop`` is set; waits (with backoff) for the broker and database.

    ``create_app`` passes its engine and metrics; standalone it makes its own
    and brings the schema to head first.
    """
    own_engine = engine is None
    db = engine or make_engine(settings.api.database_url)

    def start_and_consume() -> None:
        if own_engine:
            run_migrations(db)
        _consume(settings, make_sessions(db), stop, metrics)

    def count(_: BaseException) -> None:
        if metrics is not None:
            metrics.persister_errors.labels(stage="startup").inc()

    try:
        # Broker or database not reachable yet: wait and start over.
        retry_until_stopped(
            start_and_consume, stop, "persister", backoff=Backoff(1.0, MAX_BACKOFF_S * 3), on_error=count
        )
    finally:
        if own_engine:
            db.dispose()


def _consume(
    settings: Settings, sessions: sessionmaker[Session], stop: threading.Event, metrics: ApiMetrics | None
) -> None:
    ensure_topics(settings.kafka)
    name = worker_name("api-persister")
    producer = make_producer(settings.kafka, name)
    try:
        consumer = make_consumer(settings.kafka, name, settings.api.group_id)
        try:
            dead = DeadLetterSink(producer, settings.kafka.dead_letter_topic, name)
            persister = Persister(sessions, consumer, dead, settings.kafka, stop, metrics)
            consumer.subscribe(persister.topics)
            persister.run()
        finally:
            consumer.close(autocommit=False)
    finally:
        producer.close(timeout=10)
