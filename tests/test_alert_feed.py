"""The live alert feed on SQLite and PostgreSQL, served by a real uvicorn server on a free port.

The stream is read with httpx as a browser's EventSource would: a snapshot of the
active alerts, then each change pushed once per revision (a new incident from the
persister, an operator's acknowledge), only for cameras the caller may see. A
client that disconnects ends the server's generator (it logs its end and the
server then stops at once), the app's stop event ends open streams, `cctv api`'s
stop does too, and a revoked key ends its stream. Every wait is bounded by a
read timeout or a deadline; nothing sleeps to assert.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app, run_api, serving
from api.db import make_engine, make_sessions, run_migrations
from api.models import ApiKeyRow
from api.persister import Persister
from api.routers.alerts import KEEPALIVE_S
from cctv.config import Settings
from cctv.contracts import IncidentEvent
from tests.api_support import (
    CAM2_KEY_NAME,
    CAM2_OPERATOR,
    LEGAL,
    OPERATOR,
    OPS,
    T0,
    authorize,
    camera_registry,
    free_port,
    incident,
    isolated_database,
    local_settings,
    open_alert,
    seed_keys,
    with_database,
)

pytestmark = pytest.mark.service

READ_TIMEOUT_S = 10.0  # far above feed_poll_s: a change must arrive well within it
STOP_DEADLINE_S = 15.0


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread
    context: Any
    persister: Persister

    def opened(self, camera_id: str = "cam1", threshold_at: datetime = T0) -> uuid.UUID:
        return open_alert(self.persister, camera_id, threshold_at)

    def act(self, incident_id: uuid.UUID, headers: dict[str, str] = OPERATOR, **body: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/api/v1/incidents/{incident_id}/actions", json=body, headers=headers, timeout=10
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def stop_promptly(self) -> None:
        """Ask uvicorn to stop; it only can once every response (every stream) has ended."""
        self.server.should_exit = True
        self.thread.join(STOP_DEADLINE_S)
        assert not self.thread.is_alive(), "uvicorn still waits for a response to end: a stream is open"


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[Served]:
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    # graceful_s None: stopping waits for every open stream, so the stop tests prove streams end themselves
    with serving(app, graceful_s=None) as server:
        seed_keys(context.sessions)
        persister = Persister(
            context.sessions, None, None, settings.kafka, threading.Event(), context.metrics
        )
        yield Served(server.url, server.server, server.thread, context, persister)


@dataclass
class Event:
    event: str
    data: dict[str, Any]


class EventReader:
    """Server-Sent Events parsed from a streaming httpx response (comments kept apart)."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        self.lines = response.iter_lines()
        self.comments: list[str] = []
        self.ended = False

    def next(self) -> Event:
        """The next event; httpx raises ReadTimeout if none comes within the read timeout."""
        name, data = "message", []
        for line in self.lines:
            if line == "":
                if data:
                    return Event(name, json.loads("\n".join(data)))
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        self.ended = True
        raise EOFError("the stream ended")

    def incident(self) -> dict[str, Any]:
        event = self.next()
        assert event.event == "incident", event
        return event.data

    def until_end(self) -> list[Event]:
        """Every event left, until the server ends the stream."""
        rest = []
        with contextlib.suppress(EOFError):
            while True:
                rest.append(self.next())
        return rest


@contextlib.contextmanager
def stream(url: str, headers: dict[str, str], read_s: float = READ_TIMEOUT_S) -> Iterator[EventReader]:
    timeout = httpx.Timeout(10.0, read=read_s)
    with (
        httpx.Client(timeout=timeout) as client,
        client.stream("GET", f"{url}/api/v1/alerts/stream", headers=headers) as response,
    ):
        yield EventReader(response)


@pytest.fixture
def app_served(db_url: str, tmp_path: Path) -> Iterator[Served]:
    with served(local_settings(tmp_path, db_url, feed_poll_s=0.1)) as under_test:
        yield under_test


