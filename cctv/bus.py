"""Kafka plumbing shared by every worker: clients, topics and the dead-letter path.

Why a module of its own: the settings that make 60 KB frames fast and safe
(no compression, large batches, large fetches, the C CRC32C) must be the same
in every producer and consumer, and each was an hours-long lesson.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import TopicAlreadyExistsError
from kafka.record import util as record_util

from cctv.config import KafkaSettings
from cctv.contracts import DeadLetter, FrameMessage, Headers, IncidentMessage, TopicMessage, encode

log = logging.getLogger(__name__)


class BusError(RuntimeError):
    """The broker cannot be used as configured."""


def require_crc32c() -> None:
    """Refuse to run with kafka-python's pure-Python CRC32C (measured 60x slower)."""
    if record_util.crc32c_c is None:
        raise BusError(
            "the C 'crc32c' package is not importable, so kafka-python would compute CRCs in pure "
            "Python (~5 MB/s); install kafka-python[crc32c]"
        )


def _common(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": client_id,
        "security_protocol": settings.security_protocol,
    }


def make_producer(settings: KafkaSettings, client_id: str) -> KafkaProducer:
    """A producer tuned for frames; equally fine for the small JSON topics.

    acks=all and idempotence-free retries: a frame may be duplicated on a
    retry, never lost; consumers key everything on (camera, stream, seq).
    batch_size 1 MB: with the default 16 KB, 60 KB frames went one per request
    and producing was 6x slower (measured against Tansu).
    """
    require_crc32c()
    return KafkaProducer(
        **_common(settings, client_id),
        acks="all",
        retries=10,
        compression_type=None,  # JPEG does not compress
        max_request_size=settings.max_message_bytes,
        batch_size=1_000_000,
        linger_ms=10,
        max_block_ms=30_000,
    )


def make_consumer(
    settings: KafkaSettings,
    client_id: str,
    group_id: str | None,
    topics: Iterable[str] = (),
    *,
    from_beginning: bool = True,
    max_poll_records: int = 100,
) -> KafkaConsumer:
    """A consumer with manual commits: workers commit only after their output is durable."""
    require_crc32c()
    consumer = KafkaConsumer(
        **_common(settings, client_id),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=max(1000, settings.session_timeout_ms // 4),
        max_partition_fetch_bytes=max(4 * settings.max_message_bytes, 8_000_000),
        fetch_max_bytes=64 * 1024 * 1024,
        max_poll_records=max_poll_records,
        max_poll_interval_ms=300_000,
    )
    topic_list = list(topics)
    if topic_list:
        consumer.subscribe(topic_list)
    return consumer


def ensure_topics(settings: KafkaSettings, partitions: dict[str, int] | None = None) -> None:
    """Create the pipeline's topics if absent (idempotent; safe for every worker to call)."""
    small = {"max.message.bytes": str(settings.max_message_bytes)}
    wanted = {
        settings.frames_topic: (
            settings.frames_partitions,
            {
                **small,
                "retention.ms": str(settings.frames_retention_s * 1000),
            },
        ),
        settings.incidents_topic: (6, small),
        settings.evidence_topic: (3, small),
        settings.status_topic: (3, small),
        settings.dead_letter_topic: (1, small),
        # Only the newest settings of each camera matter (every message carries all of them).
        settings.camera_config_topic: (1, {**small, "cleanup.policy": "compact"}),
    }
    for name, count in (partitions or {}).items():
        wanted[name] = (count, wanted[name][1])
    admin = KafkaAdminClient(**_common(settings, "cctv-admin"))
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=count, replication_factor=1, topic_configs=configs)
            for name, (count, configs) in wanted.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        admin.close()


def send(
    producer: KafkaProducer, topic: str, key: str, message: TopicMessage, partition: int | None = None
) -> Any:
    """Produce one contract message; returns the kafka-python future."""
    value, headers = encode(message)
    return producer.send(topic, key=key.encode(), value=value, headers=headers, partition=partition)


def send_all(
    producer: KafkaProducer,
    topic: str,
    messages: Sequence[FrameMessage | IncidentMessage],
    partition: int | None = None,
) -> list[int]:
    """Produce messages keyed by their camera and wait until the broker has acknowledged every one.

    Returns their offsets; raises if any was not written, so a caller can
    retry before committing what it consumed.
    """
    futures = [send(producer, topic, m.camera_id, m, partition) for m in messages]
    producer.flush(timeout=30)
    return [future.get(timeout=10).offset for future in futures]


@dataclass(frozen=True)
class DeadLetterSink:
    """Sends records a consumer cannot accept to the dead-letter topic, whole, with the reason."""

    producer: KafkaProducer
    topic: str
    consumer_name: str

    def reject(self, record: ConsumerRecord, reason: str) -> None:
        log.warning("dead-lettering %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason)
        headers: Headers = list(record.headers or [])
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode("utf-8", "replace") if record.key else None,
            reason=reason,
            headers={k: v.decode("utf-8", "replace") for k, v in headers},
            payload=record.value or b"",
            failed_at=datetime.now(UTC),
            consumer=self.consumer_name,
        )
        # Wait for the broker: the caller commits the offset right after, and the
        # record must not vanish between the two.
        send(self.producer, self.topic, letter.key or "", letter).get(timeout=30)


def fetched_end_offsets(
    consumer: KafkaConsumer, start: dict[TopicPartition, int], budget_s: float, timeout_ms: int
) -> tuple[dict[TopicPartition, int], list[int]]:
    """End offset of each partition: the larger of ListOffsets and a Fetch response's high watermark.

    Tansu (the local broker) answers ListOffsets(latest) from a cached watermark
    that can stay far behind what it has stored, while every Fetch response
    carries the true high watermark. So each partition is fetched once from
    max(listed end, ``start``): on Kafka that offset is the end and the fetch
    returns no records; on Tansu it returns at most one batch (discarded).
    ``consumer`` (group-less) is left assigned to the partitions, unpaused, at
    those offsets. Also returns the partitions whose fetch did not answer within
    ``budget_s`` (their end is then ListOffsets' alone).
    """
    listed = consumer.end_offsets(list(start), timeout_ms=timeout_ms)
    # assign() keeps a partition's state (watermark) when it stays assigned, so a partition read twice
    # in a row is fetched once.
    consumer.assign(list(start))
    for tp, offset in start.items():
        consumer.seek(tp, max(offset, listed.get(tp) or 0))
    ends: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + budget_s
    while len(ends) < len(start) and time.monotonic() < deadline:
        consumer.poll(timeout_ms=100)  # records are discarded: only the watermark matters
        for tp in start:
            high = consumer.highwater(tp)
            if tp not in ends and high is not None:
                ends[tp] = high
                consumer.pause(tp)
    consumer.resume(*start)
    unconfirmed = sorted(tp.partition for tp in start if tp not in ends)
    return {tp: max(listed.get(tp) or 0, ends.get(tp, 0)) for tp in start}, unconfirmed


def poll_records(consumer: KafkaConsumer, timeout_s: float) -> Iterator[ConsumerRecord]:
    """Records of one poll, in partition order."""
    batches = consumer.poll(timeout_ms=int(timeout_s * 1000))
    for records in batches.values():
        yield from records


def worker_name(role: str) -> str:
    """A client id that tells ops which host and role a connection belongs to."""
    return f"{role}@{socket.gethostname()}"
