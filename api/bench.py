"""`cctv bench --only api`: what logins and the live feed cost, measured in one run.

- argon2id: one password check (the price of a login, and the brake on guessing);
- per-request authentication: the same app's public route against a route that
  resolves a login token, and one that resolves an API key (medians, and the
  ratio to the public route);
- live feed delivery: an incident persisted (as the persister does) until its
  event is read from ``/api/v1/alerts/stream`` over real HTTP, at the default
  ``feed_poll_s`` and at a short one (p50 / p95).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app, serving
from api.deps import AppContext
from api.persister import Persister
from cctv.bench import Result, percentile
from cctv.config import Camera, CameraRegistry, Settings
from cctv.contracts import DetectorInfo, FrameSpan, IncidentEvent, IncidentMessage
from evidence_store.custody import ActorRole

PASSWORD = "bench password, long enough"  # noqa: S105 - a throwaway account in a temporary database
REGISTRY = CameraRegistry(cameras=(Camera(id="bench-cam", name="Bench camera", source="sim://walkers"),))
DETECTOR = DetectorInfo(backend="hog", model_name="opencv-hog", weights_sha256=None, thresholds={})
FAST_POLL_S = 0.2


def _app_settings(settings: Settings, name: str, feed_poll_s: float | None = None) -> Settings:
    update: dict[str, object] = {"database_url": f"sqlite:///{settings.data_dir / f'{name}.db'}"}
    if feed_poll_s is not None:
        update["feed_poll_s"] = feed_poll_s
    evidence = settings.evidence.model_copy(update={"signing_key_path": settings.data_dir / "bench-api.key"})
    return settings.model_copy(update={"api": settings.api.model_copy(update=update), "evidence": evidence})


def _credentials(context: AppContext) -> tuple[dict[str, str], dict[str, str]]:
    """Headers of a logged-in operator (session token) and of an operator API key."""
    now = datetime.now(UTC)
    with context.sessions.begin() as session:
        user = auth.create_user(
            session,
            context.settings.api.auth,
            username=f"bench-{uuid.uuid4().hex[:6]}",
            display_name="Bench",
            role=ActorRole.OPERATOR,
            password=PASSWORD,
            cameras=None,
            created_by="bench",
            now=now,
        )
        _row, key = auth.create_api_key(
            session,
            name=f"bench-{uuid.uuid4().hex[:6]}",
            role=ActorRole.OPERATOR,
            cameras=None,
            created_by="bench",
            now=now,
        )
        _user, login = auth.login(
            session, context.settings.api.auth, user.username, PASSWORD, now=now, client=None
        )
    return {"Authorization": f"Bearer {login.token}"}, {"Authorization": f"Bearer {key.token}"}


def _median_ms(call: Callable[[], object], count: int) -> float:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def bench_auth(settings: Settings, count: int) -> list[Result]:
    hasher = PasswordHasher()
    stored = hasher.hash(PASSWORD)
    verify_ms = _median_ms(lambda: hasher.verify(stored, PASSWORD), max(3, count // 50))
    results = [Result("api", "argon2id password check", verify_ms, "ms", "per login attempt")]
    app = create_app(_app_settings(settings, "bench-auth"), REGISTRY, start_persister=False)
    with TestClient(app) as client:
        token, key = _credentials(app.state.context)
        client.get("/healthz")  # warm
        public = _median_ms(lambda: client.get("/healthz"), count)
        with_token = _median_ms(lambda: client.get("/api/v1/auth/me", headers=token), count)
        with_key = _median_ms(lambda: client.get("/api/v1/auth/me", headers=key), count)
    results += [
        Result("api", "public request (/healthz)", public, "ms", "median, in-process"),
        Result("api", "request with login token", with_token, "ms", f"{with_token / public:.2f}x public"),
        Result("api", "request with API key", with_key, "ms", f"{with_key / public:.2f}x public"),
    ]
    return results


def _opened(incident_id: uuid.UUID) -> IncidentMessage:
    now = datetime.now(UTC)
    return IncidentMessage(
        incident_id=incident_id,
        event=IncidentEvent.OPENED,
        camera_id="bench-cam",
        rule="loitering",
        zone_id="bench",
        track_ids=(1,),
        started_at=now,
        threshold_at=now,
        event_at=now,
        dwell_s=30.0,
        summary="bench alert",
        boxes=(),
        frames=FrameSpan(partition=0, start_offset=0, end_offset=0),
        detector=DETECTOR,
    )


def bench_feed(settings: Settings, count: int, feed_poll_s: float | None) -> list[float]:
    """Seconds from persisting each of ``count`` incidents to reading its event off the stream."""
    app = create_app(
        _app_settings(settings, f"bench-feed-{feed_poll_s}", feed_poll_s), REGISTRY, start_persister=False
    )
    context = app.state.context
    persister = Persister(context.sessions, None, None, settings.kafka, threading.Event(), context.metrics)
    delays: list[float] = []
    with serving(app) as served:
        token, _key = _credentials(context)
        timeout = httpx.Timeout(10.0, read=30.0)
        with httpx.stream(
            "GET", f"{served.url}/api/v1/alerts/stream", headers=token, timeout=timeout
        ) as stream:
            lines = stream.iter_lines()
            pending: dict[str, float] = {}

            def next_event() -> tuple[str, dict[str, object]]:
                name, data = "message", ""
                for line in lines:
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:"):
                        data += line.split(":", 1)[1].strip()
                    elif line == "" and data:
                        return name, json.loads(data)
                raise RuntimeError("the alert stream ended")

            assert next_event()[0] == "snapshot"
            for _ in range(count):
                incident_id = uuid.uuid4()
                pending[str(incident_id)] = time.perf_counter()
                persister.persist([_opened(incident_id)])
                while str(incident_id) in pending:
                    name, data = next_event()
                    sent = pending.pop(str(data.get("incident_id")), None)
                    if name == "incident" and sent is not None:
                        delays.append(time.perf_counter() - sent)
            context.stop.set()  # ends the stream so the server can stop
    return delays


def bench_api(settings: Settings, quick: bool) -> list[Result]:
    results = bench_auth(settings, 100 if quick else 400)
    count = 8 if quick else 30
    for poll in (None, FAST_POLL_S):
        delays = bench_feed(settings, count, poll)
        label = f"feed_poll_s {settings.api.feed_poll_s if poll is None else poll:g}"
        results += [
            Result(
                "api",
                f"alert persisted -> on screen p50 ({label})",
                percentile(delays, 50),
                "s",
                f"{count} alerts",
            ),
            Result(
                "api",
                f"alert persisted -> on screen p95 ({label})",
                percentile(delays, 95),
                "s",
                "SSE over HTTP",
            ),
        ]
    return results
