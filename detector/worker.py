"""The detector service: frames topic in, incidents topic out, as one consumer-group member.

Delivery rules:
- an offset is committed only after every incident of the polled batch is
  acknowledged by the broker (``flush`` + each send's future checked); if the
  broker fails, the same incidents are re-sent with backoff (ids are
  deterministic, so a duplicate is an idempotent update downstream) and nothing
  is committed until they are through;
- a record that is not a valid frame, cannot be decoded, or belongs to a camera
  that is not in the registry goes to the dead-letter topic with the reason and
  is committed with the batch: it is kept, not lost, and does not block the camera;
- on rebalance and on stop, open incidents of the cameras this worker gives up
  are CLOSED ("detector stopped"): the evidence store seals an incident on its
  CLOSED event, and the next owner of the partition rebuilds its state from
  scratch, so an incident left open here would never be sealed. If the person is
  still there, the new owner opens a new incident after a full dwell time;
- a camera none of whose frames has arrived for ``camera_silence_s`` (the
  worker's monotonic clock, checked on every pass of the poll loop, also when
  polls return nothing) has its open incidents CLOSED ("camera silent for Ns")
  and its state dropped: a stream that ended or a camera that died would
  otherwise leave its incident open forever, never sealed. They are delivered
  like any other incident before anything further is committed;
- camera settings edited in the API (zones, rules) are applied between polls,
  without a restart (:mod:`detector.camera_settings`); the incidents of rules
  they restart are CLOSED and delivered the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from cctv.bus import (
    DeadLetterSink,
    ensure_topics,
    make_consumer,
    make_producer,
    poll_records,
    send_all,
    worker_name,
)
from cctv.config import CameraRegistry, Settings
from cctv.contracts import ContractError, FrameMessage, IncidentMessage, decode
from cctv.runtime import Backoff, retry_until_stopped
from detector.backends import make_backend, make_classifier
from detector.camera_settings import CameraSettingsFeed
from detector.pipeline import DetectorPipeline, FrameInput

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 0.5
STATS_EVERY_S = 30.0
MAX_BACKOFF_S = 10.0


class IncidentSink:
    """Produces incident messages and returns only when the broker has acknowledged all of them."""

    def __init__(self, producer: KafkaProducer, topic: str, stop: threading.Event) -> None:
        self.producer, self.topic, self.stop = producer, topic, stop

    def deliver(self, incidents: Sequence[IncidentMessage]) -> bool:
        """True once every incident is acknowledged; False if asked to stop before that."""

        # Broker down or timing out: retry, never commit past undelivered incidents.
        delivered = retry_until_stopped(
            lambda: send_all(self.producer, self.topic, incidents),
            self.stop,
            f"delivering {len(incidents)} incidents",
            backoff=Backoff(0.5, MAX_BACKOFF_S),
        )
        return delivered is not None


class _Rebalance(ConsumerRebalanceListener):
    """Before partitions move away, close their cameras' incidents and commit what was processed."""

    def __init__(self, worker: DetectorWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        partitions = {tp.partition for tp in revoked}
        cameras = [cam for cam, p in self.worker.pipeline.camera_partitions().items() if p in partitions]
        if cameras:
            log.info("partitions %s revoked: closing state of cameras %s", sorted(partitions), cameras)
            closing = self.worker.pipeline.close_cameras(
                cameras, "detector handed the camera over (rebalance)"
            )
            self.worker.sink.deliver(closing)

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))


