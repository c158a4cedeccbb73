"""What routers depend on, as ``Annotated`` aliases over one per-app context (no module globals)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from minio import Minio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.metrics import ApiMetrics
from cctv.config import CameraRegistry, Settings


@dataclass
class AppContext:
    settings: Settings
    registry: CameraRegistry
    engine: Engine
    sessions: sessionmaker[Session]
    store: Minio
    metrics: ApiMetrics
    schema_ready: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)


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


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Minio, Depends(get_store)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
