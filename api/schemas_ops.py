"""Response models of the operations view: component health, consumer-group lag, workers, metric panels."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas import CheckOut


class ComponentOut(CheckOut):
    name: str = Field(description="database, object_store or broker (the same probes as /readyz)")


class PartitionLagOut(BaseModel):
    partition: int
    committed: int | None = Field(description="the group's committed offset; null: it never committed here")
    end: int = Field(description="the partition's end offset (high watermark)")
    lag: int = Field(description="end - committed; with no commit, everything the partition still holds")


class ConsumerGroupOut(BaseModel):
    group: str
    role: str | None = Field(
        description="detector, evidence or api-persister for the pipeline's own groups; null: another "
        "group the broker lists with offsets on a pipeline topic"
    )
    topic: str
    ok: bool = Field(description="false: the lag could not be read (the detail says why)")
    detail: str | None
    lag: int | None = Field(description="messages not yet processed, all partitions; null when not read")
    partitions: list[PartitionLagOut]


class WorkerOut(BaseModel):
    name: str = Field(description="the worker's client id, e.g. ingest@host or detector@host")
    kind: Literal["ingest", "consumer"] = Field(
        description="ingest: from the cameras' heartbeats; consumer: a live member of a consumer group"
    )
    group: str | None = Field(description="the consumer group (consumer workers only)")
    cameras: list[str] = Field(description="cameras whose newest heartbeat came from this worker")
    last_heartbeat_at: datetime | None = Field(description="newest heartbeat of its cameras (ingest only)")
    stale: bool | None = Field(description="no heartbeat for more than 3 heartbeat periods (ingest only)")


class CamerasSummaryOut(BaseModel):
    online: int = Field(description="online with a fresh heartbeat")
    offline: int = Field(description="fresh heartbeat saying connecting/offline/stopped, or never heard from")
    stale: int = Field(description="newest heartbeat older than 3 heartbeat periods")
    total: int = Field(description="cameras of the registry (online + offline + stale)")


class OpsHealthOut(BaseModel):
    at: datetime
    ok: bool = Field(description="every component reachable and every consumer group's lag readable")
    components: list[ComponentOut]
    consumer_groups: list[ConsumerGroupOut]
    workers: list[WorkerOut]
    cameras: CamerasSummaryOut


class SampleOut(BaseModel):
    name: str = Field(description="the sample's name exactly as /metrics shows it (counters end in _total)")
    labels: dict[str, str]
    value: float


class HistogramOut(BaseModel):
    name: str = Field(description="the histogram's name as /metrics shows it, without _bucket/_count/_sum")
    labels: dict[str, str]
    count: float
    sum: float
    p50: float | None = Field(description="median estimated from the buckets; null with no observations")
    p95: float | None = Field(description="95th percentile estimated from the buckets")


class OpsMetricsOut(BaseModel):
    at: datetime
    counters: list[SampleOut] = Field(description="monotonic totals since this API instance started")
    gauges: list[SampleOut]
    histograms: list[HistogramOut]
