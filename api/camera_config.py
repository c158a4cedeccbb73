"""Camera settings edited in the API (versions in the database, published to the detectors), and the
newest frame of a camera for the cameras wall. No HTTP here: :mod:`api.routers.cameras` serves it.

What is editable: :data:`cctv.config.CAMERA_SETTINGS`, what the detector reads: ``zones`` (outlines
and their loitering / area-change / object-removed rules), ``tamper`` and ``classifier``. The rest of
a camera (id, name, location, source, fps, resize, jpeg_quality, enabled) is read by ingest and the
evidence store from the registry file and stays in the file. :class:`CameraSettingsIn` reuses the
registry's own models, so an edit is validated exactly as the YAML is.

Effective settings of a camera: its newest ``camera_configs`` row, else the registry file's (version
0). Once a camera was edited in the API its newest version wins over the file's zones and rules.

Saving: the edit is validated by building the whole :class:`Camera` (the registry's camera with the
edited fields: every validator of the file runs, e.g. unique zone ids), stored as the next version
(rows are only added; a concurrent save of the same version fails on the unique key: 409), committed,
then published on the camera-config topic for the detectors (:mod:`detector.camera_settings`). If
publishing fails the version stays stored (the route answers 503); it reaches the detectors with the
camera's next save (which publishes a newer version with all the settings) or when the API starts
(:func:`republish_newest` publishes every edited camera's newest version; detectors ignore a version
they already run).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Annotated, Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.partitioner.default import murmur2
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from api.models import CameraConfigRow
from api.problems import Problem
from api.schemas import In, Reason
from cctv.bus import ensure_topics, fetched_end_offsets, make_consumer, make_producer, send, worker_name
from cctv.config import CAMERA_SETTINGS, Camera, CameraRegistry, KafkaSettings
from cctv.contracts import CameraSettingsChanged, ContractError, FrameMessage, decode
from cctv.rule_config import ClassifierRuleConfig, TamperRuleConfig, Zone

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0
FRAME_SCAN_FIRST = 16  # newest frames-topic records looked at first; the window doubles from there
FRAME_SCAN_MAX = 512  # at most this many records back from the partition's end: "recent"
FRAME_READ_TIMEOUT_S = 5.0


class CameraSettingsIn(In):
    """The editable settings of a camera, in the registry file's models (same validation as the YAML)."""

    zones: tuple[Zone, ...] = Field(
        default=(),
        description="analytics zones: polygons as (x, y) fractions of frame width and height, with rules",
    )
    tamper: TamperRuleConfig | None = Field(
        default=None, description="camera tamper rule (covered, defocused, sprayed, moved); null: off"
    )
    classifier: ClassifierRuleConfig | None = Field(
        default=None,
        description="alert on labels of the detector's classifier model; null: off. Labels the model does "
        "not output are refused by the detector (logged), which then keeps the previous settings",
    )


assert set(CameraSettingsIn.model_fields) == set(CAMERA_SETTINGS), "CameraSettingsIn != CAMERA_SETTINGS"


class CameraSettingsPut(In):
    settings: CameraSettingsIn
    reason: Annotated[Reason, Field(description="why: kept with the version in the settings history")]
    expected_version: int | None = Field(
        default=None,
        ge=0,
        description="the version this edit started from (0: the file's); 409 when another was saved since",
    )


class CameraSettingsOut(BaseModel):
    camera_id: str
    version: int = Field(description="0: the registry file's settings (never edited in the API)")
    settings: CameraSettingsIn
    created_at: datetime | None = Field(description="when this version was saved; null for version 0")
    created_by: str | None = Field(description="who saved it; null for version 0")
    reason: str | None = Field(description="why; null for version 0")


# --------------------------------------------------------------------------- versions


def settings_out(camera: Camera, row: CameraConfigRow | None) -> CameraSettingsOut:
    """The settings of ``row``, or the registry file's (version 0) when there is none."""
    if row is None:
        settings = CameraSettingsIn.model_validate(camera.model_dump(include=set(CAMERA_SETTINGS)))
        return CameraSettingsOut(
            camera_id=camera.id, version=0, settings=settings, created_at=None, created_by=None, reason=None
        )
    return CameraSettingsOut(
        camera_id=row.camera_id,
        version=row.version,
        settings=CameraSettingsIn.model_validate(row.config),
        created_at=row.created_at,
        created_by=row.created_by,
        reason=row.reason,
    )


def newest_rows(session: Session, camera_ids: Collection[str] | None = None) -> dict[str, CameraConfigRow]:
    """The newest stored version of each camera (of ``camera_ids``, or all) that was ever edited."""
    newest = select(CameraConfigRow.camera_id, func.max(CameraConfigRow.version).label("version"))
    if camera_ids is not None:
        newest = newest.where(CameraConfigRow.camera_id.in_(sorted(camera_ids)))
    latest = newest.group_by(CameraConfigRow.camera_id).subquery()
    rows = session.scalars(
        select(CameraConfigRow).join(
            latest,
            (CameraConfigRow.camera_id == latest.c.camera_id) & (CameraConfigRow.version == latest.c.version),
        )
    )
    return {row.camera_id: row for row in rows}


def current(session: Session, camera: Camera) -> CameraSettingsOut:
    return settings_out(camera, newest_rows(session, [camera.id]).get(camera.id))


def history(session: Session, camera: Camera) -> list[CameraSettingsOut]:
    """Every stored version, newest first, then the registry file's (version 0)."""
    rows = session.scalars(
        select(CameraConfigRow)
        .where(CameraConfigRow.camera_id == camera.id)
        .order_by(CameraConfigRow.version.desc())
    )
    return [*(settings_out(camera, row) for row in rows), settings_out(camera, None)]