class DetectorWorker:
    """The Kafka loop around a :class:`DetectorPipeline`; source, sinks and stop are injected."""

    def __init__(
        self,
        pipeline: DetectorPipeline,
        consumer: KafkaConsumer,
        sink: IncidentSink,
        dead_letters: DeadLetterSink,
        stop: threading.Event,
        camera_silence_s: float,
        settings_feed: CameraSettingsFeed | None = None,
    ) -> None:
        self.pipeline, self.consumer, self.sink = pipeline, consumer, sink
        self.dead_letters, self.stop = dead_letters, stop
        self.camera_silence_s = camera_silence_s
        self.settings_feed = settings_feed

    def run(self) -> None:
        last_stats = time.monotonic()
        while not self.stop.is_set():
            if not self.apply_camera_settings():
                break
            records = list(poll_records(self.consumer, POLL_TIMEOUT_S))
            if records and not self.handle(records):
                break  # stopping while the broker refused incidents: leave offsets uncommitted
            if not self.close_silent_cameras():
                break
            if time.monotonic() - last_stats >= STATS_EVERY_S:
                log.info("detector stats: %s", self.pipeline.stats.line())
                last_stats = time.monotonic()
        else:
            closing = self.pipeline.close_all("detector stopped")
            if self.sink.deliver(closing):
                self.consumer.commit()
        log.info("detector stopped: %s", self.pipeline.stats.line())

    def apply_camera_settings(self) -> bool:
        """Apply camera settings published since the last pass; False if stopped before delivery."""
        closing = self.settings_feed.poll(self.pipeline) if self.settings_feed is not None else []
        return not closing or self.sink.deliver(closing)

    def close_silent_cameras(self) -> bool:
        """Close and deliver the incidents of cameras gone silent; False if stopped before delivery."""
        closing = self.pipeline.close_silent(self.camera_silence_s, self.lagging_partitions())
        return not closing or self.sink.deliver(closing)

    def lagging_partitions(self) -> set[int]:
        """Assigned partitions with records not yet consumed (or not yet known): their cameras may only
        seem silent because the worker has not reached their frames."""
        lagging = set()
        for tp in self.consumer.assignment():
            high, position = self.consumer.highwater(tp), self.consumer.position(tp, timeout_ms=100)
            if high is None or position is None or position < high:
                lagging.add(tp.partition)
        return lagging

    def handle(self, records: list[ConsumerRecord]) -> bool:
        """Process one poll's records; commit once their incidents are durable. False if interrupted."""
        inputs: list[FrameInput] = []
        sources: list[ConsumerRecord] = []
        for record in records:
            try:
                frame = decode(FrameMessage, record.value, list(record.headers or []))
            except ContractError as exc:
                self.dead_letters.reject(record, f"invalid frame message: {exc}")
                continue
            inputs.append(FrameInput(frame, record.partition, record.offset))
            sources.append(record)
        output = self.pipeline.process(inputs)
        for rejected in output.rejected:
            self.dead_letters.reject(sources[rejected.index], rejected.reason)
        if not self.sink.deliver(output.incidents):
            return False
        self.consumer.commit()
        return True


def run_detector(settings: Settings, registry: CameraRegistry, stop: threading.Event) -> None:
    """`cctv detect`: one detector worker until ``stop`` is set."""
    ensure_topics(settings.kafka)
    backend = make_backend(settings.detector)
    log.info("detector backend %s", backend.info.model_dump_json())
    # A configured classifier is loaded even if no camera of the file has a rule yet: one may be added
    # in the API.
    classifier = make_classifier(settings.detector) if settings.detector.classifier is not None else None
    pipeline = DetectorPipeline(
        registry, backend, settings.detector, settings.evidence.pre_roll_s, classifier=classifier
    )
    name = worker_name("detector")
    feed = CameraSettingsFeed.open(settings.kafka, name, registry)
    producer = make_producer(settings.kafka, name)
    consumer = make_consumer(
        settings.kafka, name, settings.detector.group_id, max_poll_records=4 * settings.detector.batch_size
    )
    try:
        feed.catch_up(pipeline)  # before the first frame: a restarted detector runs the newest settings
        sink = IncidentSink(producer, settings.kafka.incidents_topic, stop)
        dead = DeadLetterSink(producer, settings.kafka.dead_letter_topic, name)
        silence_s = settings.detector.camera_silence_s
        worker = DetectorWorker(pipeline, consumer, sink, dead, stop, silence_s, feed)
        consumer.subscribe([settings.kafka.frames_topic], listener=_Rebalance(worker))
        worker.run()
    finally:
        feed.close()
        consumer.close(autocommit=False)
        producer.close(timeout=10)
