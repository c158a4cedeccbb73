"""The evidence worker: closed incidents in, sealed evidence out, nothing lost on the way.

Delivery rules:
- an incident record is committed only after its evidence is stored, verified
  and the ``EvidenceSealed`` event is acknowledged by the broker;
- any failure of the store or the broker (or anything else while sealing) is
  retried for the same incident with capped exponential backoff; the offset is
  not committed meanwhile, so a restarted worker redelivers it;
- sealing is idempotent per incident (deterministic evidence id and object
  keys; an existing manifest short-circuits), so a redelivery yields the same
  ``EvidenceSealed`` and no second object version;
- a record that is not a valid incident message, or a closed incident whose
  frames partition does not exist, goes to the dead-letter topic whole, with the
  reason, and is committed: kept, not lost, and it does not block the queue.
OPENED and UPDATED events need no evidence (the CLOSED event carries the whole
window) and are only logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError
from minio import Minio

from cctv.bus import (
    DeadLetterSink,
    ensure_topics,
    make_consumer,
    make_producer,
    poll_records,
    send,
    worker_name,
)
from cctv.config import CameraRegistry, Settings
from cctv.contracts import ContractError, EvidenceSealed, IncidentEvent, IncidentMessage, decode
from cctv.objectstore import make_client
from cctv.runtime import Backoff, retry_until_stopped
from evidence_store.package import CameraInfo, build_package
from evidence_store.signing import ManifestSigner, load_signer
from evidence_store.store import EvidenceStore, retain_until_for
from evidence_store.timestamp import TimestampError, request_token
from evidence_store.window import WindowReader

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL_TIMEOUT_S = 0.5
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0


class UnsealableIncident(ValueError):
    """A valid message that can never be sealed (its frames partition does not exist)."""


class EvidenceSealer:
    """Seals one incident: read window -> build package -> sign -> store. Directly drivable in tests."""

    def __init__(
        self,
        settings: Settings,
        registry: CameraRegistry,
        minio_client: Minio,
        window_reader: WindowReader,
        signer: ManifestSigner,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings, self.reader, self.signer, self.clock = settings, window_reader, signer, clock
        self.cameras = registry.by_id()
        self.store = EvidenceStore(minio_client, settings.s3)
        self.last_timings: dict[str, float] = {}

    def camera_info(self, camera_id: str) -> CameraInfo:
        camera = self.cameras.get(camera_id)
        if camera is None:  # still sealed: an unknown camera's incident is evidence all the same
            return CameraInfo(camera_id, camera_id, "", in_registry=False)
        return CameraInfo(camera_id, camera.name, camera.location, in_registry=True)

    def timestamp(self, manifest_sha256: str) -> bytes | None:
        """An RFC 3161 token over the manifest from the configured TSA, or None.

        Why a TSA failure does not stop sealing: the token is optional evidence of
        *when*; holding back the evidence itself (and the partition behind it)
        while a third-party service is down would risk losing far more. The gap
        is logged as an error and visible: the item has no timestamp artifact.
        """
        url = self.settings.evidence.tsa_url
        if url is None:
            return None
        try:
            return request_token(url, manifest_sha256, self.settings.evidence.tsa_timeout_s)
        except TimestampError as exc:
            log.error("manifest %s sealed WITHOUT a trusted timestamp: %s", manifest_sha256, exc)
            return None

    def check_sealable(self, incident: IncidentMessage) -> None:
        partitions = self.reader.consumer.partitions_for_topic(self.reader.topic)
        if partitions is not None and incident.frames.partition not in partitions:
            raise UnsealableIncident(
                f"frames partition {incident.frames.partition} does not exist in {self.reader.topic} "
                f"(partitions {sorted(partitions)})"
            )

    def seal(self, incident: IncidentMessage, stop: threading.Event | None = None) -> EvidenceSealed:
        started = time.perf_counter()
        self.store.ensure_bucket()
        existing = self.store.find_sealed(incident)
        if existing is not None:
            self.last_timings = {"lookup_s": time.perf_counter() - started}
            return existing
        self.check_sealable(incident)
        looked_up = time.perf_counter()
        window = self.reader.read(incident, stop)
        read = time.perf_counter()
        sealed_at = self.clock()
        package = build_package(
            incident,
            window,
            self.camera_info(incident.camera_id),
            sealed_at=sealed_at,
            retain_until=retain_until_for(sealed_at, self.settings.s3.retention_days),
            signing_key_id=self.signer.key_id,
        )
        built = time.perf_counter()
        signature = self.signer.sign(package.manifest)
        token = self.timestamp(package.manifest_sha256)
        signed = time.perf_counter()
        sealed = self.store.write(incident, package, signature, token)
        stored = time.perf_counter()
        self.last_timings = {
            "lookup_s": looked_up - started,
            "read_window_s": read - looked_up,
            "build_s": built - read,
            "sign_s": signed - built,  # includes the TSA round trip when one is configured
            "store_s": stored - signed,
            "total_s": stored - started,
        }
        log.info(
            "incident %s sealed: %d frames, %d gaps, %d integrity problems, window %s; %.2fs",
            incident.incident_id,
            len(window.frames),
            len(window.gaps),
            len(window.integrity_problems),
            "complete" if window.complete else "INCOMPLETE",
            stored - started,
        )
        return sealed


class EvidenceWorker:
    """The Kafka loop around an :class:`EvidenceSealer`; consumer, producer and stop are injected."""

    def __init__(
        self,
        sealer: EvidenceSealer,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        evidence_topic: str,
        dead_letters: DeadLetterSink,
        stop: threading.Event,
    ) -> None:
        self.sealer, self.consumer, self.producer = sealer, consumer, producer
        self.evidence_topic, self.dead_letters, self.stop = evidence_topic, dead_letters, stop

    def run(self) -> None:
        while not self.stop.is_set():
            records = list(poll_records(self.consumer, POLL_TIMEOUT_S))
            if records and not self.handle(records):
                break  # stopped mid-retry: leave the offsets uncommitted for redelivery
        log.info("evidence worker stopped")

    def handle(self, records: list[ConsumerRecord]) -> bool:
        """Seal every closed incident of the poll, then commit. False if stopped before all were through."""
        for record in records:
            try:
                incident = decode(IncidentMessage, record.value, list(record.headers or []))
            except ContractError as exc:
                if not self._reject(record, f"invalid incident message: {exc}"):
                    return False
                continue
            if incident.event is not IncidentEvent.CLOSED:
                log.debug("incident %s %s: sealed when it closes", incident.incident_id, incident.event)
                continue
            outcome = self._retrying(
                f"sealing incident {incident.incident_id}", partial(self._seal, incident)
            )
            if outcome is None:
                return False
            if isinstance(outcome, UnsealableIncident) and not self._reject(
                record, f"incident cannot be sealed: {outcome}"
            ):
                return False
        return self._retrying("committing incident offsets", self._commit) is not None

    def _reject(self, record: ConsumerRecord, reason: str) -> bool:
        def reject() -> bool:
            self.dead_letters.reject(record, reason)
            return True

        return self._retrying("dead-lettering", reject) is not None

    def _commit(self) -> bool:
        try:
            self.consumer.commit()
        except CommitFailedError as exc:  # the group rebalanced meanwhile: redelivery finds them sealed
            log.warning("commit refused after a rebalance; the incidents will be redelivered: %s", exc)
        return True

    def _seal(self, incident: IncidentMessage) -> EvidenceSealed | UnsealableIncident:
        try:
            sealed = self.sealer.seal(incident, self.stop)
        except UnsealableIncident as exc:
            return exc
        future = send(self.producer, self.evidence_topic, sealed.camera_id, sealed)
        self.producer.flush(timeout=30)
        future.get(timeout=1)
        return sealed

    def _retrying(self, what: str, action: Callable[[], T]) -> T | None:
        """``action()`` until it succeeds; None once stop is set: never skip an incident."""
        return retry_until_stopped(action, self.stop, what, backoff=Backoff(FIRST_BACKOFF_S, MAX_BACKOFF_S))


def run_evidence(settings: Settings, registry: CameraRegistry, stop: threading.Event) -> None:
    """`cctv evidence`: one evidence worker until ``stop`` is set."""
    ensure_topics(settings.kafka)
    signer = load_signer(settings)
    name = worker_name("evidence")
    producer = make_producer(settings.kafka, name)
    consumer = make_consumer(settings.kafka, name, settings.evidence.group_id, max_poll_records=10)
    frames = make_consumer(settings.kafka, f"{name}-window", None)
    try:
        reader = WindowReader(frames, settings.kafka.frames_topic, settings.evidence)
        sealer = EvidenceSealer(settings, registry, make_client(settings.s3), reader, signer)
        dead = DeadLetterSink(producer, settings.kafka.dead_letter_topic, name)
        consumer.subscribe([settings.kafka.incidents_topic])
        EvidenceWorker(sealer, consumer, producer, settings.kafka.evidence_topic, dead, stop).run()
    finally:
        consumer.close(autocommit=False)
        frames.close()
        producer.close(timeout=10)
