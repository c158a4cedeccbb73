"""The live alert feed: active alerts now, then every change as it is committed (Server-Sent Events).

``GET /api/v1/alerts/stream`` sends, as ``text/event-stream``:

- ``event: snapshot`` first, data ``{"items": [IncidentOut, ...], "at": ...}``: the
  active alerts (review status new, acknowledged or escalated) of the cameras the
  caller may see, newest alert first, at most 100. It is the whole state: a client
  replaces its list with it, on every (re)connect, which is why ``Last-Event-ID``
  is not needed and not read;
- ``event: incident``, data ``IncidentOut``, each time a visible incident changes
  (new ones included): every change bumps ``incidents.revision``, and each
  (incident, revision) is pushed once. A dismissed or resolved one is pushed too,
  so the client can drop it from its active list;
- ``: keep-alive`` comment lines after ~15 s without an event (proxies close idle
  connections).

How: every ``api.feed_poll_s`` the stream reads the ids, revisions and
``updated_at`` of incidents changed in the last :data:`LOOKBACK` (an index on
``updated_at``) and loads in full only those whose revision it has not sent.
The look-back catches rows that were committed later than their ``updated_at``
(a slow transaction, a replica whose clock is a little behind); comparing
revisions keeps it from sending anything twice. Only the database is shared,
so it works the same with any number of API replicas, and each poll holds a
pooled connection for milliseconds only (never for the life of the stream).

The stream ends when the client disconnects (Starlette cancels it), when the
app stops (``AppContext.stop``), or when the caller's credential stops being
valid (logout, revoked key, disabled account, changed role or cameras; checked
every :data:`KEEPALIVE_S`): a browser's ``EventSource`` then reconnects by
itself, with its refreshed cookie, or gets the 401. Evidence-pending stub
incidents (status ``pending``) are not alerts and are left out.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.sse import format_sse_event
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.access import SESSION_COOKIE, Principal, ReviewerDep, ViewerDep, authenticate
from api.deps import AppContext, ContextDep, NowDep, SessionDep
from api.models import INCIDENT_PENDING, IncidentRow, UserRow
from api.problems import Problem
from api.review import ACTIVE, ASSIGNABLE_ROLES
from api.routers.incidents import incident_outs
from api.schemas import IncidentOut
from api.schemas_review import AlertSnapshotOut, AssigneeOut

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

SNAPSHOT_LIMIT = 100
KEEPALIVE_S = 15.0
LOOKBACK = timedelta(seconds=30)
RECONNECT_MS = 3000  # the EventSource's reconnect delay, sent with the snapshot
STOP_CHECK_S = 0.25  # longest a stream sleeps between looks at the stop event


def active_alerts(session: Session, principal: Principal) -> list[IncidentOut]:
    rows = session.scalars(
        select(IncidentRow)
        .where(
            principal.camera_clause(IncidentRow.camera_id),
            IncidentRow.review_status.in_(ACTIVE),
            IncidentRow.status != INCIDENT_PENDING,
        )
        .order_by(IncidentRow.threshold_at.desc(), IncidentRow.incident_id.desc())
        .limit(SNAPSHOT_LIMIT)
    ).all()
    return incident_outs(session, rows)


@router.get("", response_model=AlertSnapshotOut, summary="Active alerts now (the stream's snapshot, as JSON)")
def get_alerts(session: SessionDep, viewer: ViewerDep, now: NowDep) -> AlertSnapshotOut:
    return AlertSnapshotOut(items=active_alerts(session, viewer), at=now)


@router.get(
    "/assignees",
    response_model=list[AssigneeOut],
    summary="Who alerts can be assigned to: enabled operators and admins",
)
def get_assignees(session: SessionDep, reviewer: ReviewerDep) -> list[AssigneeOut]:
    rows = session.scalars(
        select(UserRow)
        .where(UserRow.role.in_(ASSIGNABLE_ROLES), UserRow.disabled.is_(False))
        .order_by(UserRow.username)
    )
    return [
        AssigneeOut(username=u.username, display_name=u.display_name, role=u.role)
        for u in rows
        if u.cameras is None or reviewer.cameras is None or set(u.cameras) & reviewer.cameras
    ]


@dataclass
class AlertFeed:
    """One client's view of the incidents table: what it was sent, so each revision goes out once."""

    context: AppContext
    principal: Principal
    # incident -> (revision sent, its updated_at): entries older than the look-back are dropped.
    sent: dict[uuid.UUID, tuple[int, datetime]] = field(default_factory=dict)

    def snapshot(self) -> AlertSnapshotOut:
        with self.context.sessions() as session:
            now = self.context.clock()
            # The window first: a row changed between the two reads then differs from what we note.
            for incident_id, revision, updated_at in self._window(session, now):
                self.sent[incident_id] = (revision, updated_at)
            items = active_alerts(session, self.principal)
        for item in items:
            self.sent[item.incident_id] = (item.revision, item.updated_at)
        return AlertSnapshotOut(items=items, at=now)

    def changes(self) -> list[IncidentOut]:
        """Incidents changed since they were last sent (oldest change first)."""
        with self.context.sessions() as session:
            now = self.context.clock()
            changed = [
                incident_id
                for incident_id, revision, _ in self._window(session, now)
                if revision > self.sent.get(incident_id, (-1, now))[0]
            ]
            if not changed:
                outs = []
            else:
                rows = session.scalars(select(IncidentRow).where(IncidentRow.incident_id.in_(changed))).all()
                outs = sorted(incident_outs(session, rows), key=lambda o: (o.updated_at, str(o.incident_id)))
        for out in outs:
            self.sent[out.incident_id] = (out.revision, out.updated_at)
        horizon = now - LOOKBACK
        for incident_id in [i for i, (_, at) in self.sent.items() if at < horizon]:
            # Unchanged since it left the window: a later change has a higher revision and is sent anyway.
            del self.sent[incident_id]
        return outs

    def _window(self, session: Session, now: datetime) -> list[tuple[uuid.UUID, int, datetime]]:
        rows = session.execute(
            select(IncidentRow.incident_id, IncidentRow.revision, IncidentRow.updated_at).where(
                self.principal.camera_clause(IncidentRow.camera_id),
                IncidentRow.updated_at >= now - LOOKBACK,
                IncidentRow.status != INCIDENT_PENDING,
            )
        ).all()
        return [(r[0], r[1], r[2]) for r in rows]


