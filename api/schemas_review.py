"""Request and response models of alert review, the incident timeline and the live alert feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from api.review import TEXT_REQUIRED, ReviewAction
from api.schemas import In, IncidentOut, ReviewStatus

ReviewText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class IncidentActionIn(In):
    action: ReviewAction = Field(
        description="acknowledge, escalate, dismiss, resolve, reopen, assign or note (see api.review)"
    )
    text: ReviewText | None = Field(
        default=None,
        description="the reason (required to dismiss: detector feedback), the note, or a comment",
    )
    assignee: Username | None = Field(
        default=None, description="assign only: the username to assign to, or null to unassign"
    )

    @model_validator(mode="after")
    def _fields_fit_the_action(self) -> IncidentActionIn:
        if self.action in TEXT_REQUIRED and self.text is None:
            raise ValueError(
                "dismiss needs a reason in 'text'" if self.action == "dismiss" else "note needs 'text'"
            )
        # Explicit null unassigns, so for assign the key must be present (an omitted key is a mistake).
        if self.action == "assign" and "assignee" not in self.model_fields_set:
            raise ValueError("assign needs 'assignee' (a username, or null to unassign)")
        if self.action != "assign" and "assignee" in self.model_fields_set:
            raise ValueError("'assignee' is for the assign action only")
        return self


class IncidentActionOut(BaseModel):
    id: int
    incident_id: uuid.UUID
    at: datetime
    actor: str = Field(description="who acted (user name or API key name)")
    role: str
    action: ReviewAction
    text: str | None
    assignee: str | None = Field(description="assign: the new assignee (null: unassigned)")
    review_status: ReviewStatus = Field(description="the incident's review status after this action")
    revision: int | None = Field(
        description="the incident's revision after this action (in a POST answer; null in the history, "
        "which does not keep it)"
    )


TimelineKind = Literal["lifecycle", "review", "evidence"]


class TimelineItemOut(BaseModel):
    at: datetime
    kind: TimelineKind = Field(
        description="lifecycle: a detector event; review: an operator's action; evidence: a sealed item"
    )
    label: str = Field(description="short text: opened, acknowledged, assigned to sam, evidence sealed, ...")
    actor: str | None = Field(default=None, description="review: who acted")
    detail: str | None = Field(default=None, description="summary, note or reason, or the evidence's frames")
    ref: str | None = Field(default=None, description="evidence: the evidence id; review: the action id")


class AlertSnapshotOut(BaseModel):
    items: list[IncidentOut] = Field(
        description="active alerts (new, acknowledged, escalated) of visible cameras, newest alert first, "
        "at most 100"
    )
    at: datetime = Field(description="when the snapshot was read")


class AssigneeOut(BaseModel):
    username: str
    display_name: str
    role: str
