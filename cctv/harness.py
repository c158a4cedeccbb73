"""Runs the real workers of the pipeline in threads against a (test or benchmark) stack.

End-to-end tests and `cctv bench` both need "the whole pipeline, for a
while": every worker's own ``run_*`` entry point (the same one `cctv ingest`
etc. call) in a thread with a shared stop event, and the API app with its
persister, queried through a real HTTP client that authenticates with an API
key of its own (``pipeline-harness``, role legal: it reads incidents and
downloads evidence, and its downloads are in the custody log under that name).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from cctv.config import CameraRegistry, Settings
from detector.worker import run_detector
from evidence_store.custody import ActorRole
from evidence_store.worker import run_evidence
from ingest.worker import run_ingest


@dataclass
class RunningPipeline:
    settings: Settings
    registry: CameraRegistry
    client: TestClient
    stop: threading.Event
    threads: list[threading.Thread] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def wait_for(self, what: str, probe: Callable[[], Any], timeout_s: float, every_s: float = 1.0) -> Any:
        """Poll ``probe`` until it returns something truthy; fail naming ``what`` and any worker crash."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.errors:
                raise AssertionError(f"a worker crashed while waiting for {what}: {self.errors[0]!r}")
            result = probe()
            if result:
                return result
            time.sleep(every_s)
        raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")

    def incidents(self, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get("/api/v1/incidents", params={"limit": 200, **params})
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@contextmanager
def running_pipeline(
    settings: Settings, registry: CameraRegistry, *, ingest: bool = True
) -> Iterator[RunningPipeline]:
    stop = threading.Event()
    app = create_app(settings, registry, start_persister=True)
    with TestClient(app) as client:
        with app.state.context.sessions.begin() as session:
            _row, key = auth.create_api_key(
                session,
                name=f"pipeline-harness-{uuid.uuid4().hex[:8]}",
                role=ActorRole.LEGAL,
                cameras=None,
                created_by="harness",
                now=app.state.context.clock(),
            )
        client.headers["Authorization"] = f"Bearer {key.token}"
        pipeline = RunningPipeline(settings, registry, client, stop)
        workers: list[tuple[str, Callable[[Settings, CameraRegistry, threading.Event], None]]] = [
            ("detector", run_detector),
            ("evidence", run_evidence),
        ]
        if ingest:
            workers.append(("ingest", run_ingest))
        for name, run in workers:
            thread = threading.Thread(target=_guard, args=(pipeline, run), name=name, daemon=True)
            thread.start()
            pipeline.threads.append(thread)
        try:
            yield pipeline
        finally:
            stop.set()
            for thread in pipeline.threads:
                thread.join(timeout=60)
            alive = [t.name for t in pipeline.threads if t.is_alive()]
            assert not alive, f"workers did not stop within 60s of the stop event: {alive}"


def _guard(
    pipeline: RunningPipeline, run: Callable[[Settings, CameraRegistry, threading.Event], None]
) -> None:
    try:
        run(pipeline.settings, pipeline.registry, pipeline.stop)
    except BaseException as exc:  # surfaced to the test by wait_for
        pipeline.errors.append(exc)
        raise