def test_snapshot_then_each_change_once_and_only_visible_cameras(app_served: Served) -> None:
    api = app_served
    a = api.opened("cam1", T0)
    d = api.opened("cam2", T0 + timedelta(minutes=1))
    b = api.opened("cam1", T0 + timedelta(minutes=2))
    api.act(b, action="dismiss", text="shadow of a tree")

    with stream(api.url, OPERATOR) as everything, stream(api.url, CAM2_OPERATOR) as cam2_only:
        snapshot = everything.next()
        assert snapshot.event == "snapshot" and set(snapshot.data) == {"items", "at"}
        assert [i["incident_id"] for i in snapshot.data["items"]] == [str(d), str(a)]  # newest alert first
        first = snapshot.data["items"][0]
        assert (first["review_status"], first["revision"], first["camera_name"]) == ("new", 1, "Car park")
        narrowed = cam2_only.next()
        assert narrowed.event == "snapshot"
        assert [i["incident_id"] for i in narrowed.data["items"]] == [str(d)]

        # Nothing changed since the snapshot is sent again; the new incident arrives without reconnecting.
        e = api.opened("cam1", T0 + timedelta(minutes=3))
        pushed = everything.incident()
        assert (pushed["incident_id"], pushed["revision"], pushed["review_status"]) == (str(e), 1, "new")
        assert pushed["camera_location"] == "High St / Bridge Rd"

        acked = api.act(e, action="acknowledge")
        pushed = everything.incident()
        assert (pushed["incident_id"], pushed["review_status"]) == (str(e), "acknowledged")
        assert pushed["revision"] == acked["revision"] == 2

        # A redelivered message changes nothing, so nothing is pushed for it: the next event is f's.
        api.persister.persist([incident(e, IncidentEvent.OPENED, threshold_at=T0 + timedelta(minutes=3))])
        f = api.opened("cam2", T0 + timedelta(minutes=4))
        assert everything.incident()["incident_id"] == str(f)
        # The cam2-only stream never saw e (cam1): its first change is f.
        assert cam2_only.incident()["incident_id"] == str(f)

        # A dismissal is pushed too, so a client can drop the alert from its list.
        api.act(d, action="dismiss", text="a delivery driver")
        for reader in (everything, cam2_only):
            gone = reader.incident()
            assert (gone["incident_id"], gone["review_status"], gone["revision"]) == (str(d), "dismissed", 2)

    # The JSON snapshot for clients without SSE says the same as a new stream would.
    alerts = httpx.get(f"{api.url}/api/v1/alerts", headers=OPERATOR, timeout=10).json()
    assert [i["incident_id"] for i in alerts["items"]] == [str(f), str(e), str(a)]
    with stream(api.url, OPERATOR) as again:
        assert [i["incident_id"] for i in again.next().data["items"]] == [str(f), str(e), str(a)]


def test_stream_roles(app_served: Served) -> None:
    url = f"{app_served.url}/api/v1/alerts/stream"
    assert httpx.get(url, headers=OPS, timeout=10).status_code == 403
    assert httpx.get(url, timeout=10).status_code == 401
    with stream(app_served.url, LEGAL) as legal:
        assert legal.next().event == "snapshot"


