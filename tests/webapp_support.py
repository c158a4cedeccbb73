"""The web app under a real browser: the whole API served by uvicorn on a free port, real users.

:func:`served_app` runs the app exactly as ``cctv api`` does (uvicorn, lifespan, migrations, the
web app's static files) in a thread of the test process, on a private database and the session's
S3 store, without the Kafka persister thread: the test persists messages itself through a
:class:`Persister` on the app's own database, as the persister thread would.
:func:`browser` launches the machine's Chromium (Debian's package) through Playwright; nothing is
downloaded. Every page's requests are confined to the server: any other origin is aborted and
recorded, and the test fails on it.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from api import auth
from api.app import create_app, serving
from api.models import IncidentRow
from api.persister import Persister
from cctv.config import Settings
from cctv.contracts import Box, IncidentEvent
from evidence_store.custody import ActorRole
from tests.api_support import (
    WALKERS_FIRST,
    SimSealed,
    camera_registry,
    incident,
    seal_sim,
    seed_keys,
    status,
    with_database,
)
from tests.bundle_support import first_frame

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
USERS = {
    "olivia": ("Olivia Operator", ActorRole.OPERATOR),
    "lena": ("Lena Legal", ActorRole.LEGAL),
    "omar": ("Omar Ops", ActorRole.OPS),
    "ada": ("Ada Admin", ActorRole.ADMIN),
}


def snapshot_jpeg(label: str, shade: int = 70) -> bytes:
    """A 640x360 'annotated snapshot': a street-grey frame with the zone and a person's box drawn."""
    image = np.full((360, 640, 3), shade, dtype=np.uint8)
    cv2.rectangle(image, (0, 250), (640, 360), (55, 55, 60), -1)
    zone = np.array([[64, 36], [576, 36], [320, 324]], dtype=np.int32)
    cv2.polylines(image, [zone], True, (0, 215, 255), 2)
    cv2.rectangle(image, (280, 120), (340, 300), (0, 0, 255), 2)
    cv2.putText(image, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


@dataclass
class ServedApp:
    """The app serving on ``base_url``, its persister, and helpers to seed what a page shows."""

    base_url: str
    settings: Settings
    context: Any
    persister: Persister
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=30)

    def api(self, method: str, path: str, who: dict[str, str], **kw: Any) -> httpx.Response:
        """A call as one of the test API keys (tests.api_support.LEGAL, OPERATOR, ...)."""
        return self.client.request(method, path, headers=who, **kw)

    def open_incident(
        self, *, camera_id: str = "cam1", minutes_ago: float = 1.0, summary: str = "person 7 loitering"
    ) -> uuid.UUID:
        """A new loitering alert (opened only), as the detector publishes it."""
        incident_id = uuid.uuid4()
        at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        message = incident(
            incident_id,
            IncidentEvent.OPENED,
            camera_id=camera_id,
            threshold_at=at,
            snapshot=snapshot_jpeg(f"{camera_id} {at:%H:%M:%S}"),
        )
        self.persister.persist([message.model_copy(update={"boxes": (person_box(),), "summary": summary})])
        return incident_id

    def sealed_incident(self, *, first: int = WALKERS_FIRST, count: int = 4) -> SimSealed:
        """A closed incident on cam2 with real evidence: the sim's frames sealed as the evidence worker
        seals them (master, H.264 working copy, signed manifest, COMPLIANCE-locked), and the
        detector's annotated snapshot (the first frame with the person's box) on the incident."""
        sealed = seal_sim(self, first=first, count=count)  # type: ignore[arg-type]  # an ApiUnderTest's parts
        frame = cv2.imdecode(np.frombuffer(first_frame(sealed.package), np.uint8), cv2.IMREAD_COLOR)
        for box in sealed.opened.boxes:
            cv2.rectangle(frame, (int(box.x1), int(box.y1)), (int(box.x2), int(box.y2)), (0, 0, 255), 2)
        ok, snapshot = cv2.imencode(".jpg", frame)
        assert ok
        with self.context.sessions.begin() as session:
            row = session.get(IncidentRow, sealed.opened.incident_id)
            row.snapshot, row.has_snapshot = snapshot.tobytes(), True
        return sealed

    def heartbeat(self) -> None:
        self.persister.persist([status("cam1"), status("cam2", fps=4.8)])


def person_box() -> Box:
    return Box(x1=280, y1=120, x2=340, y2=300, confidence=0.87, track_id=7)


def create_users(context: Any, settings: Settings) -> None:
    with context.sessions.begin() as session:
        for username, (display, role) in USERS.items():
            auth.create_user(
                session,
                settings.api.auth,
                username=username,
                display_name=display,
                role=role,
                password=PASSWORD,
                cameras=None,
                created_by="tests",
                now=datetime.now(UTC),
            )


@contextlib.contextmanager
def served_app(settings: Settings, url: str) -> Iterator[ServedApp]:
    """The real app under uvicorn on 127.0.0.1:<free port> until the block ends."""
    settings = with_database(settings, url)
    app = create_app(settings, camera_registry(), start_persister=False)
    context = app.state.context
    with serving(app) as server:
        assert context.schema_ready.is_set(), "the database was not migrated at start-up"
        seed_keys(context.sessions)
        create_users(context, settings)
        persister = Persister(
            context.sessions, None, None, settings.kafka, threading.Event(), context.metrics
        )
        served = ServedApp(server.url, settings, context, persister)
        try:
            yield served
        finally:
            served.client.close()


# --------------------------------------------------------------------------- the browser


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no browser: {CHROMIUM} is missing (Debian's chromium package; scripts/install-browser.sh)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")


@contextlib.contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageLog:
    """What a page did that a test checks: requests to other origins, API answers, script errors."""

    foreign: list[str] = field(default_factory=list)
    responses: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def statuses(self, path_prefix: str) -> list[int]:
        return [code for _method, path, code in self.responses if path.startswith(path_prefix)]


@contextlib.contextmanager
def page_on(chromium: Any, served: ServedApp) -> Iterator[tuple[Any, PageLog]]:
    """A fresh browser context (own cookies) and page, confined to the server's origin."""
    log = PageLog()
    context = chromium.new_context(
        base_url=served.base_url,
        viewport={"width": 1440, "height": 900},
        timezone_id="Europe/London",
        locale="en-GB",
        service_workers="block",
    )
    origin = served.base_url.rstrip("/") + "/"

    def refuse(route: Any) -> None:
        log.foreign.append(route.request.url)
        route.abort()

    # Only URLs outside the server's origin are intercepted (its own requests are left alone).
    context.route(re.compile(r"^(?!" + re.escape(origin) + r")(?!data:|blob:).*"), refuse)
    page = context.new_page()
    page.on(
        "response",
        lambda r: log.responses.append((r.request.method, httpx.URL(r.url).path, r.status)),
    )
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    try:
        yield page, log
    finally:
        context.close()
    assert not log.foreign, f"the page tried to leave the server: {log.foreign}"
    assert not log.page_errors, f"uncaught script errors: {log.page_errors}"
    csp = [m for m in log.console_errors if "Content Security Policy" in m]
    assert not csp, f"Content-Security-Policy violations: {csp}"


def log_in(page: Any, username: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
