"""Camera settings edited in the API, applied by a running detector without a restart.

The API stores each edit of a camera's zones and rules as a new version and publishes it on the
camera-config topic (:class:`cctv.contracts.CameraSettingsChanged`, keyed by camera, compacted). Every
detector reads that whole topic itself: no consumer group (each detector needs every camera's
settings, whichever frames partitions it owns), from the beginning at start-up (before its first
frame, so a restarted detector runs the newest settings), then polled without waiting on every pass
of the worker's loop. Per camera only the newest version counts; an older or repeated one (the API
re-publishes at start-up) is ignored.

A version becomes the registry camera with its editable fields replaced (``Camera.with_settings``,
every validator of the YAML), then :meth:`DetectorPipeline.apply_camera`. The camera keeps running:
its tracker, motion gate and silence clock are kept, and only the rules whose settings changed
restart, their open incidents CLOSED ("camera settings changed to version N"):

- loitering, when any loitering zone was added, removed, moved or re-tuned: the dwell clocks,
  re-entry memory and alert cooldowns of *all* the camera's loitering zones restart (a person
  already standing there needs a full dwell time again);
- area change / object removed, when any such zone changed: their reference views are re-learned;
- tamper, when its rule changed (or whether one runs): the normal view is re-learned after warm-up;
- the classifier rule, when it changed.

A version that cannot be applied (invalid for this detector's registry, a camera it does not know,
or a classifier rule it cannot run) is logged and skipped: the camera keeps its previous settings.
It is not dead-lettered, since every restart reads the topic again and would dead-letter it again.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from cctv.bus import make_consumer
from cctv.config import Camera, CameraRegistry, KafkaSettings, describe_validation_error
from cctv.contracts import CameraSettingsChanged, ContractError, IncidentMessage, decode
from detector.backends.base import DetectorConfigError
from detector.pipeline import DetectorPipeline

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT_S = 30.0


class CameraSettingsFeed:
    """The camera-config topic, read in full by one detector; :attr:`versions` is what it runs."""

    def __init__(self, consumer: KafkaConsumer, topic: str, registry: CameraRegistry) -> None:
        self.consumer, self.topic = consumer, topic
        self.registry = registry.by_id()  # the file's cameras: what every version is applied to
        self.versions: dict[str, int] = {}  # camera id -> version applied (absent: the file's)
        self._seen: dict[str, int] = {}  # newest version looked at, applied or refused
        partitions = consumer.partitions_for_topic(topic) or {0}
        self.partitions = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(self.partitions)
        consumer.seek_to_beginning(*self.partitions)

    @classmethod
    def open(cls, settings: KafkaSettings, client_id: str, registry: CameraRegistry) -> CameraSettingsFeed:
        """A feed on its own group-less consumer (the topic must exist: ``ensure_topics``)."""
        return cls(make_consumer(settings, client_id, None), settings.camera_config_topic, registry)

    def close(self) -> None:
        self.consumer.close(autocommit=False)

    def catch_up(self, pipeline: DetectorPipeline, timeout_s: float = CATCH_UP_TIMEOUT_S) -> None:
        """Apply everything up to the topic's end (start-up, before any frame: no incidents to close).

        The end is each partition's high watermark from a fetch: Tansu answers ListOffsets(latest)
        with a wrong offset, so ``end_offsets`` would stop early there."""
        messages: list[CameraSettingsChanged] = []
        deadline = time.monotonic() + timeout_s
        while not all(
            (end := self.consumer.highwater(tp)) is not None and self.consumer.position(tp) >= end
            for tp in self.partitions
        ):
            if time.monotonic() > deadline:
                log.error("camera settings: not read to the end within %.0fs; going on", timeout_s)
                break
            messages += self._read(200)
        self.apply(pipeline, messages)

    def poll(self, pipeline: DetectorPipeline) -> list[IncidentMessage]:
        """Apply what arrived since the last call, without waiting; the incidents this closed."""
        return self.apply(pipeline, self._read(0))

    def apply(
        self, pipeline: DetectorPipeline, messages: list[CameraSettingsChanged]
    ) -> list[IncidentMessage]:
        newest: dict[str, CameraSettingsChanged] = {}
        for message in messages:
            if message.version > max(self._seen.get(message.camera_id, 0), _version(newest, message)):
                newest[message.camera_id] = message
        closing: list[IncidentMessage] = []
        for camera_id, message in newest.items():
            self._seen[camera_id] = message.version
            camera = self._camera(message)
            if camera is None:
                continue
            reason = f"camera settings changed to version {message.version} by {message.changed_by}"
            try:
                closing += pipeline.apply_camera(camera, reason)
            except DetectorConfigError as exc:
                log.error("camera %s settings version %s not applied: %s", camera_id, message.version, exc)
                continue
            self.versions[camera_id] = message.version
            log.info("camera %s: settings version %s applied", camera_id, message.version)
        return closing

    def _camera(self, message: CameraSettingsChanged) -> Camera | None:
        base = self.registry.get(message.camera_id)
        where = f"camera {message.camera_id} settings version {message.version}"
        if base is None:
            log.error("%s not applied: the camera is not in this detector's registry", where)
            return None
        try:
            return base.with_settings(message.settings)
        except ValidationError as exc:
            log.error("%s not applied: %s", where, describe_validation_error(exc))
        except ValueError as exc:
            log.error("%s not applied: %s", where, exc)
        return None

    def _read(self, timeout_ms: int) -> list[CameraSettingsChanged]:
        out = []
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                try:
                    out.append(decode(CameraSettingsChanged, record.value, list(record.headers or [])))
                except ContractError as exc:
                    log.error("camera settings at %s@%s ignored: %s", record.partition, record.offset, exc)
        return out


def _version(newest: dict[str, CameraSettingsChanged], message: CameraSettingsChanged) -> int:
    found = newest.get(message.camera_id)
    return found.version if found is not None else 0
