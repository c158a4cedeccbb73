"""Alert review through the API on SQLite and PostgreSQL: transitions, notes, assignment, the timeline,
revision bumps (review actions and the persister), the incident list's review filters, roles and
per-camera visibility. Data goes in through ``Persister.persist`` as the topics would bring it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient

from api import auth
from api.models import REVIEW_STATUSES
from api.persister import Persister
from api.review import TRANSITIONS
from api.schemas import ReviewStatus
from cctv.config import AuthSettings
from cctv.contracts import IncidentEvent
from evidence_store.custody import ActorRole
from tests.api_support import (
    ADMIN,
    CAM2_OPERATOR,
    LEGAL,
    OPERATOR,
    OPS,
    T0,
    authorize,
    camera_registry,
    incident,
    isolated_database,
    lifecycle,
    local_settings,
    open_alert,
    sealed_metadata,
)

pytestmark = pytest.mark.service


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


@dataclass
class Review:
    client: TestClient
    persister: Persister
    context: Any

    def act(self, incident_id: uuid.UUID, headers: dict[str, str] = OPERATOR, **body: Any) -> Any:
        return self.client.post(f"/api/v1/incidents/{incident_id}/actions", json=body, headers=headers)

    def get(self, incident_id: uuid.UUID) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/incidents/{incident_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def opened(self, camera_id: str = "cam1", threshold_at: datetime = T0) -> uuid.UUID:
        return open_alert(self.persister, camera_id, threshold_at)


def seed_review_principals(context: Any) -> None:
    """Users to assign alerts to (the API keys come from tests.api_support)."""
    now = datetime.now(UTC)
    with context.sessions.begin() as session:
        for username, role, cameras in (
            ("sam", ActorRole.OPERATOR, None),
            ("ada", ActorRole.ADMIN, None),
            ("jane", ActorRole.LEGAL, None),
            ("kim", ActorRole.OPERATOR, ["cam2"]),
        ):
            auth.create_user(
                session,
                AuthSettings(),
                username=username,
                display_name=username.title(),
                role=role,
                password="correct horse battery",
                cameras=cameras,
                created_by="tests",
                now=now,
            )


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Review]:
    from api.app import create_app

    settings = local_settings(tmp_path, db_url, feed_poll_s=0.1)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    with TestClient(app) as client:
        authorize(client)
        seed_review_principals(context)
        persister = Persister(
            context.sessions, None, None, settings.kafka, threading.Event(), context.metrics
        )
        yield Review(client, persister, context)


def problem(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["status"] == status
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


def test_review_states_match_the_schema() -> None:
    assert get_args(ReviewStatus) == REVIEW_STATUSES
    assert {t.to for t in TRANSITIONS.values()} - {None} <= set(REVIEW_STATUSES)


def test_transitions_allowed_and_refused(api: Review) -> None:
    incident_id = api.opened()
    before = api.get(incident_id)
    assert (before["review_status"], before["assignee"], before["revision"]) == ("new", None, 1)

    ack = api.act(incident_id, action="acknowledge", text="looking at camera 1")
    assert ack.status_code == 201, ack.text
    body = ack.json()
    assert set(body) == {
        "id",
        "incident_id",
        "at",
        "actor",
        "role",
        "action",
        "text",
        "assignee",
        "review_status",
        "revision",
    }
    assert (body["actor"], body["role"], body["action"], body["text"]) == (
        "Sam Patel",
        "operator",
        "acknowledge",
        "looking at camera 1",
    )
    assert (body["review_status"], body["revision"]) == ("acknowledged", 2)
    after = api.get(incident_id)
    assert (after["review_status"], after["revision"]) == ("acknowledged", 2)
    assert after["updated_at"] > before["updated_at"]

    refused = problem(api.act(incident_id, action="acknowledge"), 409, "acknowledged", "new")
    assert refused["review_status"] == "acknowledged" and refused["revision"] == 2
    assert api.act(incident_id, action="escalate").json()["review_status"] == "escalated"
    # Acknowledging an escalated alert would silently downgrade it.
    problem(
        api.act(incident_id, action="acknowledge"), 409, "cannot acknowledge an incident that is escalated"
    )
    problem(api.act(incident_id, action="escalate"), 409, "escalated")
    problem(api.act(incident_id, action="reopen"), 409, "dismissed or resolved")

    # A dismissal needs its reason (detector feedback): refused before any state is looked at.
    problem(api.act(incident_id, action="dismiss"), 422, "reason")
    problem(api.act(incident_id, action="dismiss", text="   "), 422)
    dismissed = api.act(incident_id, action="dismiss", text="a cleaner, not loitering")
    assert dismissed.status_code == 201 and dismissed.json()["review_status"] == "dismissed"
    assert dismissed.json()["text"] == "a cleaner, not loitering"

    # Finished: only reopen or a note.
    for action in ("acknowledge", "escalate", "resolve"):
        problem(api.act(incident_id, action=action), 409, "dismissed")
    problem(api.act(incident_id, action="dismiss", text="again"), 409, "dismissed")
    problem(api.act(incident_id, action="assign", assignee="sam"), 409, "dismissed")
    problem(api.act(incident_id, action="note"), 422, "text")
    note = api.act(incident_id, action="note", text="checked again with the supervisor")
    assert note.status_code == 201 and note.json()["review_status"] == "dismissed"

    reopened = api.act(incident_id, action="reopen", text="the same person came back").json()
    assert reopened["review_status"] == "new"
    resolved = api.act(incident_id, headers=ADMIN, action="resolve").json()  # straight from new
    assert (resolved["review_status"], resolved["actor"], resolved["role"]) == (
        "resolved",
        "Ada Admin",
        "admin",
    )
    assert resolved["revision"] == 7  # 1 (opened) + 6 accepted actions; refusals bump nothing
    assert api.get(incident_id)["revision"] == 7

    problem(api.act(incident_id, action="shout"), 422)
    problem(api.act(incident_id, action="note", text="x", extra=1), 422)
    problem(api.act(uuid.uuid4(), action="acknowledge"), 404)


def test_assign_and_unassign(api: Review) -> None:
    incident_id = api.opened()
    assigned = api.act(incident_id, action="assign", assignee="sam")
    assert assigned.status_code == 201, assigned.text
    assert (assigned.json()["assignee"], assigned.json()["review_status"]) == ("sam", "new")  # status kept
    assert api.get(incident_id)["assignee"] == "sam"
    problem(api.act(incident_id, action="assign", assignee="sam"), 409, "already assigned to sam")
    problem(api.act(incident_id, action="assign", assignee="nobody"), 422, "nobody")
    problem(api.act(incident_id, action="assign", assignee="jane"), 422, "legal")  # cannot review alerts
    problem(api.act(incident_id, action="assign", assignee="kim"), 422, "cam1")  # cannot see cam1
    problem(api.act(incident_id, action="assign"), 422, "assignee")  # the key must be there
    problem(api.act(incident_id, action="acknowledge", assignee="sam"), 422, "assign action only")

    assert api.act(incident_id, action="acknowledge").json()["assignee"] is None  # not an assignment
    assert api.get(incident_id)["assignee"] == "sam"
    assert api.act(incident_id, action="assign", assignee="ada").json()["assignee"] == "ada"
    unassigned = api.act(incident_id, action="assign", assignee=None)
    assert unassigned.status_code == 201 and unassigned.json()["assignee"] is None
    assert api.get(incident_id)["assignee"] is None
    problem(api.act(incident_id, action="assign", assignee=None), 409, "not assigned")

    cam2 = api.opened("cam2")
    assert api.act(cam2, action="assign", assignee="kim").json()["assignee"] == "kim"
    names = [a["username"] for a in api.client.get("/api/v1/alerts/assignees", headers=OPERATOR).json()]
    assert names == ["ada", "kim", "sam"]
    narrowed = api.client.get("/api/v1/alerts/assignees", headers=CAM2_OPERATOR).json()
    assert [a["username"] for a in narrowed] == ["ada", "kim", "sam"]  # all may see cam2
    assert api.client.get("/api/v1/alerts/assignees", headers=LEGAL).status_code == 403


def test_timeline_merges_lifecycle_evidence_and_review_in_time_order(api: Review) -> None:
    incident_id = uuid.uuid4()
    sealed = sealed_metadata(incident_id, sealed_at=T0 + timedelta(seconds=40), frame_count=3)
    api.persister.persist([*lifecycle(incident_id), sealed])  # events at T0, +5 s, +30 s
    for offset, headers, body in (
        (10, OPERATOR, {"action": "acknowledge"}),
        (35, OPERATOR, {"action": "assign", "assignee": "sam"}),
        (35, ADMIN, {"action": "note", "text": "police informed"}),
        (50, OPERATOR, {"action": "resolve", "text": "moved on"}),
    ):
        api.context.clock = lambda offset=offset: T0 + timedelta(seconds=offset)
        assert api.act(incident_id, headers, **body).status_code == 201

    timeline = api.client.get(f"/api/v1/incidents/{incident_id}/timeline").json()
    assert [(i["kind"], i["label"]) for i in timeline] == [
        ("lifecycle", "opened"),
        ("lifecycle", "updated"),
        ("review", "acknowledged"),
        ("lifecycle", "closed"),
        ("review", "assigned to sam"),
        ("review", "note"),
        ("evidence", "evidence sealed"),
        ("review", "resolved"),
    ]
    assert [datetime.fromisoformat(i["at"]) for i in timeline] == sorted(
        datetime.fromisoformat(i["at"]) for i in timeline
    )
    assert set(timeline[0]) == {"at", "kind", "label", "actor", "detail", "ref"}
    assert timeline[0]["detail"] == "person 7 opened in Doorway" and timeline[0]["actor"] is None
    assert (timeline[5]["actor"], timeline[5]["detail"]) == ("Ada Admin", "police informed")
    assert (timeline[6]["ref"], timeline[6]["detail"]) == (str(sealed.evidence_id), "3 frames")
    assert datetime.fromisoformat(timeline[2]["at"]) == T0 + timedelta(seconds=10)

    history = api.client.get(f"/api/v1/incidents/{incident_id}/actions").json()
    assert [(a["action"], a["review_status"], a["revision"]) for a in history] == [
        ("acknowledge", "acknowledged", None),
        ("assign", "acknowledged", None),
        ("note", "acknowledged", None),
        ("resolve", "resolved", None),
    ]
    assert history[1]["assignee"] == "sam" and history[3]["text"] == "moved on"
    assert history[2]["actor"] == "Ada Admin" and history[2]["role"] == "admin"


def test_revision_counts_every_change_and_not_redeliveries(api: Review) -> None:
    incident_id = uuid.uuid4()
    opened, updated, closed = lifecycle(incident_id)
    [first] = api.persister.persist([opened])
    assert first.changed and api.get(incident_id)["revision"] == 1
    [again] = api.persister.persist([opened])  # Kafka redelivery
    assert not again.changed and api.get(incident_id)["revision"] == 1
    api.persister.persist([updated])
    assert api.get(incident_id)["revision"] == 2
    assert api.act(incident_id, action="acknowledge").json()["revision"] == 3
    # The persister's update of the lifecycle columns keeps the review state and adds to the revision.
    api.persister.persist([closed, closed])
    row = api.get(incident_id)
    assert (row["status"], row["review_status"], row["revision"]) == ("closed", "acknowledged", 4)
    # A late, older "updated" is recorded (its event row), so the row changed and counts.
    late = incident(incident_id, IncidentEvent.UPDATED, event_at=T0 + timedelta(seconds=2))
    api.persister.persist([late])
    assert api.get(incident_id)["revision"] == 5 and api.get(incident_id)["status"] == "closed"

    # Evidence before its incident: the stub is revision 1, the lifecycle message filling it in is 2.
    early = uuid.uuid4()
    api.persister.persist([sealed_metadata(early, frame_count=3)])
    assert api.get(early)["revision"] == 1 and api.get(early)["status"] == "pending"
    api.persister.persist([incident(early, IncidentEvent.OPENED)])
    assert api.get(early)["revision"] == 2 and api.get(early)["status"] == "open"
    # The three messages of one batch are three changes.
    batch = uuid.uuid4()
    api.persister.persist(lifecycle(batch))
    assert api.get(batch)["revision"] == 3


def test_list_filters_review_status_assignee_zone_and_place(api: Review) -> None:
    a = api.opened("cam1", T0)
    b = api.opened("cam1", T0 + timedelta(minutes=1))
    c = api.opened("cam2", T0 + timedelta(minutes=2))
    d = api.opened("cam2", T0 + timedelta(minutes=3))
    api.act(b, action="escalate")
    api.act(c, action="dismiss", text="a fox")
    api.act(d, action="assign", assignee="kim")
    api.act(a, action="assign", assignee="sam")

    def ids(**params: Any) -> list[uuid.UUID]:
        response = api.client.get("/api/v1/incidents", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["items"])
        return [uuid.UUID(i["incident_id"]) for i in page["items"]]

    assert ids() == [d, c, b, a]
    assert ids(review_status=["new", "escalated"]) == [d, b, a]
    assert ids(review_status="dismissed") == [c]
    assert ids(assignee="sam") == [a]
    assert ids(assignee="kim", review_status="new") == [d]
    assert ids(zone_id="door") == [d, c, b, a] and ids(zone_id="gate") == []
    assert ids(place="bridge") == [b, a]  # cam1's location: High St / Bridge Rd
    assert ids(place="CAR PARK") == [d, c]  # cam2's name, any case
    assert ids(place="%") == [] and ids(place="_") == []  # literal, not LIKE wildcards
    assert ids(place="park", review_status="new") == [d]
    item = api.client.get("/api/v1/incidents", params={"place": "high"}).json()["items"][0]
    assert (item["camera_name"], item["camera_location"]) == ("High St", "High St / Bridge Rd")
    assert (item["review_status"], item["assignee"], item["revision"]) == ("escalated", None, 2)
    assert api.client.get("/api/v1/incidents", params={"review_status": "closed"}).status_code == 422


def test_roles_operators_act_legal_reads_ops_refused(api: Review) -> None:
    incident_id = api.opened()
    paths = [f"/api/v1/incidents/{incident_id}/{p}" for p in ("actions", "timeline")] + ["/api/v1/alerts"]
    for path in paths:
        assert api.client.get(path, headers=LEGAL).status_code == 200, path
        assert api.client.get(path, headers=OPERATOR).status_code == 200, path
        problem(api.client.get(path, headers=OPS), 403, "ops")
        no_credentials = api.client.get(path, headers={"Authorization": ""})
        assert no_credentials.status_code == 401, path
    problem(api.act(incident_id, LEGAL, action="note", text="legal may not triage"), 403, "legal")
    problem(api.act(incident_id, OPS, action="acknowledge"), 403, "ops")
    assert api.act(incident_id, ADMIN, action="acknowledge").status_code == 201
    assert api.act(incident_id, OPERATOR, action="escalate").status_code == 201
    assert len(api.client.get(f"/api/v1/incidents/{incident_id}/actions").json()) == 2


def test_cameras_a_principal_may_not_see_do_not_exist_for_them(api: Review) -> None:
    cam1, cam2 = api.opened("cam1"), api.opened("cam2", T0 + timedelta(minutes=1))
    for path in (
        f"/api/v1/incidents/{cam1}",
        f"/api/v1/incidents/{cam1}/actions",
        f"/api/v1/incidents/{cam1}/timeline",
    ):
        problem(api.client.get(path, headers=CAM2_OPERATOR), 404, str(cam1))
    problem(api.act(cam1, CAM2_OPERATOR, action="acknowledge"), 404, str(cam1))
    problem(api.act(cam1, CAM2_OPERATOR, action="note", text="hidden"), 404)
    assert api.get(cam1)["revision"] == 1  # nothing changed behind the 404

    assert api.act(cam2, CAM2_OPERATOR, action="acknowledge").status_code == 201
    listed = api.client.get("/api/v1/incidents", headers=CAM2_OPERATOR).json()
    assert [i["incident_id"] for i in listed["items"]] == [str(cam2)] and listed["total"] == 1
    alerts = api.client.get("/api/v1/alerts", headers=CAM2_OPERATOR).json()
    assert [i["incident_id"] for i in alerts["items"]] == [str(cam2)]
    everything = api.client.get("/api/v1/alerts", headers=OPERATOR).json()
    assert [i["incident_id"] for i in everything["items"]] == [str(cam2), str(cam1)]
