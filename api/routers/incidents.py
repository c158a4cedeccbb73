"""Incidents: search, one incident, its snapshot, its lifecycle events and its evidence."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload, undefer

from api.access import Principal, ViewerDep
from api.deps import SessionDep
from api.models import CameraRow, EvidenceRow, IncidentEventRow, IncidentRow
from api.problems import not_found
from api.routers.evidence import evidence_out
from api.schemas import (
    EvidenceOut,
    IncidentEventOut,
    IncidentOut,
    IncidentPage,
    IncidentStatus,
    ReviewStatus,
    Rule,
)

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


def _utc(value: datetime | None) -> datetime | None:
    """Query times without an offset are taken as UTC, the pipeline's only clock."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def incident_outs(session: Session, rows: Sequence[IncidentRow]) -> list[IncidentOut]:
    """Incidents with their camera's name and location (one query for the cameras of all ``rows``)."""
    ids = {row.camera_id for row in rows}
    cameras = (
        {c.id: c for c in session.scalars(select(CameraRow).where(CameraRow.id.in_(sorted(ids))))}
        if ids
        else {}
    )
    outs = []
    for row in rows:
        out = IncidentOut.model_validate(row)
        if (camera := cameras.get(row.camera_id)) is not None:
            out.camera_name, out.camera_location = camera.name, camera.location
        outs.append(out)
    return outs


def incident_out(session: Session, row: IncidentRow) -> IncidentOut:
    return incident_outs(session, [row])[0]


@router.get("", response_model=IncidentPage, summary="Search incidents, newest alert first")
def list_incidents(
    session: SessionDep,
    viewer: ViewerDep,
    camera_id: Annotated[str | None, Query(max_length=64, description="only this camera")] = None,
    rule: Annotated[Rule | None, Query(description="only this rule")] = None,
    status: Annotated[IncidentStatus | None, Query(description="open, closed or pending")] = None,
    since: Annotated[
        datetime | None, Query(description="alert (threshold) time at or after, ISO 8601")
    ] = None,
    until: Annotated[datetime | None, Query(description="alert (threshold) time before, ISO 8601")] = None,
    review_status: Annotated[
        list[ReviewStatus] | None,
        Query(description="only these review states (repeat: ?review_status=new&review_status=escalated)"),
    ] = None,
    assignee: Annotated[str | None, Query(max_length=200, description="only alerts assigned to")] = None,
    zone_id: Annotated[str | None, Query(max_length=64, description="only this zone")] = None,
    place: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="camera name or location contains (any case)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="page size")] = 50,
    offset: Annotated[int, Query(ge=0, description="items to skip")] = 0,
) -> IncidentPage:
    query = select(IncidentRow).where(viewer.camera_clause(IncidentRow.camera_id))
    if camera_id is not None:
        query = query.where(IncidentRow.camera_id == camera_id)
    if rule is not None:
        query = query.where(IncidentRow.rule == rule)
    if status is not None:
        query = query.where(IncidentRow.status == status)
    if (start := _utc(since)) is not None:
        query = query.where(IncidentRow.threshold_at >= start)
    if (end := _utc(until)) is not None:
        query = query.where(IncidentRow.threshold_at < end)
    if review_status:
        query = query.where(IncidentRow.review_status.in_(review_status))
    if assignee is not None:
        query = query.where(IncidentRow.assignee == assignee)
    if zone_id is not None:
        query = query.where(IncidentRow.zone_id == zone_id)
    if place is not None:
        # A semi-join, so an incident is counted once; autoescape: '%' and '_' in the text are literal.
        wanted = place.strip().lower()
        cameras = select(CameraRow.id).where(
            or_(
                func.lower(CameraRow.name).contains(wanted, autoescape=True),
                func.lower(CameraRow.location).contains(wanted, autoescape=True),
            )
        )
        query = query.where(IncidentRow.camera_id.in_(cameras))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(IncidentRow.threshold_at.desc(), IncidentRow.incident_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return IncidentPage(items=incident_outs(session, rows), total=total, limit=limit, offset=offset)


def _incident(session: SessionDep, incident_id: uuid.UUID, viewer: Principal) -> IncidentRow:
    row = session.get(IncidentRow, incident_id)
    if row is None or not viewer.may_see(row.camera_id):  # another camera's incident does not exist for them
        raise not_found("incident", incident_id)
    return row


@router.get("/{incident_id}", response_model=IncidentOut, summary="One incident")
def get_incident(session: SessionDep, viewer: ViewerDep, incident_id: uuid.UUID) -> IncidentOut:
    return incident_out(session, _incident(session, incident_id, viewer))


@router.get(
    "/{incident_id}/snapshot",
    summary="An annotated snapshot of an incident: the newest one, or the one from before a change",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG with boxes and zone drawn"}},
)
def get_snapshot(
    session: SessionDep,
    viewer: ViewerDep,
    incident_id: uuid.UUID,
    view: Annotated[
        Literal["latest", "before"],
        Query(description="latest event's frame, or (vandalism rules) the frame from before the change"),
    ] = "latest",
) -> Response:
    column = IncidentRow.snapshot if view == "latest" else IncidentRow.before_snapshot
    row = session.scalar(
        select(IncidentRow).where(IncidentRow.incident_id == incident_id).options(undefer(column))
    )
    if row is None or not viewer.may_see(row.camera_id):
        raise not_found("incident", incident_id)
    image = row.snapshot if view == "latest" else row.before_snapshot
    if image is None:
        raise not_found(f"{view} snapshot of incident", incident_id)
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "no-cache"})


@router.get(
    "/{incident_id}/events", response_model=list[IncidentEventOut], summary="Lifecycle events in order"
)
def get_events(session: SessionDep, viewer: ViewerDep, incident_id: uuid.UUID) -> list[IncidentEventOut]:
    _incident(session, incident_id, viewer)
    rows = session.scalars(
        select(IncidentEventRow)
        .where(IncidentEventRow.incident_id == incident_id)
        .order_by(IncidentEventRow.event_at, IncidentEventRow.id)
    ).all()
    return [IncidentEventOut.model_validate(r) for r in rows]


@router.get(
    "/{incident_id}/evidence", response_model=list[EvidenceOut], summary="Sealed evidence of an incident"
)
def get_incident_evidence(
    session: SessionDep, viewer: ViewerDep, incident_id: uuid.UUID
) -> list[EvidenceOut]:
    _incident(session, incident_id, viewer)
    rows = session.scalars(
        select(EvidenceRow)
        .where(EvidenceRow.incident_id == incident_id)
        .options(selectinload(EvidenceRow.artifacts))
        .order_by(EvidenceRow.sealed_at)
    ).all()
    return [evidence_out(r) for r in rows]
