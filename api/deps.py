"""What routers depend on, as ``Annotated`` aliases over one per-app context (no module globals)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from minio import Minio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.metrics import ApiMetrics
from api.problems import Problem
from api.redaction_jobs import RedactionRunner
from cctv.config import CameraRegistry, Settings
from evidence_store.signing import ManifestSigner


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    settings: Settings
    registry: CameraRegistry
    engine: Engine
    sessions: sessionmaker[Session]
    store: Minio
    metrics: ApiMetrics
    signer: ManifestSigner
    schema_ready: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    # What share links compare their expiry with; tests move it instead of sleeping.
    clock: Callable[[], datetime] = utc_now
    redactions: RedactionRunner | None = None


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    """One session per request (the SQLite connection is shared across threads only via the pool)."""
    with context.sessions() as session:
        yield session


def get_settings(context: ContextDep) -> Settings:
    return context.settings


def get_store(context: ContextDep) -> Minio:
    return context.store


def get_metrics(context: ContextDep) -> ApiMetrics:
    return context.metrics


def get_signer(context: ContextDep) -> ManifestSigner:
    return context.signer


def get_now(context: ContextDep) -> datetime:
    return context.clock()


def get_runner(context: ContextDep) -> RedactionRunner:
    if context.redactions is None:
        raise Problem(503, "Redactions unavailable", "this API instance runs no redaction jobs")
    return context.redactions


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Minio, Depends(get_store)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
SignerDep = Annotated[ManifestSigner, Depends(get_signer)]
NowDep = Annotated[datetime, Depends(get_now)]
RunnerDep = Annotated[RedactionRunner, Depends(get_runner)]
