"""Camera settings edited in the API and applied by a running detector; the cameras wall's newest frame.

Real broker, real databases (SQLite and PostgreSQL), real detector (HOG) on simulated cameras: an edit
is validated like the registry file, stored as a new version, published on the camera-config topic,
and the detector that is already running uses the new zone from its next frames.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from kafka import TopicPartition

from api import auth
from api.app import create_app
from api.camera_config import frame_partition
from api.models import CameraConfigRow
from cctv.bus import DeadLetterSink, ensure_topics, make_consumer, make_producer, send
from cctv.config import Camera, CameraRegistry, DetectorSettings, KafkaSettings, Settings
from cctv.contracts import CameraSettingsChanged, IncidentEvent, IncidentMessage, decode
from cctv.rule_config import ClassifierRuleConfig, Zone
from detector.backends import HogBackend
from detector.backends.base import DetectorConfigError
from detector.camera_settings import CameraSettingsFeed
from detector.pipeline import DetectorPipeline, FrameInput
from detector.worker import DetectorWorker, IncidentSink
from evidence_store.custody import ActorRole
from ingest.sim import scripted_frames
from tests.api_support import (
    ADMIN,
    LEGAL,
    OPERATOR,
    OPS,
    api_under_test,
    authorize,
    free_port,
    isolated_database,
    status,
    with_database,
)

pytestmark = pytest.mark.service

DOOR = {"id": "door", "name": "Doorway", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]}
BENCH = {
    "id": "bench",
    "name": "Bench",
    "polygon": [[0.30, 0.60], [0.70, 0.60], [0.70, 0.98], [0.30, 0.98]],
    "rules": {"loitering": {"dwell_s": 4.0, "reentry_grace_s": 1.0}},
}
CORNER = {  # nobody in the sim scenes ever stands here
    "id": "corner",
    "polygon": [[0.0, 0.0], [0.15, 0.0], [0.15, 0.15], [0.0, 0.15]],
    "rules": {"loitering": {"dwell_s": 2.0}},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


def topic_messages(
    kafka: KafkaSettings, expected: int, timeout_s: float = 30.0
) -> list[CameraSettingsChanged]:
    """The camera-config topic from the beginning, until ``expected`` messages were read."""
    consumer = make_consumer(kafka, "test-config-reader", None)
    try:
        partitions = consumer.partitions_for_topic(kafka.camera_config_topic) or {0}
        tps = [TopicPartition(kafka.camera_config_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: list[CameraSettingsChanged] = []
        deadline = time.monotonic() + timeout_s
        while len(found) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found += [decode(CameraSettingsChanged, r.value) for r in records]
        return found
    finally:
        consumer.close()


def versions(client: TestClient, camera_id: str) -> list[int]:
    with client.app.state.context.sessions() as session:  # type: ignore[attr-defined]
        return list(
            session.scalars(
                sqlalchemy.select(CameraConfigRow.version)
                .where(CameraConfigRow.camera_id == camera_id)
                .order_by(CameraConfigRow.version)
            )
        )


def add_key(client: TestClient, name: str, role: str, cameras: list[str]) -> dict[str, str]:
    """An API key that sees only ``cameras``."""
    secret = f"cctv_k_test-{uuid.uuid4().hex}{uuid.uuid4().hex}"
    with client.app.state.context.sessions.begin() as session:  # type: ignore[attr-defined]
        auth.create_api_key(
            session,
            name=name,
            role=ActorRole(role),
            cameras=cameras,
            created_by="tests",
            now=datetime.now(UTC),
            secret=secret,
        )
    return {"Authorization": f"Bearer {secret}"}


def error_locs(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [".".join(str(p) for p in e["loc"]) for e in response.json()["errors"]]


def test_settings_are_versioned_validated_published_and_only_ops_edit(
    settings: Settings, db_url: str
) -> None:
    with api_under_test(settings, db_url) as api:
        client = api.client
        first = client.get("/api/v1/cameras/cam1/settings", headers=OPERATOR)
        assert first.status_code == 200, first.text
        assert first.json() == {
            "camera_id": "cam1",
            "version": 0,
            "settings": {"zones": [{**DOOR, "rules": {"loitering": None, "area_change": None,
                                                      "object_removed": None}}],
                         "tamper": None, "classifier": None},
            "created_at": None,
            "created_by": None,
            "reason": None,
        }  # fmt: skip
        edit = {
            "settings": {"zones": [DOOR, BENCH], "tamper": {"hold_s": 5}},
            "reason": "bench added after complaints",
            "expected_version": 0,
        }
        assert client.put("/api/v1/cameras/cam1/settings", json=edit, headers=LEGAL).status_code == 403
        assert client.get("/api/v1/cameras/cam1/settings/history", headers=LEGAL).status_code == 403
        assert client.get("/api/v1/cameras/cam1/settings/history", headers=OPERATOR).status_code == 200

        saved = client.put("/api/v1/cameras/cam1/settings", json=edit, headers=OPS)
        assert saved.status_code == 200, saved.text
        body = saved.json()
        assert (body["version"], body["created_by"], body["reason"]) == (1, "Olu Okafor", edit["reason"])
        assert [z["id"] for z in body["settings"]["zones"]] == ["door", "bench"]
        assert body["settings"]["zones"][1]["rules"]["loitering"]["dwell_s"] == 4.0
        assert body["settings"]["tamper"]["hold_s"] == 5.0
        assert body["settings"]["tamper"]["warmup_s"] == 5.0  # the file's defaults fill in
        assert versions(client, "cam1") == [1]
        (message,) = topic_messages(api.settings.kafka, 1)
        assert (message.camera_id, message.version, message.changed_by) == ("cam1", 1, "Olu Okafor")
        assert message.settings == body["settings"]

        # Someone saved meanwhile: an edit started from version 0 is refused, nothing stored.
        conflict = client.put("/api/v1/cameras/cam1/settings", json=edit, headers=OPS)
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["current_version"] == 1

        bad_point = {**BENCH, "polygon": [[0.3, 0.6], [1.5, 0.6], [0.7, 0.98]]}
        two_points = {**BENCH, "polygon": [[0.3, 0.6], [0.7, 0.6]]}
        bad_dwell = {**BENCH, "rules": {"loitering": {"dwell_s": -1}}}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"zones": [bad_point]}, "body.settings.zones.0.polygon.1.0"),
            ({"zones": [two_points]}, "body.settings.zones.0.polygon"),
            ({"zones": [bad_dwell]}, "body.settings.zones.0.rules.loitering.dwell_s"),
            ({"zones": [], "tamper": {"detail_lost_ratio": 1.5}}, "body.settings.tamper.detail_lost_ratio"),
            ({"zones": [], "source": "rtsp://elsewhere/"}, "body.settings.source"),  # not editable here
            ({"zones": [], "classifier": {"labels": ["graffiti", "graffiti"]}}, "body.settings.classifier"),
        ]
        for bad, loc in cases:
            response = client.put(
                "/api/v1/cameras/cam1/settings", json={"settings": bad, "reason": "x"}, headers=OPS
            )
            assert loc in error_locs(response), (loc, response.json())
        # Only the whole camera's validators catch this one: the edit is checked as the registry file is.
        dupes = client.put(
            "/api/v1/cameras/cam1/settings",
            json={"settings": {"zones": [BENCH, BENCH]}, "reason": "x"},
            headers=OPS,
        )
        assert "body.settings" in error_locs(dupes)
        assert "duplicate zone ids: bench" in dupes.json()["detail"]
        assert versions(client, "cam1") == [1]

        again = client.put(
            "/api/v1/cameras/cam1/settings",
            json={"settings": {"zones": [BENCH]}, "reason": "door zone retired", "expected_version": 1},
            headers=ADMIN,
        )
        assert again.status_code == 200, again.text
        assert again.json()["version"] == 2
        assert [m.version for m in topic_messages(api.settings.kafka, 2)] == [1, 2]
        now = client.get("/api/v1/cameras/cam1/settings", headers=LEGAL).json()
        assert (now["version"], [z["id"] for z in now["settings"]["zones"]]) == (2, ["bench"])
        history = client.get("/api/v1/cameras/cam1/settings/history", headers=OPS).json()
        assert [(h["version"], h["created_by"]) for h in history] == [
            (2, "Ada Admin"),
            (1, "Olu Okafor"),
            (0, None),
        ]

        # The cameras list shows the zones in force, the version, and whether the camera streams.
        cameras = {c["id"]: c for c in client.get("/api/v1/cameras", headers=OPS).json()}
        assert (cameras["cam1"]["settings_version"], cameras["cam2"]["settings_version"]) == (2, 0)
        assert [z["id"] for z in cameras["cam1"]["zones"]] == ["bench"]
        assert (cameras["cam1"]["online"], cameras["cam1"]["lag_s"]) == (False, None)
        api.persister.persist([status("cam1")])
        one = client.get("/api/v1/cameras/cam1", headers=OPERATOR).json()
        assert one["online"] is True and one["settings_version"] == 2
        assert 0 <= one["lag_s"] < 600

        # Per-camera visibility: a camera the caller may not see does not exist for them.
        cam2_ops = add_key(client, "cam2 ops", "ops", ["cam2"])
        assert client.get("/api/v1/cameras/cam1/settings", headers=cam2_ops).status_code == 404
        assert client.put("/api/v1/cameras/cam1/settings", json=edit, headers=cam2_ops).status_code == 404
        assert client.get("/api/v1/cameras/cam1/settings/history", headers=cam2_ops).status_code == 404
        assert [c["id"] for c in client.get("/api/v1/cameras", headers=cam2_ops).json()] == ["cam2"]
        assert client.get("/api/v1/cameras/nope/settings", headers=OPS).status_code == 404


def test_a_version_not_published_stays_stored_and_is_published_when_the_api_starts(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    down = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{free_port()}"})}
    )
    edit = {"settings": {"zones": [BENCH]}, "reason": "bench added"}
    with isolated_database("sqlite", tmp_path, request) as url:
        with api_under_test(down, url) as api:
            response = api.client.put("/api/v1/cameras/cam2/settings", json=edit, headers=OPS)
            assert response.status_code == 503, response.text
            assert response.json()["version"] == 1
            assert api.client.get("/api/v1/cameras/cam2/settings").json()["version"] == 1
        with api_under_test(settings, url):  # the broker is back: start-up publishes the newest versions
            (message,) = topic_messages(settings.kafka, 1)
        assert (message.camera_id, message.version) == ("cam2", 1)
        assert [z["id"] for z in message.settings["zones"]] == ["bench"]


def test_newest_frame_of_a_camera_is_its_jpeg_from_the_frames_topic(settings: Settings, db_url: str) -> None:
    ensure_topics(settings.kafka)
    producer = make_producer(settings.kafka, "test-ingest")
    frames = scripted_frames(Camera(id="cam2", name="Car park", source="sim://walkers?seed=5"), 1.0)
    futures = [send(producer, settings.kafka.frames_topic, f.camera_id, f) for f in frames]
    # Another camera on the same partition keeps streaming after it: the newest cam2 frame is
    # further back than the first window the API reads.
    partitions = set(range(settings.kafka.frames_partitions))
    other = next(
        c
        for c in (f"cam{i}" for i in range(3, 99))
        if frame_partition(c, partitions) == frame_partition("cam2", partitions)
    )
    for seq in range(40):
        chatter = frames[0].model_copy(update={"camera_id": other, "seq": seq})
        futures.append(send(producer, settings.kafka.frames_topic, other, chatter))
    producer.flush()
    assert {f.get(timeout=10).partition for f in futures} == {frame_partition("cam2", partitions)}
    producer.close()

    with api_under_test(settings, db_url) as api:
        for who in (OPERATOR, LEGAL, ADMIN):
            response = api.client.get("/api/v1/cameras/cam2/frame", headers=who)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "image/jpeg"
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-frame-seq"] == str(frames[-1].seq)
            assert response.content == frames[-1].image  # the newest frame, bit-exact as ingested
        image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[:2] == (frames[-1].height, frames[-1].width)
        assert api.client.get("/api/v1/cameras/cam2/frame", headers=OPS).status_code == 403  # footage
        missing = api.client.get("/api/v1/cameras/cam1/frame", headers=OPERATOR)  # no frames of cam1
        assert missing.status_code == 404 and missing.headers["content-type"].startswith(
            "application/problem"
        )
        assert api.client.get("/api/v1/cameras/nope/frame", headers=OPERATOR).status_code == 404
        cam1_only = add_key(api.client, "cam1 operator", "operator", ["cam1"])
        assert api.client.get("/api/v1/cameras/cam2/frame", headers=cam1_only).status_code == 404


# --------------------------------------------------------------------------- the detector applies it


def hog_pipeline(camera: Camera) -> DetectorPipeline:
    return DetectorPipeline(
        CameraRegistry(cameras=(camera,)), HogBackend(), DetectorSettings(), pre_roll_s=3.0
    )


def test_pipeline_restarts_only_the_changed_rule_and_keeps_the_camera_tracking() -> None:
    zone = Zone.model_validate({**BENCH, "rules": {"loitering": {"dwell_s": 3.0, "reentry_grace_s": 1.0}}})
    camera = Camera(id="cam-edit", name="Edit", source="sim://loiterer?dwell=12&start=0", zones=(zone,))
    pipeline = hog_pipeline(camera)
    frames = scripted_frames(camera, 16.0)  # in the bench zone from 2.2 s to 15 s
    events: list[IncidentMessage] = []
    index = 0
    while not any(e.event is IncidentEvent.OPENED for e in events):
        events += pipeline.process([FrameInput(frames[index], 0, index)]).incidents
        index += 1
    (opened,) = events

    assert pipeline.apply_camera(camera.with_settings({"zones": [zone.model_dump()]}), "same") == []
    tamper = camera.with_settings({"zones": [zone.model_dump()], "tamper": {}})
    assert pipeline.apply_camera(tamper, "tamper on") == []  # the loitering incident stays open
    with pytest.raises(DetectorConfigError, match="no classifier model"):
        pipeline.apply_camera(
            tamper.model_copy(update={"classifier": ClassifierRuleConfig(labels=("x",))}), ""
        )
    assert pipeline.cameras["cam-edit"] == tamper  # refused: nothing applied

    longer = Zone.model_validate({**BENCH, "rules": {"loitering": {"dwell_s": 4.0, "reentry_grace_s": 1.0}}})
    (closed,) = pipeline.apply_camera(tamper.with_settings({"zones": [longer.model_dump()]}), "settings v3")
    assert (closed.incident_id, closed.event) == (opened.incident_id, IncidentEvent.CLOSED)
    assert "settings v3" in closed.summary
    edited_at = frames[index - 1].capture_ts
    later: list[IncidentMessage] = []
    for i in range(index, len(frames)):
        later += pipeline.process([FrameInput(frames[i], 0, i)]).incidents
    reopened = [e for e in later if e.event is IncidentEvent.OPENED]
    assert len(reopened) == 1 and reopened[0].incident_id != opened.incident_id
    # The clock restarted at the edit (a full new dwell), and the tracker was kept: same person, same track.
    assert (reopened[0].threshold_at - edited_at).total_seconds() >= 4.0
    assert reopened[0].track_ids == opened.track_ids


@contextlib.contextmanager
def running_worker(
    settings: Settings, camera: Camera
) -> Iterator[tuple[DetectorPipeline, CameraSettingsFeed, list[BaseException]]]:
    """The detector's worker wired as ``run_detector`` wires it, in a thread, its parts at hand."""
    pipeline = hog_pipeline(camera)
    feed = CameraSettingsFeed.open(settings.kafka, "test-detector", CameraRegistry(cameras=(camera,)))
    feed.catch_up(pipeline)
    producer = make_producer(settings.kafka, "test-detector")
    consumer = make_consumer(settings.kafka, "test-detector", settings.detector.group_id, max_poll_records=16)
    stop, errors = threading.Event(), []
    worker = DetectorWorker(
        pipeline,
        consumer,
        IncidentSink(producer, settings.kafka.incidents_topic, stop),
        DeadLetterSink(producer, settings.kafka.dead_letter_topic, "test-detector"),
        stop,
        settings.detector.camera_silence_s,
        feed,
    )
    consumer.subscribe([settings.kafka.frames_topic])

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield pipeline, feed, errors
    finally:
        stop.set()
        thread.join(timeout=60)
        feed.close()
        consumer.close(autocommit=False)
        producer.close(timeout=10)


