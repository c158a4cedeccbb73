"""Alert review of an incident: act on it (operators), read its review history and its whole timeline.

The rules (which action is allowed in which review state) are in :mod:`api.review`;
an incident of a camera the caller may not see does not exist for them (404).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select

from api import review
from api.access import ReviewerDep, ViewerDep
from api.deps import NowDep, SessionDep
from api.models import EvidenceRow, IncidentActionRow, IncidentEventRow
from api.schemas_review import IncidentActionIn, IncidentActionOut, TimelineItemOut

router = APIRouter(prefix="/api/v1/incidents", tags=["alert review"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such incident, or one of a camera the caller may not see"},
}
# Equal times sort lifecycle first, then evidence, then review: the detector's event caused the rest.
KIND_ORDER = {"lifecycle": 0, "evidence": 1, "review": 2}


def _action_out(row: IncidentActionRow, review_status: str, revision: int | None) -> IncidentActionOut:
    return IncidentActionOut(
        id=row.id,
        incident_id=row.incident_id,
        at=row.at,
        actor=row.actor,
        role=row.role,
        action=row.action,  # type: ignore[arg-type]
        text=row.text,
        assignee=row.assignee,
        review_status=review_status,  # type: ignore[arg-type]
        revision=revision,
    )


def _history(session: SessionDep, incident_id: uuid.UUID) -> list[IncidentActionRow]:
    return list(
        session.scalars(
            select(IncidentActionRow)
            .where(IncidentActionRow.incident_id == incident_id)
            .order_by(IncidentActionRow.at, IncidentActionRow.id)
        )
    )


@router.post(
    "/{incident_id}/actions",
    response_model=IncidentActionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Acknowledge, escalate, dismiss, resolve, reopen, assign or note an alert",
    responses={
        **PROBLEMS,
        409: {"description": "the incident's review state does not allow this action (detail says why)"},
        422: {"description": "dismiss without a reason, note without text, unknown or unfit assignee"},
    },
)
def post_action(
    session: SessionDep, reviewer: ReviewerDep, now: NowDep, incident_id: uuid.UUID, body: IncidentActionIn
) -> IncidentActionOut:
    acted = review.act(
        session, incident_id, reviewer, body.action, text=body.text, assignee=body.assignee, now=now
    )
    session.commit()
    return _action_out(acted.action, acted.review_status, acted.revision)


@router.get(
    "/{incident_id}/actions",
    response_model=list[IncidentActionOut],
    summary="The review history of an incident, oldest first",
    responses=PROBLEMS,
)
def get_actions(session: SessionDep, viewer: ViewerDep, incident_id: uuid.UUID) -> list[IncidentActionOut]:
    review.visible_incident(session, incident_id, viewer)
    rows = _history(session, incident_id)
    return [_action_out(r, s, None) for r, s in zip(rows, review.replay(rows), strict=True)]


@router.get(
    "/{incident_id}/timeline",
    response_model=list[TimelineItemOut],
    summary="Everything that happened to an incident, in time order: detector, evidence, operators",
    responses=PROBLEMS,
)
def get_timeline(session: SessionDep, viewer: ViewerDep, incident_id: uuid.UUID) -> list[TimelineItemOut]:
    review.visible_incident(session, incident_id, viewer)
    items: list[tuple[TimelineItemOut, int]] = []
    events = session.scalars(select(IncidentEventRow).where(IncidentEventRow.incident_id == incident_id))
    for event in events:
        items.append(
            (
                TimelineItemOut(at=event.event_at, kind="lifecycle", label=event.event, detail=event.summary),
                event.id,
            )
        )
    evidence = session.scalars(select(EvidenceRow).where(EvidenceRow.incident_id == incident_id))
    for item in evidence:
        frames = f"{item.frame_count} frame{'s' if item.frame_count != 1 else ''}"
        items.append(
            (
                TimelineItemOut(
                    at=item.sealed_at,
                    kind="evidence",
                    label="evidence sealed",
                    detail=frames,
                    ref=str(item.evidence_id),
                ),
                0,
            )
        )
    for action in _history(session, incident_id):
        items.append(
            (
                TimelineItemOut(
                    at=action.at,
                    kind="review",
                    label=review.label(action.action, action.assignee),
                    actor=action.actor,
                    detail=action.text,
                    ref=str(action.id),
                ),
                action.id,
            )
        )
    items.sort(key=lambda pair: (pair[0].at, KIND_ORDER[pair[0].kind], pair[1]))
    return [item for item, _ in items]
