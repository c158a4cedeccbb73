"""Liveness, readiness (database, object store, broker, each reported) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.access import PUBLIC, Operations
from api.deps import ContextDep, MetricsDep
from api.ops import readiness_checks
from api.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get(
    "/healthz", response_model=HealthOut, summary="Liveness: the process is serving", dependencies=PUBLIC
)
def healthz() -> HealthOut:
    return HealthOut()


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Readiness: database, evidence bucket and broker reachable (503 if any is not)",
    dependencies=PUBLIC,
    responses={503: {"model": ReadyOut, "description": "at least one dependency failed"}},
)
def readyz(context: ContextDep) -> JSONResponse:
    checks = readiness_checks(context)
    body = ReadyOut(ready=all(c.ok for c in checks.values()), checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics of this API instance (ops, admin; a scraper uses an ops API key)",
    dependencies=[Depends(Operations)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
def metrics(registry: MetricsDep) -> Response:
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