def _credential(request: Request) -> tuple[HTTPAuthorizationCredentials | None, str | None]:
    """The bearer token or session cookie the stream was opened with (as the Access dependency reads it)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    bearer = None
    if scheme.lower() == "bearer" and token.strip():
        bearer = HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
    return bearer, request.cookies.get(SESSION_COOKIE)


def still_allowed(request: Request, context: AppContext, principal: Principal) -> bool:
    """Whether the stream's credential still resolves to the same caller with the same role and cameras."""
    bearer, cookie = _credential(request)
    try:
        again = authenticate(request, context, bearer, cookie)
    except Problem:
        return False
    return (again.name, again.role, again.cameras) == (principal.name, principal.role, principal.cameras)


def _sse(event: str, data: str, retry: int | None = None) -> bytes:
    return format_sse_event(data_str=data, event=event, retry=retry)


KEEPALIVE = format_sse_event(comment="keep-alive")


async def _pause(context: AppContext, seconds: float) -> None:
    """Sleep ``seconds``, waking early when the app stops."""
    deadline = time.monotonic() + seconds
    while not context.stop.is_set() and (left := deadline - time.monotonic()) > 0:
        await anyio.sleep(min(left, STOP_CHECK_S))


async def alert_events(request: Request, context: AppContext, principal: Principal) -> AsyncIterator[bytes]:
    """The stream's bytes: a snapshot, then changes, until disconnect, app stop or credential end."""
    feed = AlertFeed(context, principal)
    poll_s = context.settings.api.feed_poll_s
    snapshot = await run_in_threadpool(feed.snapshot)
    yield _sse("snapshot", snapshot.model_dump_json(), retry=RECONNECT_MS)
    last_write = last_auth = time.monotonic()
    try:
        while not context.stop.is_set():
            await _pause(context, poll_s)
            if context.stop.is_set():
                break
            try:
                if time.monotonic() - last_auth >= KEEPALIVE_S:
                    if not await run_in_threadpool(still_allowed, request, context, principal):
                        log.info("alert stream of %s ended: credential no longer valid", principal.name)
                        break
                    last_auth = time.monotonic()
                outs = await run_in_threadpool(feed.changes)
            except SQLAlchemyError as exc:  # database away for a moment: keep the stream, retry next poll
                log.warning("alert stream poll failed (retrying): %s", exc)
                outs = []
            for out in outs:
                yield _sse("incident", out.model_dump_json())
                last_write = time.monotonic()
            if time.monotonic() - last_write >= KEEPALIVE_S:
                yield KEEPALIVE
                last_write = time.monotonic()
    finally:
        log.debug("alert stream of %s closed", principal.name)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    summary="Live alert feed (Server-Sent Events): a snapshot, then each change",
    responses={
        200: {
            "description": "event snapshot (data: AlertSnapshotOut JSON), then events incident (data: "
            "IncidentOut JSON) as incidents change, and ': keep-alive' comments",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_alerts(request: Request, context: ContextDep, viewer: ViewerDep) -> StreamingResponse:
    return StreamingResponse(
        alert_events(request, context, viewer),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
