"""Liveness, readiness (database, object store, broker, each reported) and Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from kafka import KafkaConsumer
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from api.deps import ContextDep, MetricsDep
from api.schemas import CheckOut, HealthOut, ReadyOut

router = APIRouter(tags=["health"])

BROKER_TIMEOUT_MS = 3000


@router.get("/healthz", response_model=HealthOut, summary="Liveness: the process is serving")
def healthz() -> HealthOut:
    return HealthOut()


def _check(probe: Callable[[], str]) -> CheckOut:
    started = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as exc:  # each dependency's failure is reported, not raised
        detail, ok = f"{type(exc).__name__}: {exc}"[:500], False
    return CheckOut(ok=ok, detail=detail, duration_ms=round((time.perf_counter() - started) * 1000, 1))


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Readiness: database, evidence bucket and broker reachable (503 if any is not)",
    responses={503: {"model": ReadyOut, "description": "at least one dependency failed"}},
)
def readyz(context: ContextDep) -> JSONResponse:
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
        kafka = context.settings.kafka
        consumer = KafkaConsumer(
            bootstrap_servers=kafka.bootstrap_servers.split(","),
            security_protocol=kafka.security_protocol,
            client_id="cctv-api-readyz",
            request_timeout_ms=BROKER_TIMEOUT_MS + 1000,
            bootstrap_timeout_ms=BROKER_TIMEOUT_MS,
        )
        try:
            topics = consumer.topics()
        finally:
            consumer.close()
        return f"{len(topics)} topics"

    checks = {"database": _check(database), "object_store": _check(object_store), "broker": _check(broker)}
    body = ReadyOut(ready=all(c.ok for c in checks.values()), checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this API instance",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