def wait_for(what: str, probe: Callable[[], Any], errors: list[BaseException], timeout_s: float = 90) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert not errors, f"the worker crashed waiting for {what}: {errors[0]!r}"
        if result := probe():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_running_detector_applies_a_zone_added_in_the_api_without_restart(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest, unique: str
) -> None:
    # No zones in the registry file.
    camera = Camera(id="cam-edit", name="Edit", source="sim://loiterer?dwell=6&start=4")
    settings = settings.model_copy(update={"detector": DetectorSettings(group_id=f"det-{unique}")})
    registry = CameraRegistry(cameras=(camera,))
    ensure_topics(settings.kafka)
    with isolated_database("sqlite", tmp_path, request) as url:
        app = create_app(with_database(settings, url), registry, start_persister=False)
        with TestClient(app) as client, contextlib.ExitStack() as stack:
            authorize(client, OPS)
            for zones in ([BENCH], [CORNER]):  # the bench zone came and went before the detector started
                put = client.put(
                    "/api/v1/cameras/cam-edit/settings", json={"settings": {"zones": zones}, "reason": "v"}
                )
                assert put.status_code == 200, put.text
            # The detector reads the topic to its end before its first frame: it runs the newest version.
            pipeline, feed, errors = stack.enter_context(running_worker(settings, camera))
            assert feed.versions == {"cam-edit": 2}
            assert [z.id for z in pipeline.cameras["cam-edit"].zones] == ["corner"]

            frames = scripted_frames(camera, 16.0)  # the person is in the bench area 6.2 s - 13 s
            producer = make_producer(settings.kafka, "test-ingest")
            stack.callback(producer.close)
            for frame in frames[:15]:  # 3 s of the empty street, before anyone comes
                send(producer, settings.kafka.frames_topic, camera.id, frame)
            producer.flush()
            # The camera runs, with its state, before the edit.
            wait_for(
                "the first frames",
                lambda: getattr(pipeline.last_detections(camera.id), "seq", -1) == 14,
                errors,
            )

            edit = {"settings": {"zones": [CORNER, BENCH]}, "reason": "bench", "expected_version": 2}
            assert client.put("/api/v1/cameras/cam-edit/settings", json=edit).status_code == 200
            wait_for("version 3 applied", lambda: feed.versions.get("cam-edit") == 3, errors)
            assert [z.id for z in pipeline.cameras["cam-edit"].zones] == ["corner", "bench"]

            for frame in frames[15:]:
                send(producer, settings.kafka.frames_topic, camera.id, frame)
            producer.flush()
            incidents = read_incidents(
                settings, lambda found: any(i.event is IncidentEvent.OPENED for i in found)
            )
            opened = [i for i in incidents if i.event is IncidentEvent.OPENED]
            assert [(i.camera_id, i.zone_id, i.rule) for i in opened] == [("cam-edit", "bench", "loitering")]
            wait_for("every frame", lambda: pipeline.stats.frames == len(frames), errors)
            assert pipeline.stats.rejected == 0


def read_incidents(
    settings: Settings, until: Callable[[list[IncidentMessage]], bool]
) -> list[IncidentMessage]:
    consumer = make_consumer(settings.kafka, "test-incidents", None)
    try:
        topic = settings.kafka.incidents_topic
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        found: list[IncidentMessage] = []
        deadline = time.monotonic() + 120
        while not until(found) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                found += [decode(IncidentMessage, r.value) for r in records]
        return found
    finally:
        consumer.close()
