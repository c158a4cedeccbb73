"""What routers depend on, as ``Annotated`` aliases over one per-app context (no module globals)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from minio import Minio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.custody import Actor
from api.metrics import ApiMetrics
from api.problems import Problem
from api.redaction_jobs import RedactionRunner
from cctv.config import CameraRegistry, Settings
from evidence_store.custody import ActorRole
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


# --------------------------------------------------------------------------- who is acting

HUMAN_ROLES = tuple(r for r in ActorRole if r not in (ActorRole.SYSTEM, ActorRole.EXTERNAL))
LEGAL_ROLES = (ActorRole.LEGAL, ActorRole.ADMIN)
ACTOR_HEADERS = "X-Actor and X-Actor-Role"
MAX_ACTOR_CHARS = 200


def _unidentified(detail: str) -> Problem:
    problem = Problem(
        401,
        "Actor not identified",
        f"{detail}. Evidence access is recorded in the custody log: send the {ACTOR_HEADERS} headers "
        f"(role one of: {', '.join(r.value for r in HUMAN_ROLES)})",
        extra={"required_headers": ["X-Actor", "X-Actor-Role"]},
    )
    problem.headers = {"WWW-Authenticate": 'X-Actor realm="cctv-evidence"'}
    return problem


def get_actor(
    x_actor: Annotated[str | None, Header(description="name of the person acting (custody log)")] = None,
    x_actor_role: Annotated[
        str | None, Header(description="their role: operator, legal, ops or admin")
    ] = None,
) -> Actor:
    """Who is acting, from the ``X-Actor`` and ``X-Actor-Role`` headers (401 when missing or invalid).

    PLACEHOLDER identity: the headers are trusted as sent. The authentication issue
    (issue 6) replaces this dependency with real logins; every route that depends on
    ``ActorDep`` then gets an authenticated actor without other changes. ``system``
    and ``external`` are refused: they are for workers and share-link recipients,
    never for someone calling the API directly.
    """
    name = (x_actor or "").strip()
    if not name:
        raise _unidentified("the X-Actor header (who is acting) is missing or blank")
    if len(name) > MAX_ACTOR_CHARS or not name.isprintable():
        raise _unidentified(f"X-Actor must be printable text of at most {MAX_ACTOR_CHARS} characters")
    role = (x_actor_role or "").strip().lower()
    if role not in {r.value for r in HUMAN_ROLES}:
        raise _unidentified(f"X-Actor-Role {x_actor_role!r} is missing or not a role a person can act in")
    return Actor(name, ActorRole(role))


def get_legal_actor(actor: Annotated[Actor, Depends(get_actor)]) -> Actor:
    """An actor allowed to change what protects evidence (holds, retention, cases): legal or admin."""
    if actor.role not in LEGAL_ROLES:
        raise Problem(
            403,
            "Forbidden",
            f"role {actor.role.value!r} may not do this; it needs one of: "
            f"{', '.join(r.value for r in LEGAL_ROLES)}",
        )
    return actor


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Minio, Depends(get_store)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
SignerDep = Annotated[ManifestSigner, Depends(get_signer)]
NowDep = Annotated[datetime, Depends(get_now)]
RunnerDep = Annotated[RedactionRunner, Depends(get_runner)]
ActorDep = Annotated[Actor, Depends(get_actor)]
LegalActorDep = Annotated[Actor, Depends(get_legal_actor)]
