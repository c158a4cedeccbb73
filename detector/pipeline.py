"""Frames in, incident messages out: the detector's processing without any Kafka.

:class:`DetectorPipeline` is what the Kafka worker, the tests and the benchmark
all drive. Per camera: motion gate -> backend -> tracker -> rules (loitering,
camera tamper, protected-area change, object removed), and on cameras with a
classifier rule the trained classifier (graffiti, fights) -> its rule.
Frames of different cameras that need the detector are batched into one
``detect_batch`` call (up to ``batch_size``), while each camera's frames are
still handled strictly in order: a batch is built in *waves* holding at most
one frame per camera, because whether a camera's next frame needs inference
depends on what the previous one found. The classifier looks at the frames of
a wave that the motion gate sent to inference, at most one per camera every
``every_s``, in its own batches.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from cctv.config import Camera, CameraRegistry, DetectorSettings
from cctv.contracts import Box, FrameMessage, IncidentMessage
from cctv.rule_config import TamperRuleConfig, Zone
from detector.appearance import describe
from detector.area_change import AreaChangeRule
from detector.backends import make_classifier
from detector.backends.base import DetectorBackend, DetectorConfigError
from detector.classifier import ClassifierEvent, ClassifierRule, Sightings, check_labels
from detector.detections import Detections, Region
from detector.events import FramePosition, RuleEvent
from detector.loitering import LoiteringRule
from detector.motion import GateCounts, MotionGate
from detector.snapshot import render_snapshot
from detector.tamper import TamperRule
from detector.tracker import CameraTracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameInput:
    """A frame and where it lies in the frames topic (offsets are what evidence is cut by)."""

    message: FrameMessage
    partition: int
    offset: int


@dataclass(frozen=True)
class Rejected:
    index: int  # position in the input sequence
    reason: str


@dataclass(frozen=True)
class PipelineOutput:
    incidents: list[IncidentMessage]
    rejected: list[Rejected]


@dataclass
class DetectorStats:
    """Counters for ops and the benchmark; ``gate`` is shared with the motion gate."""

    backend: str
    frames: int = 0
    rejected: int = 0
    incidents: int = 0
    batches: int = 0
    detect_s: float = 0.0
    gate: GateCounts = field(default_factory=GateCounts)
    classifier: str | None = None  # the classifier backend's registry name, when one runs
    classifier_inferences: int = 0
    classifier_batches: int = 0
    classify_s: float = 0.0

    @property
    def inferences(self) -> int:
        return self.gate.run

    @property
    def skipped(self) -> int:
        return self.gate.skipped

    def line(self) -> str:
        per = self.detect_s / self.inferences * 1000 if self.inferences else 0.0
        classifier = ""
        if self.classifier is not None:
            ms = self.classify_s / self.classifier_inferences * 1000 if self.classifier_inferences else 0.0
            classifier = (
                f" classifier_inferences={self.classifier_inferences} classifier_batches="
                f"{self.classifier_batches} classifier_{self.classifier}_ms_per_frame={ms:.1f}"
            )
        return (
            f"frames={self.frames} inferences={self.inferences} skipped={self.skipped} "
            f"skip_ratio={self.gate.skip_ratio:.2f} batches={self.batches} "
            f"{self.backend}_ms_per_frame={per:.1f}{classifier} incidents={self.incidents} "
            f"rejected={self.rejected}"
        )


@dataclass
class _Camera:
    tracker: CameraTracker
    rule: LoiteringRule
    areas: AreaChangeRule
    # Also run, with its alerts dropped, for a camera without a tamper rule but with watched areas: the
    # areas must not learn or judge a covered or moved view (see AreaChangeRule.process's view_ok).
    tamper: TamperRule | None
    tamper_alerts: bool
    zones: dict[str, Zone]
    heard_at: float  # pipeline clock (monotonic seconds) when its latest frame arrived
    classifier: ClassifierRule | None = None
    classified_at: datetime | None = None  # capture time of its latest classified frame
    last: Detections | None = None
    last_position: FramePosition | None = None


@dataclass
class _Pending:
    index: int
    item: FrameInput
    image: np.ndarray
    position: FramePosition
    detections: Detections
    regions: tuple[Region, ...] | None = None
    needs_inference: bool = False
    sightings: Sightings | None = None  # None: not classified


class DetectorPipeline:
    def __init__(
        self,
        registry: CameraRegistry,
        backend: DetectorBackend,
        settings: DetectorSettings,
        pre_roll_s: float,
        update_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        classifier: DetectorBackend | None = None,
    ) -> None:
        """``classifier``: the classifier backend; None = built from ``settings.classifier`` when a camera
        has a classifier rule."""
        self.cameras = registry.by_id()
        self.clock = clock  # only judges camera silence; everything else runs on capture time
        self.backend = backend
        self.batch_size = settings.batch_size
        self.pre_roll_s = pre_roll_s
        self.update_interval_s = update_interval_s
        self.gate = MotionGate(settings.motion_threshold, settings.recheck_s, enabled=settings.motion_gate)
        self.stats = DetectorStats(backend=backend.info.backend, gate=self.gate.counts)
        self._state: dict[str, _Camera] = {}
        check_person_backend(backend)
        self.classifier = classifier_for(registry, settings, classifier)
        self.classify_every_s = settings.classifier.every_s if settings.classifier is not None else 0.0
        if self.classifier is not None:
            self.stats.classifier = self.classifier.info.backend

    # ----------------------------------------------------------------- public

    def process(self, items: Sequence[FrameInput]) -> PipelineOutput:
        rejected: list[Rejected] = []
        queues: dict[str, list[_Pending]] = {}
        for index, item in enumerate(items):
            pending = self._prepare(index, item, rejected)
            if pending is not None:
                queues.setdefault(item.message.camera_id, []).append(pending)
        incidents: list[IncidentMessage] = []
        while queues:
            wave = [q.pop(0) for q in queues.values()]
            queues = {cam: q for cam, q in queues.items() if q}
            incidents += self._run_wave(wave)
        self.stats.rejected += len(rejected)
        self.stats.incidents += len(incidents)
        return PipelineOutput(incidents, rejected)

    def last_detections(self, camera_id: str) -> Detections | None:
        """The camera's latest tracked detections (what the rules saw), e.g. for accuracy evaluation."""
        state = self._state.get(camera_id)
        return state.last if state is not None else None

    def camera_partitions(self) -> dict[str, int]:
        return {cam: s.last_position.partition for cam, s in self._state.items() if s.last_position}

    def close_cameras(self, camera_ids: Sequence[str], reason: str) -> list[IncidentMessage]:
        """Close the cameras' open incidents and forget their state (partition revoked, or stopping)."""
        out: list[IncidentMessage] = []
        for cam in camera_ids:
            state = self._state.pop(cam, None)
            self.gate.forget(cam)
            if state is None or state.last is None or state.last_position is None:
                continue
            at, position = state.last.capture_ts, state.last_position
            events = state.rule.close_all(at, position, reason) + state.areas.close_all(at, position, reason)
            if state.tamper is not None and state.tamper_alerts:
                events += state.tamper.close_all(at, position, reason)
            if state.classifier is not None:
                events += state.classifier.close_all(at, position, reason)
            out += [self._message(event, state, state.last, None) for event in events]
        self.stats.incidents += len(out)
        return out

    def close_all(self, reason: str) -> list[IncidentMessage]:
        return self.close_cameras(list(self._state), reason)

    def close_silent(self, silence_s: float, lagging: Collection[int] = ()) -> list[IncidentMessage]:
        """Close the open incidents of cameras with no frame for ``silence_s`` (pipeline clock), and
        forget those cameras; cameras on ``lagging`` partitions (records not yet consumed) are spared.

        Why: every other close is judged on the camera's own frames, so when a stream ends or a camera
        dies mid-incident nothing would ever close it and its evidence would never be sealed. The
        CLOSED event is stamped with the camera's last frame (capture time, offset), so evidence reads
        only frames that exist (its post-roll wait times out and it seals with those). A camera that
        comes back starts afresh, like a camera seen for the first time. Why spare lagging partitions:
        while the worker is behind, a camera's next frames may be waiting there unread (the consumer
        drains partitions in turns), and a backlog is not a dead camera.
        """
        now = self.clock()
        silent = [
            cam
            for cam, state in self._state.items()
            if now - state.heard_at >= silence_s
            and not (state.last_position is not None and state.last_position.partition in lagging)
        ]
        if not silent:
            return []
        log.info("cameras %s silent for %ss: closing their incidents", silent, f"{silence_s:g}")
        return self.close_cameras(silent, f"camera silent for {silence_s:g}s")

    def apply_camera(self, camera: Camera, reason: str) -> list[IncidentMessage]:
        """Run ``camera``'s edited zones and rules from its next frame on, without a restart: the rules
        whose settings changed restart, their open incidents CLOSED with ``reason`` (what restarts and
        what is kept: :mod:`detector.camera_settings`). DetectorConfigError, applying nothing, for a
        classifier rule this detector cannot run (no classifier model, or labels it does not output)."""
        if camera.classifier is not None:
            if self.classifier is None:
                raise DetectorConfigError(f"camera {camera.id}: classifier rule but no classifier model")
            model = self.classifier
            check_labels({camera.id: camera.classifier}, model.labels, model.info.model_name)
        old, self.cameras[camera.id] = self.cameras.get(camera.id), camera
        state = self._state.get(camera.id)
        if state is None or old is None:
            return []  # its next frame builds the state from the new settings
        new = self._new_state(camera, state.tracker)
        new.heard_at, new.classified_at = state.heard_at, state.classified_at
        new.last, new.last_position = state.last, state.last_position
        retired: list[LoiteringRule | AreaChangeRule | TamperRule | ClassifierRule] = []
        if _zone_rules(old, "loitering") == _zone_rules(camera, "loitering"):
            new.rule = state.rule
        else:
            retired.append(state.rule)
        if _zone_rules(old, *AREA_RULES) == _zone_rules(camera, *AREA_RULES):
            new.areas = state.areas
        else:
            retired.append(state.areas)
        if old.tamper == camera.tamper and (state.tamper is None) == (new.tamper is None):
            new.tamper = state.tamper
        elif state.tamper is not None and state.tamper_alerts:
            retired.append(state.tamper)
        if old.classifier == camera.classifier:
            new.classifier = state.classifier
        elif state.classifier is not None:
            retired.append(state.classifier)
        self._state[camera.id] = new
        if state.last is None or state.last_position is None:
            return []
        at, position = state.last.capture_ts, state.last_position
        events = [event for rule in retired for event in rule.close_all(at, position, reason)]
        out = [self._message(event, state, state.last, None) for event in events]
        self.stats.incidents += len(out)
        return out

    # ----------------------------------------------------------------- stages

    def _new_state(self, camera: Camera, tracker: CameraTracker) -> _Camera:
        areas = AreaChangeRule(camera.id, camera.zones, self.pre_roll_s)
        tamper = None
        if camera.tamper is not None or areas.watched:
            tamper_config = camera.tamper or TamperRuleConfig()
            tamper = TamperRule(camera.id, tamper_config, self.pre_roll_s, self.update_interval_s)
        state = _Camera(
            tracker=tracker,
            rule=LoiteringRule(camera.id, camera.zones, self.pre_roll_s, self.update_interval_s),
            areas=areas,
            tamper=tamper,
            tamper_alerts=camera.tamper is not None,
            zones={z.id: z for z in camera.zones},
            heard_at=self.clock(),
        )
        if camera.classifier is not None and self.classifier is not None:
            state.classifier = ClassifierRule(
                camera.id, camera.classifier, self.classifier.info, self.pre_roll_s, self.update_interval_s
            )
        return state

    def _prepare(self, index: int, item: FrameInput, rejected: list[Rejected]) -> _Pending | None:
        frame = item.message
        camera = self.cameras.get(frame.camera_id)
        if camera is None:
            rejected.append(Rejected(index, f"camera {frame.camera_id!r} is not in the camera registry"))
            return None
        image = cv2.imdecode(np.frombuffer(frame.image, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            rejected.append(Rejected(index, f"frame image is not a decodable {frame.encoding}"))
            return None
        self.stats.frames += 1
        height, width = image.shape[:2]
        if (width, height) != (frame.width, frame.height):
            log.warning("%s seq %s: header says %sx%s, JPEG is %sx%s; using the JPEG", frame.camera_id,
                        frame.seq, frame.width, frame.height, width, height)  # fmt: skip
        state = self._state.get(frame.camera_id)
        if state is None:
            state = self._state[frame.camera_id] = self._new_state(camera, CameraTracker(frame.fps))
        state.heard_at = self.clock()
        empty = Detections(frame.camera_id, frame.seq, frame.capture_ts, width, height)
        position = FramePosition(frame.stream_id, frame.seq, item.partition, item.offset)
        return _Pending(index, item, image, position, empty)

    def _run_wave(self, wave: list[_Pending]) -> list[IncidentMessage]:
        for pending in wave:
            state = self._state[pending.item.message.camera_id]
            decision = self.gate.decide(
                pending.item.message.camera_id,
                pending.image,
                pending.detections.capture_ts.timestamp(),
                state.tracker.alive,
            )
            tracked: tuple[Region, ...] = ()
            if state.last is not None:  # look again where people were: a still person makes no motion
                tracked = tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in state.last.boxes)
            pending.regions = decision.motion.regions + tracked
            pending.needs_inference = decision.run
            pending.detections = dataclasses.replace(
                pending.detections,
                motion_fraction=decision.motion.fraction,
                motion_regions=decision.motion.regions,
            )
        to_infer = [p for p in wave if p.needs_inference]
        for start in range(0, len(to_infer), self.batch_size):
            chunk = to_infer[start : start + self.batch_size]
            began = time.perf_counter()
            raws = self.backend.detect_batch([p.image for p in chunk], [p.regions for p in chunk])
            self.stats.detect_s += time.perf_counter() - began
            self.stats.batches += 1
            for pending, raw in zip(chunk, raws, strict=True):
                pending.detections = pending.detections.with_raw(raw)
        self._classify(to_infer)
        out: list[IncidentMessage] = []
        for pending in wave:
            out += self._track_and_rule(pending)
        return out

    def _track_and_rule(self, pending: _Pending) -> list[IncidentMessage]:
        state = self._state[pending.item.message.camera_id]
        det = pending.detections
        if pending.needs_inference:
            tracked = state.tracker.update(det)
            if state.rule.needs_appearance:  # ~0.1 ms a box, but the rule is its only reader
                tracked = dataclasses.replace(tracked, appearance=describe(pending.image, tracked.boxes))
        elif state.last is not None:  # nothing moved: the people are where they were
            tracked = dataclasses.replace(
                state.last,
                seq=det.seq,
                capture_ts=det.capture_ts,
                inferred=False,
                motion_fraction=det.motion_fraction,
                motion_regions=det.motion_regions,
            )
        else:
            tracked = dataclasses.replace(det, track_ids=np.zeros(0, np.int64))
        events = state.rule.process(tracked, pending.position)
        view_ok = True
        if state.tamper is not None:
            tamper_events = state.tamper.process(pending.image, tracked, pending.position)
            events += tamper_events if state.tamper_alerts else []
            view_ok = state.tamper.view_normal
        events += state.areas.process(pending.image, tracked, pending.position, view_ok=view_ok)
        if state.classifier is not None:
            events += state.classifier.process(pending.sightings, det.capture_ts, pending.position)
        state.last, state.last_position = tracked, pending.position
        return [self._message(e, state, tracked, pending.image) for e in events]

    def _classify(self, to_infer: list[_Pending]) -> None:
        """Classify the frames of cameras with a classifier rule, at most one every ``every_s`` each."""
        if self.classifier is None:
            return
        due = []
        for pending in to_infer:
            state = self._state[pending.item.message.camera_id]
            at = pending.detections.capture_ts
            if state.classifier is None:
                continue
            last = state.classified_at
            if last is not None and at >= last and (at - last).total_seconds() < self.classify_every_s:
                continue
            state.classified_at = at
            due.append(pending)
        for start in range(0, len(due), self.batch_size):
            chunk = due[start : start + self.batch_size]
            began = time.perf_counter()
            raws = self.classifier.detect_batch([p.image for p in chunk], [p.regions for p in chunk])
            self.stats.classify_s += time.perf_counter() - began
            self.stats.classifier_batches += 1
            self.stats.classifier_inferences += len(chunk)
            for pending, raw in zip(chunk, raws, strict=True):
                det = pending.detections
                pending.sightings = Sightings.from_raw(raw, self.classifier.labels, det.width, det.height)

    def _message(
        self, event: RuleEvent, state: _Camera, det: Detections, image: np.ndarray | None
    ) -> IncidentMessage:
        subjects = set(event.track_ids)
        zone = state.zones.get(event.zone_id or "")
        snapshot = before = change = None
        if image is not None:
            snapshot = render_snapshot(image, det, zone, subjects, event.summary, event.change_region)
        if event.before_image is not None:
            caption = f"Before: {event.summary}"
            before = render_snapshot(event.before_image, None, zone, set(), caption, event.change_region)
        boxes = det.to_boxes(only_tracks=subjects)
        detector = self.backend.info
        label = "changed"
        if isinstance(event, ClassifierEvent):  # what the classifier saw, and the model that saw it
            boxes = tuple(
                Box(
                    x1=b.box[0], y1=b.box[1], x2=b.box[2], y2=b.box[3], confidence=b.confidence, label=b.label
                )
                for b in event.boxes
            )
            assert self.classifier is not None  # only a classifier rule emits classifier events
            detector, label = self.classifier.info, event.label
        if event.change_region is not None:
            x1, y1, x2, y2 = event.change_region
            change = Box(x1=x1, y1=y1, x2=x2, y2=y2, confidence=1.0, label=label)
        return IncidentMessage(
            incident_id=event.incident_id,
            event=event.event,
            camera_id=det.camera_id,
            rule=event.rule,  # type: ignore[arg-type]
            zone_id=event.zone_id,
            track_ids=event.track_ids,
            started_at=event.started_at,
            threshold_at=event.threshold_at,
            event_at=event.event_at,
            ended_at=event.ended_at,
            dwell_s=event.dwell_s,
            summary=event.summary,
            boxes=boxes,
            frames=event.frames,
            snapshot_jpeg=snapshot,
            change_region=change,
            before_snapshot_jpeg=before,
            detector=detector,
        )


AREA_RULES = ("area_change", "object_removed")


def _zone_rules(camera: Camera, *rules: str) -> list[tuple[object, ...]]:
    """What a zone rule object is built from: the zones with one of ``rules``, their outlines and settings."""
    return [
        (z.id, z.polygon, *(getattr(z.rules, r) for r in rules))
        for z in camera.zones
        if any(getattr(z.rules, r) is not None for r in rules)
    ]


def check_person_backend(backend: DetectorBackend) -> None:
    """The tracker and the person rules need persons only: a backend built with other classes is refused."""
    labels = getattr(backend, "labels", None)
    if labels is None or set(labels.values()) != {"person"}:
        raise DetectorConfigError(
            f"the person detector ({backend.info.backend} {backend.info.model_name}) must output persons "
            f"only, not {labels}: build it with detect_classes=(0,); other classes belong in a classifier"
        )


def classifier_for(
    registry: CameraRegistry, settings: DetectorSettings, given: DetectorBackend | None
) -> DetectorBackend | None:
    """The classifier backend for the cameras with a classifier rule (None when there are none), checked
    against what they alert on. A rule without a classifier model is a configuration error."""
    rules = {camera.id: camera.classifier for camera in registry.cameras if camera.classifier is not None}
    if not rules:
        return given
    if given is None and settings.classifier is None:
        raise DetectorConfigError(
            f"camera(s) {', '.join(sorted(rules))}: classifier rule but no classifier model configured; "
            "set detector.classifier (CCTV_DETECTOR__CLASSIFIER__BACKEND, __MODEL)"
        )
    classifier = given if given is not None else make_classifier(settings)
    check_labels(rules, classifier.labels, classifier.info.model_name)
    return classifier
