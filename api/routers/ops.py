"""The operations view: health of components and workers, consumer-group lag, metric panels (ops, admin)."""

from __future__ import annotations

from fastapi import APIRouter

from api.access import OperationsDep
from api.deps import ContextDep, MetricsDep, NowDep, SessionDep
from api.ops import metric_panels, ops_health
from api.schemas_ops import OpsHealthOut, OpsMetricsOut

router = APIRouter(prefix="/api/v1/ops", tags=["operations"])


@router.get(
    "/health",
    response_model=OpsHealthOut,
    summary="Database, object store and broker; lag of each consumer group; workers; camera counts",
    description="200 whenever the caller may see it: a component that is down is reported with ok=false "
    "and why (broker reads give up within seconds), so the page works when it matters most.",
)
def health(context: ContextDep, session: SessionDep, now: NowDep, caller: OperationsDep) -> OpsHealthOut:
    return ops_health(context, session, now, caller)


@router.get(
    "/metrics",
    response_model=OpsMetricsOut,
    summary="This API instance's Prometheus metrics as numbers: counters, gauges, histogram p50/p95",
    description="The same collectors GET /metrics renders as text; rates are the difference of two reads.",
)
def metrics(registry: MetricsDep, now: NowDep, caller: OperationsDep) -> OpsMetricsOut:
    return metric_panels(registry.registry, now)
