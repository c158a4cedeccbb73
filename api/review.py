"""Alert review: what an operator may do to an incident, and in which review state (no HTTP here).

The review state of an incident (``incidents.review_status``) moves only through
:data:`TRANSITIONS`:

====================  ===================================  ==================
action                allowed when the incident is         it becomes
====================  ===================================  ==================
acknowledge           new                                  acknowledged
escalate              new, acknowledged                    escalated
dismiss (reason)      new, acknowledged, escalated         dismissed
resolve               new, acknowledged, escalated         resolved
reopen                dismissed, resolved                  new
assign / unassign     new, acknowledged, escalated         (unchanged)
note (text)           any                                  (unchanged)
====================  ===================================  ==================

Choices, and why:
- an escalated incident cannot be acknowledged: escalation already says someone
  has seen it and raised it, so "acknowledged" would be a silent downgrade; it
  leaves escalation only by being resolved or dismissed;
- resolve is allowed straight from new: an operator who dealt with an alert at
  once should not have to click acknowledge first;
- a dismissed or resolved incident is finished: it can only be reopened or get a
  note, so its history is never rewritten by a late click;
- a dismissal's reason is kept on the action row as feedback for the detector's
  tuning (which alerts operators judged false);
- an assignee is an enabled user with a reviewing role (operator or admin) who
  may see the incident's camera: nobody can be handed an alert they cannot open.

Each accepted action appends an :class:`~api.models.IncidentActionRow` and bumps
the incident's ``revision`` and ``updated_at`` (so the live feed pushes it).

The state change is ONE conditional UPDATE whose WHERE clause carries the
allowed source states: two operators clicking at once cannot both succeed
(PostgreSQL re-checks the WHERE after the first commits; SQLite serialises
writers), and because the UPDATE is the transaction's first statement SQLite
never has to upgrade a stale read snapshot. Only when it matches no row is the
incident read, to say why (404 or 409).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from api.access import Principal
from api.models import REVIEW_NEW, REVIEW_STATUSES, IncidentActionRow, IncidentRow, UserRow
from api.problems import Problem, not_found
from evidence_store.custody import ActorRole

ReviewAction = Literal["acknowledge", "escalate", "dismiss", "resolve", "reopen", "assign", "note"]
ACTIONS: tuple[str, ...] = get_args(ReviewAction)

ACTIVE = ("new", "acknowledged", "escalated")  # an alert still needing attention
FINISHED = ("dismissed", "resolved")
ASSIGNABLE_ROLES = (ActorRole.OPERATOR.value, ActorRole.ADMIN.value)
TEXT_REQUIRED = frozenset({"dismiss", "note"})


@dataclass(frozen=True)
class Transition:
    allowed_from: tuple[str, ...]
    to: str | None  # None: the review status does not change


TRANSITIONS: dict[str, Transition] = {
    "acknowledge": Transition(("new",), "acknowledged"),
    "escalate": Transition(("new", "acknowledged"), "escalated"),
    "dismiss": Transition(ACTIVE, "dismissed"),
    "resolve": Transition(ACTIVE, "resolved"),
    "reopen": Transition(FINISHED, REVIEW_NEW),
    "assign": Transition(ACTIVE, None),
    "note": Transition(REVIEW_STATUSES, None),
}
assert set(TRANSITIONS) == set(ACTIONS)

# What the timeline shows for each action (assign is "assigned to <who>" or "unassigned").
LABELS = {
    "acknowledge": "acknowledged",
    "escalate": "escalated",
    "dismiss": "dismissed",
    "resolve": "resolved",
    "reopen": "reopened",
    "note": "note",
}


def label(action: str, assignee: str | None) -> str:
    if action == "assign":
        return f"assigned to {assignee}" if assignee else "unassigned"
    return LABELS.get(action, action)


def status_after(action: str, before: str) -> str:
    """The review status an accepted ``action`` leaves (used to replay the history)."""
    target = TRANSITIONS[action].to if action in TRANSITIONS else None
    return target or before


def replay(actions: list[IncidentActionRow]) -> list[str]:
    """The review status after each action, oldest first: every incident starts as new."""
    statuses, current = [], REVIEW_NEW
    for row in actions:
        current = status_after(row.action, current)
        statuses.append(current)
    return statuses


@dataclass(frozen=True)
class Acted:
    """An accepted action and the incident's state after it."""

    action: IncidentActionRow
    review_status: str
    revision: int


