"""The FastAPI application: ``create_app`` builds one self-contained instance; ``run_api`` serves it.

Start-up (lifespan): migrate the schema to head, upsert the registry's cameras,
then start the persister thread and the custody checkpointer (a signed
checkpoint of every custody chain head to the WORM bucket every
``settings.api.custody_checkpoint_s`` when a head changed). If the database is
down at start-up the app still serves (``/readyz`` says why it is not ready)
while a background thread retries the bootstrap and then starts the persister.

Redaction jobs run in the app's own bounded executor (:mod:`api.redaction_jobs`):
stopping cancels queued jobs (marked failed) and start-up marks jobs a stopped
process left pending as failed. Share-link tokens travel in the URL path, so the
access log shows ``/api/v1/shared/<redacted>`` instead (:class:`ShareTokenFilter`).

The signing key is the evidence worker's (``load_signer``: the same key file);
without it the app does not start outside development, since it could neither
sign checkpoints nor publish the key that verifies the evidence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import uvicorn
from fastapi import APIRouter, FastAPI

from api import openapi
from api.camera_config import republish_newest
from api.checkpoints import run_checkpointer
from api.db import make_engine, make_sessions, run_migrations
from api.deps import AppContext
from api.metrics import ApiMetrics
from api.persister import MAX_BACKOFF_S, run_persister
from api.problems import install_problem_handlers
from api.redaction_jobs import RedactionRunner, fail_abandoned
from api.routers import (
    alerts,
    api_keys,
    auth,
    cameras,
    cases,
    custody,
    disclosures,
    evidence,
    exports,
    health,
    incident_actions,
    incidents,
    keys,
    ops,
    redactions,
    shares,
    users,
    webapp,
)
from api.shares import SHARED_PATH
from api.upserts import upsert_cameras
from cctv.config import CameraRegistry, Settings
from cctv.objectstore import make_client
from evidence_store.signing import load_signer

log = logging.getLogger(__name__)

# Every router the app serves; tests/test_access_matrix.py walks these to prove each route's access rule.
ROUTERS: tuple[APIRouter, ...] = (
    incidents.router,
    incident_actions.router,
    alerts.router,
    evidence.router,
    cases.router,
    custody.router,
    redactions.router,
    exports.router,
    shares.router,
    shares.public_router,
    disclosures.router,
    keys.router,
    cameras.router,
    health.router,
    ops.router,
    auth.router,
    users.router,
    api_keys.router,
    webapp.router,
)

THREAD_JOIN_S = 20.0
_SHARED_TOKEN = re.compile(re.escape(SHARED_PATH) + r"[^/?\s\"]+")


class ShareTokenFilter(logging.Filter):
    """Keeps share-link tokens (bearer secrets in the URL path) out of uvicorn's access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SHARED_TOKEN.sub(SHARED_PATH + "<redacted>", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True


def _install_token_filter() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, ShareTokenFilter) for f in access.filters):
        access.addFilter(ShareTokenFilter())


def bootstrap_database(context: AppContext) -> None:
    """Schema to head and cameras upserted; marks the schema ready for /readyz."""
    run_migrations(context.engine)
    with context.sessions.begin() as session:
        upsert_cameras(session, context.registry, datetime.now(UTC))
    with context.sessions() as session:
        fail_abandoned(session)
    republish_newest(context.sessions, context.settings.kafka, context.registry)  # never raises
    context.schema_ready.set()


def _background(context: AppContext, stop: threading.Event, start_persister: bool) -> None:
    """Retry the bootstrap until the database answers, then (optionally) persist until stopped."""
    backoff = 1.0
    while not context.schema_ready.is_set():
        try:
            bootstrap_database(context)
        except Exception as exc:
            log.error("database bootstrap failed (retry in %.0fs): %s", backoff, exc)
            if stop.wait(backoff):
                return
            backoff = min(3 * MAX_BACKOFF_S, backoff * 2)
    if start_persister:
        run_persister(context.settings, stop, engine=context.engine, metrics=context.metrics)


def create_app(settings: Settings, registry: CameraRegistry, *, start_persister: bool = True) -> FastAPI:
    """A new app with its own engine, store client, metrics registry and persister thread."""
    engine = make_engine(settings.api.database_url)
    context = AppContext(
        settings=settings,
        registry=registry,
        engine=engine,
        sessions=make_sessions(engine),
        store=make_client(settings.s3),
        metrics=ApiMetrics(),
        signer=load_signer(settings),
    )
    runner = RedactionRunner(context.sessions, context.store, settings, context.signer)
    context.redactions = runner
    _install_token_filter()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        context.stop = stop
        try:
            await asyncio.to_thread(bootstrap_database, context)
        except Exception as exc:
            log.error("database not ready at start-up, serving anyway and retrying: %s", exc)
        threads = [
            threading.Thread(
                target=run_checkpointer,
                args=(context.sessions, context.store, settings, context.signer, stop, context.schema_ready),
                name="custody-checkpointer",
                daemon=True,
            )
        ]
        if start_persister or not context.schema_ready.is_set():
            threads.append(
                threading.Thread(
                    target=_background,
                    args=(context, stop, start_persister),
                    name="api-persister",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            await asyncio.to_thread(runner.shutdown, THREAD_JOIN_S)
            for thread in threads:
                await asyncio.to_thread(thread.join, THREAD_JOIN_S)
                if thread.is_alive():
                    log.warning("%s thread did not stop within %.0fs", thread.name, THREAD_JOIN_S)
            engine.dispose()

    app = FastAPI(
        title="CCTV incidents API",
        version="0.1.0",
        summary=(
            "Incidents, sealed evidence with its custody log, cases, exports, share links, the "
            "disclosure log, redactions and camera health of the CCTV incident-flagging pipeline."
        ),
        lifespan=lifespan,
    )
    app.state.context = context
    install_problem_handlers(app)
    openapi.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


class _ThreadFriendlyServer(uvicorn.Server):
    """Installs no signal handlers: the caller's stop event (set by SIGTERM in the CLI) stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Serving:
    """An app under uvicorn in a thread of this process (tests, the benchmark)."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread


@contextlib.contextmanager
def serving(
    app: FastAPI,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    start_s: float = 60.0,
    graceful_s: float | None = 3.0,
) -> Iterator[Serving]:
    """``app`` on ``host:port`` (0: a free port) until the block ends; its lifespan runs as in `cctv api`.

    ``graceful_s``: how long stopping waits for open responses before cancelling them (None: for
    ever, which is how a test proves that streams end by themselves).
    """
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=None if graceful_s is None else int(graceful_s),
    )
    server = _ThreadFriendlyServer(config)
    thread = threading.Thread(target=server.run, name=f"api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {host}:{port} within {start_s:.0f}s")
        time.sleep(0.05)
    try:
        yield Serving(f"http://{host}:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(30)


def run_api(settings: Settings, registry: CameraRegistry, stop: threading.Event) -> None:
    """`cctv api`: serve on settings.api.host:port (with the persister) until ``stop`` is set."""
    app = create_app(settings, registry)
    config = uvicorn.Config(
        app, host=settings.api.host, port=settings.api.port, log_config=None, lifespan="on"
    )
    server = _ThreadFriendlyServer(config)

    def watch() -> None:
        stop.wait()
        # Ends open alert streams first: uvicorn waits for every response to finish before it shuts down.
        app.state.context.stop.set()
        server.should_exit = True

    threading.Thread(target=watch, name="api-stop-watch", daemon=True).start()
    if not stop.is_set():
        server.run()
    log.info("api stopped")