def save(
    session: Session, camera: Camera, edit: CameraSettingsPut, by: str, now: datetime
) -> CameraConfigRow:
    """Validate ``edit`` on the whole camera and commit it as the next version (Problem 422 / 409)."""
    stored = newest_rows(session, [camera.id]).get(camera.id)
    version = stored.version if stored is not None else 0
    if edit.expected_version is not None and edit.expected_version != version:
        raise stale(camera.id, version, edit.expected_version)
    config = edit.settings.model_dump(mode="json")
    try:
        camera.with_settings(config)
    except ValidationError as exc:
        raise invalid(exc) from exc
    row = CameraConfigRow(
        camera_id=camera.id,
        version=version + 1,
        config=config,
        created_at=now,
        created_by=by,
        reason=edit.reason,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:  # another save took this version number between the read and now
        session.rollback()
        latest = newest_rows(session, [camera.id]).get(camera.id)
        raise stale(camera.id, latest.version if latest else version + 1, version) from exc
    return row


def stale(camera_id: str, current_version: int, expected: int) -> Problem:
    return Problem(
        409,
        "Settings changed meanwhile",
        f"camera {camera_id} is at settings version {current_version}, not {expected}: "
        "reload the settings and edit again",
        extra={"current_version": current_version},
    )


def invalid(exc: ValidationError) -> Problem:
    """422 in the shape of a request validation error, the location inside the request body."""
    errors = [
        {"loc": ["body", "settings", *(str(p) for p in err["loc"])], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
    return Problem(422, "Request validation failed", detail, extra={"errors": errors})


# --------------------------------------------------------------------------- publishing


def message_for(row: CameraConfigRow) -> CameraSettingsChanged:
    return CameraSettingsChanged(
        camera_id=row.camera_id,
        version=row.version,
        settings=row.config,
        changed_at=row.created_at,
        changed_by=row.created_by,
    )


def publish(kafka: KafkaSettings, messages: Sequence[CameraSettingsChanged]) -> None:
    """Send and wait until the broker has acknowledged every message; raises when it cannot."""
    ensure_topics(kafka)
    producer = make_producer(kafka, worker_name("api-camera-config"))
    try:
        futures = [send(producer, kafka.camera_config_topic, m.camera_id, m) for m in messages]
        producer.flush(timeout=PUBLISH_TIMEOUT_S)
        for future in futures:
            future.get(timeout=PUBLISH_TIMEOUT_S)
    finally:
        producer.close(timeout=PUBLISH_TIMEOUT_S)


def republish_newest(sessions: sessionmaker[Session], kafka: KafkaSettings, registry: CameraRegistry) -> None:
    """At API start-up: publish every edited camera's newest version (one whose publishing failed
    reaches the detectors now). Never raises: a broker that is down only delays it to the next save."""
    try:
        with sessions() as session:
            rows = newest_rows(session, list(registry.by_id()))
            messages = [message_for(row) for _, row in sorted(rows.items())]
        if messages:
            publish(kafka, messages)
            log.info("re-published the newest settings of cameras %s", sorted(rows))
    except Exception as exc:
        log.error("could not re-publish the newest camera settings (the next save will): %s", exc)


# --------------------------------------------------------------------------- the newest frame


def frame_partition(camera_id: str, partitions: Collection[int]) -> int:
    """The partition ingest's producer sends the camera's frames to: the default partitioner's murmur2
    of the key (kafka-python's is the Java client's), so every client agrees."""
    ordered = sorted(partitions)
    return ordered[(murmur2(camera_id.encode()) & 0x7FFFFFFF) % len(ordered)]


def newest_frame(kafka: KafkaSettings, camera_id: str) -> FrameMessage | None:
    """The camera's newest valid frame among the last :data:`FRAME_SCAN_MAX` records of its partition,
    read backwards in doubling windows (cameras share partitions); None when there is none."""
    consumer = make_consumer(kafka, worker_name("api-frame"), None, max_poll_records=FRAME_SCAN_MAX)
    try:
        partitions = consumer.partitions_for_topic(kafka.frames_topic)
        if not partitions:
            return None
        tp = TopicPartition(kafka.frames_topic, frame_partition(camera_id, partitions))
        consumer.assign([tp])
        deadline = time.monotonic() + FRAME_READ_TIMEOUT_S
        first = consumer.beginning_offsets([tp])[tp]
        # Tansu answers ListOffsets(latest) with a wrong offset: the end comes from a fetch's watermark.
        ends, _unconfirmed = fetched_end_offsets(
            consumer, {tp: first}, deadline - time.monotonic(), int(FRAME_READ_TIMEOUT_S * 1000)
        )
        end = ends[tp]
        floor, upper, window = max(first, end - FRAME_SCAN_MAX), end, FRAME_SCAN_FIRST
        while upper > floor:
            lower = max(floor, upper - window)
            records = _read_range(consumer, tp, lower, upper, deadline)
            for record in reversed(records):
                if record.key == camera_id.encode():
                    try:
                        return decode(FrameMessage, record.value, list(record.headers or []))
                    except ContractError as exc:
                        log.warning(
                            "frame %s@%s of %s skipped: %s", tp.partition, record.offset, camera_id, exc
                        )
            upper, window = lower, window * 2
        return None
    finally:
        consumer.close(autocommit=False)


def _read_range(
    consumer: KafkaConsumer, tp: TopicPartition, lower: int, upper: int, deadline: float
) -> list[ConsumerRecord]:
    """Records ``lower`` to ``upper`` - 1 in offset order (a fetch still in flight from an earlier
    position may hand back others: they are dropped)."""
    consumer.seek(tp, lower)
    out: dict[int, Any] = {}
    while consumer.position(tp) < upper and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            out.update((r.offset, r) for r in records if lower <= r.offset < upper)
    return [out[offset] for offset in sorted(out)]
