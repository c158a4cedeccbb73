"""A broker restart loses nothing: topic data and committed offsets survive, and ingest carries on.

Tansu stores topics and group offsets in the S3 store, so a restart is what
an operator does to upgrade or recover the local broker. Ingest must keep
producing through it (kafka-python retries and refreshes metadata), and a
consumer group must resume exactly where it committed.
"""

from __future__ import annotations

import threading
import time

import pytest
from kafka import KafkaConsumer, TopicPartition

from cctv.bus import ensure_topics, make_consumer
from cctv.config import CameraRegistry, Settings
from cctv.contracts import FrameMessage, decode
from cctv.stack import LocalStack
from ingest.worker import run_ingest

pytestmark = pytest.mark.service


def consume(consumer: KafkaConsumer, want: int, timeout_s: float) -> list[FrameMessage]:
    frames: list[FrameMessage] = []
    deadline = time.monotonic() + timeout_s
    while len(frames) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            frames += [decode(FrameMessage, r.value, r.headers) for r in records]
    return frames


def test_ingest_and_consumers_survive_a_broker_restart(stack: LocalStack, settings: Settings) -> None:
    kafka = settings.kafka.model_copy(update={"frames_partitions": 1})
    settings = settings.model_copy(update={"kafka": kafka})
    ensure_topics(kafka)
    registry = CameraRegistry.model_validate(
        {"cameras": [{"id": "cam-r", "name": "restart", "source": "sim://walkers?seed=3", "fps": 5}]}
    )
    stop = threading.Event()
    ingest = threading.Thread(target=run_ingest, args=(settings, registry, stop), daemon=True)
    ingest.start()
    group = "restart-check"
    try:
        consumer = make_consumer(kafka, "t", group, [kafka.frames_topic])
        before = consume(consumer, 10, timeout_s=60)
        assert len(before) >= 10, "no frames before the restart"
        consumer.commit()
        committed = consumer.committed(TopicPartition(kafka.frames_topic, 0))
        consumer.close()

        stack.restart_kafka()

        resumed = make_consumer(kafka, "t", group, [kafka.frames_topic])
        after = consume(resumed, 25, timeout_s=90)
        resumed.close()
    finally:
        stop.set()
        ingest.join(timeout=30)

    # The group resumed at its committed offset: nothing before it was delivered again.
    assert committed is not None and committed >= len(before)
    seen_before = {f.seq for f in before}
    assert not seen_before & {f.seq for f in after}, "frames committed before the restart came back"
    # Ingest kept producing through the restart, in the same stream with increasing seq.
    assert len(after) >= 25
    assert {f.stream_id for f in after} == {before[0].stream_id}
    assert max(f.seq for f in after) > max(seen_before) + 15

    # Data written before the restart is still in the topic, bit for bit.
    reader = make_consumer(kafka, "t", None)
    partition = TopicPartition(kafka.frames_topic, 0)
    reader.assign([partition])
    reader.seek_to_beginning(partition)
    replay = consume(reader, len(before), timeout_s=30)
    reader.close()
    assert [(f.seq, f.sha256) for f in replay[: len(before)]] == [(f.seq, f.sha256) for f in before]