def act(
    session: Session,
    incident_id: uuid.UUID,
    principal: Principal,
    action: str,
    *,
    text: str | None,
    assignee: str | None,
    now: datetime,
) -> Acted:
    """Apply one review action (the caller commits); 404 if unseen, 409 if the state does not allow it.

    ``text`` is required for dismiss and note; ``assignee`` is the new assignee of
    an assign action (None unassigns) and ignored otherwise. Input shape is the
    schema's job (422); this enforces the rules that depend on stored state.
    """
    if action not in TRANSITIONS:
        raise Problem(422, "Unknown action", f"action must be one of: {', '.join(ACTIONS)}")
    if action in TEXT_REQUIRED and not (text or "").strip():
        what = "a reason" if action == "dismiss" else "the note's text"
        raise Problem(422, "Text required", f"{action} needs {what} in 'text'")
    rule = TRANSITIONS[action]
    if action == "assign" and assignee is not None:
        _check_assignee(session, incident_id, principal, assignee)
        # End the read: SQLite cannot turn a read snapshot that a writer has since passed into a write.
        session.rollback()
    where: list[ColumnElement[bool]] = [
        IncidentRow.incident_id == incident_id,
        principal.camera_clause(IncidentRow.camera_id),
        IncidentRow.review_status.in_(rule.allowed_from),
    ]
    values: dict[str, object] = {"revision": IncidentRow.revision + 1, "updated_at": now}
    if rule.to is not None:
        values["review_status"] = rule.to
    if action == "assign":
        where.append(_differs(assignee))
        values["assignee"] = assignee
    result = session.execute(update(IncidentRow).where(*where).values(**values))
    if getattr(result, "rowcount", 0) != 1:
        _explain_refusal(session, incident_id, principal, action, assignee)
    row = IncidentActionRow(
        incident_id=incident_id,
        at=now,
        actor=principal.name,
        role=principal.role.value,
        action=action,
        text=(text or "").strip() or None,
        assignee=assignee if action == "assign" else None,
    )
    session.add(row)
    session.flush()
    status, revision = session.execute(
        select(IncidentRow.review_status, IncidentRow.revision).where(IncidentRow.incident_id == incident_id)
    ).one()
    return Acted(row, status, revision)


def _differs(assignee: str | None) -> ColumnElement[bool]:
    """Assigning the current assignee again changes nothing, so it is refused (409), not recorded."""
    if assignee is None:
        return IncidentRow.assignee.is_not(None)
    return or_(IncidentRow.assignee.is_(None), IncidentRow.assignee != assignee)


def _check_assignee(session: Session, incident_id: uuid.UUID, principal: Principal, assignee: str) -> None:
    incident = visible_incident(session, incident_id, principal)
    user = session.scalar(select(UserRow).where(UserRow.username == assignee))
    if user is None or user.disabled:
        raise Problem(422, "Unknown assignee", f"no enabled user is called {assignee!r}")
    if user.role not in ASSIGNABLE_ROLES:
        raise Problem(
            422,
            "Assignee cannot review",
            f"{assignee!r} has role {user.role!r}; alerts go to: {', '.join(ASSIGNABLE_ROLES)}",
        )
    if user.cameras is not None and incident.camera_id not in user.cameras:
        raise Problem(
            422, "Assignee cannot see this camera", f"{assignee!r} may not see {incident.camera_id}"
        )


def visible_incident(session: Session, incident_id: uuid.UUID, principal: Principal) -> IncidentRow:
    """The incident, or 404 when it does not exist or is on a camera the caller may not see."""
    row = session.get(IncidentRow, incident_id)
    if row is None or not principal.may_see(row.camera_id):
        raise not_found("incident", incident_id)
    return row


def _explain_refusal(
    session: Session, incident_id: uuid.UUID, principal: Principal, action: str, assignee: str | None
) -> None:
    row = visible_incident(session, incident_id, principal)
    session.refresh(row)
    allowed = TRANSITIONS[action].allowed_from
    if row.review_status not in allowed:
        raise Problem(
            409,
            "Review action not allowed",
            f"cannot {action} an incident that is {row.review_status}; {action} is allowed when it is "
            f"{' or '.join(allowed)}",
            extra={"review_status": row.review_status, "revision": row.revision},
        )
    if action == "assign" and row.assignee == assignee:
        detail = f"the incident is already assigned to {assignee}" if assignee else "it is not assigned"
        raise Problem(
            409,
            "Review action not allowed",
            detail,
            extra={"review_status": row.review_status, "revision": row.revision},
        )
    # Allowed now, so another reviewer changed it between our UPDATE and this read: let the caller retry.
    raise Problem(
        409,
        "Incident changed meanwhile",
        "another reviewer changed this incident at the same moment; reload it and try again",
        extra={"review_status": row.review_status, "revision": row.revision},
    )