def test_disconnect_ends_the_servers_generator(app_served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="api.routers.alerts")
    with stream(app_served.url, OPERATOR) as reader:
        assert reader.next().event == "snapshot"
    # The client is gone: the generator's end is logged, and uvicorn, which waits for every open
    # response before stopping, stops at once.
    deadline = time.monotonic() + STOP_DEADLINE_S
    while not any("alert stream of Sam Patel closed" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the stream's generator did not end after the disconnect"
        time.sleep(0.05)
    app_served.stop_promptly()


def test_app_stop_ends_open_streams(app_served: Served) -> None:
    with stream(app_served.url, OPERATOR) as reader:
        assert reader.next().event == "snapshot"
        app_served.context.stop.set()  # what the app's shutdown (and `cctv api`'s stop) sets
        assert reader.until_end() == [] and reader.ended
    app_served.stop_promptly()


def test_a_revoked_key_ends_its_stream(app_served: Served) -> None:
    with stream(app_served.url, CAM2_OPERATOR, read_s=KEEPALIVE_S + 15) as reader:
        assert reader.next().event == "snapshot"
        with app_served.context.sessions.begin() as session:
            key = session.scalar(sqlalchemy.select(ApiKeyRow).where(ApiKeyRow.name == CAM2_KEY_NAME))
            assert key is not None
            key.revoked_at = datetime.now(UTC)
        # Re-checked every KEEPALIVE_S: the stream ends (an EventSource reconnecting then gets 401).
        assert [e.event for e in reader.until_end()] == []
    assert httpx.get(f"{app_served.url}/api/v1/alerts", headers=CAM2_OPERATOR, timeout=10).status_code == 401


def test_json_snapshot_is_active_visible_newest_first_and_capped(db_url: str, tmp_path: Path) -> None:
    settings = local_settings(tmp_path, db_url, feed_poll_s=0.1)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    with TestClient(app) as client:
        authorize(client, OPERATOR)
        persister = Persister(
            context.sessions, None, None, settings.kafka, threading.Event(), context.metrics
        )
        ids = [uuid.uuid4() for _ in range(103)]
        persister.persist(
            [
                incident(
                    i,
                    IncidentEvent.OPENED,
                    camera_id="cam2" if n % 2 else "cam1",
                    threshold_at=T0 + timedelta(minutes=n),
                )
                for n, i in enumerate(ids)
            ]
        )
        newest, second = ids[-1], ids[-2]
        assert (
            client.post(f"/api/v1/incidents/{newest}/actions", json={"action": "resolve"}).status_code == 201
        )
        assert (
            client.post(f"/api/v1/incidents/{second}/actions", json={"action": "escalate"}).status_code == 201
        )
        body = client.get("/api/v1/alerts").json()
        assert set(body) == {"items", "at"}
        items = body["items"]
        assert len(items) == 100 and items[0]["incident_id"] == str(second)  # resolved one left out
        assert items[0]["review_status"] == "escalated"
        assert [i["incident_id"] for i in items] == [str(i) for i in reversed(ids[:-1])][:100]
        cam2 = client.get("/api/v1/alerts", headers=CAM2_OPERATOR).json()["items"]
        assert {i["camera_id"] for i in cam2} == {"cam2"} and len(cam2) == 51


def test_cctv_api_stop_ends_open_streams(settings: Settings, tmp_path: Path, unique: str) -> None:
    """`cctv api` (run_api) as deployed: its stop event must end an open stream, or uvicorn would wait."""
    url = f"sqlite:///{tmp_path / 'cctv.db'}"
    base = with_database(settings, url, group_id=f"api-{unique}")
    port = free_port()
    served_settings = base.model_copy(
        update={"api": base.api.model_copy(update={"port": port, "feed_poll_s": 0.1})}
    )
    engine = make_engine(url)
    run_migrations(engine)  # what run_api does first (idempotent), so the test's keys can go in now
    seed_keys(make_sessions(engine))
    stop = threading.Event()
    thread = threading.Thread(target=run_api, args=(served_settings, camera_registry(), stop), daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert thread.is_alive() and time.monotonic() < deadline, "the API did not start serving"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        with stream(base_url, OPERATOR) as reader:
            assert reader.next().event == "snapshot"
            stop.set()
            assert reader.until_end() == []
        thread.join(STOP_DEADLINE_S + 20)  # the persister and checkpointer threads stop too
        assert not thread.is_alive(), "run_api did not stop with an alert stream open"
    finally:
        stop.set()
        thread.join(30)
        engine.dispose()
