"""`cctv bench`: throughput and latency of each stage, measured on this machine, printed.

Each figure is taken in one run next to a baseline where one exists (the
machines are shared and noisy, so ratios travel better than absolute numbers):
- broker: produce/consume MB/s of 60 KB frames, tuned producer vs kafka-python defaults;
- ingest: frames/s per core to render, encode and hash a simulated camera;
- detector: frames/s per backend, full frame vs motion crops, and the motion-gate skip ratio;
- evidence: seal time for an incident window;
- end to end: alert latency from threshold crossing to the incident in the API (p50/p95);
- api: argon2id per login, authentication per request, alert persisted -> on the live feed.
The benchmark starts its own local stack on shifted ports in a temporary directory.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cctv.bus import ensure_topics, make_consumer, make_producer, require_crc32c
from cctv.config import Settings
from cctv.stack import LocalStack

BENCH_PORT_OFFSET = 600
FRAME_BYTES = 60_000


@dataclass(frozen=True)
class Result:
    section: str
    metric: str
    value: float
    unit: str
    note: str = ""


def _print(results: list[Result]) -> None:
    width = max(len(r.metric) for r in results)
    section = ""
    for r in results:
        if r.section != section:
            section = r.section
            print(f"\n== {section}")
        print(f"  {r.metric:<{width}}  {r.value:12.3f} {r.unit:<10} {r.note}")


@contextmanager
def bench_stack(settings: Settings) -> Iterator[Settings]:
    """A private stack so the benchmark never touches a running demo's data."""
    with tempfile.TemporaryDirectory(prefix="cctv-bench-") as tmp:
        stack = LocalStack(
            data_dir=Path(tmp),
            access_key="bench",
            secret_key="bench-secret",  # noqa: S106 - throwaway loopback store
            ports=settings.stack.shifted(BENCH_PORT_OFFSET),
        )
        stack.up()
        try:
            base = settings.model_copy(
                update={
                    "data_dir": Path(tmp),
                    "kafka": settings.kafka.model_copy(
                        update={"frames_partitions": 4, "session_timeout_ms": 6000}
                    ),
                    "s3": settings.s3.model_copy(update={"retention_days": 1}),
                }
            )
            yield stack.settings_for(base, f"bench{uuid.uuid4().hex[:6]}")
        finally:
            stack.down()


# --------------------------------------------------------------------------- broker


def bench_broker(settings: Settings, count: int) -> list[Result]:
    from kafka import KafkaProducer

    require_crc32c()
    kafka = settings.kafka
    ensure_topics(kafka)
    payload = os.urandom(FRAME_BYTES)
    megabytes = count * FRAME_BYTES / 1e6

    def produce(producer: KafkaProducer, topic: str) -> float:
        start = time.perf_counter()
        for i in range(count):
            producer.send(topic, key=f"cam-{i % 8:02d}".encode(), value=payload)
        producer.flush()
        producer.close()
        return time.perf_counter() - start

    tuned_s = produce(make_producer(kafka, "bench"), kafka.frames_topic)
    default = KafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers.split(","), acks="all", max_request_size=2_000_000
    )
    default_s = produce(default, kafka.frames_topic + ".baseline")

    consumer = make_consumer(kafka, "bench", None)
    from kafka import TopicPartition

    partitions = [TopicPartition(kafka.frames_topic, p) for p in range(kafka.frames_partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    received = 0
    start = time.perf_counter()
    while received < count and time.perf_counter() - start < 120:
        for records in consumer.poll(timeout_ms=1000).values():
            received += len(records)
    consume_s = time.perf_counter() - start
    consumer.close()
    return [
        Result("broker", "produce MB/s (tuned, acks=all)", megabytes / tuned_s, "MB/s", f"{count} x 60 KB"),
        Result("broker", "produce MB/s (kafka-python defaults)", megabytes / default_s, "MB/s", "baseline"),
        Result("broker", "tuned / default produce speed", default_s / tuned_s, "x"),
        Result(
            "broker", "consume MB/s", received * FRAME_BYTES / 1e6 / consume_s, "MB/s", f"{received} frames"
        ),
    ]


# --------------------------------------------------------------------------- runner

Section = Callable[[Settings, bool], list[Result]]


def run_bench(settings: Settings, quick: bool = False, only: list[str] | None = None) -> int:
    sections: list[tuple[str, Section]] = [("broker", lambda s, q: bench_broker(s, 300 if q else 1000))]
    sections += _pipeline_sections()
    if only:
        unknown = set(only) - {name for name, _ in sections}
        if unknown:
            print(f"unknown section(s) {sorted(unknown)}; choose from {[n for n, _ in sections]}")
            return 2
        sections = [(name, section) for name, section in sections if name in only]
    results: list[Result] = []
    print(f"cctv bench on {os.cpu_count()} cores{' (quick)' if quick else ''}")
    with bench_stack(settings) as bench_settings:
        for name, section in sections:
            started = time.perf_counter()
            try:
                results += section(bench_settings, quick)
            except Exception as exc:  # one broken section must not hide the others' numbers
                results.append(Result(name, f"FAILED: {exc}", float("nan"), ""))
            print(f"  [{name} done in {time.perf_counter() - started:.1f}s]", flush=True)
    _print(results)
    return 1 if any(r.metric.startswith("FAILED") for r in results) else 0


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _pipeline_sections() -> list[tuple[str, Section]]:
    """Sections that exercise the workers; imported lazily (torch import is slow)."""
    from cctv import bench_stages

    return bench_stages.SECTIONS
