"""Trained classifier rule: alert while a camera's classifier model keeps seeing a label (graffiti, a fight).

Pure logic, no I/O: :meth:`ClassifierRule.process` takes what the classifier
backend found in one frame of one camera (:class:`Sightings`) and where the
frame lies in Kafka, and returns incident lifecycle events. Everything runs on
capture time, so a replay of the same frames yields the same events and ids.

Not every frame is classified (the pipeline classifies only frames the motion
gate sends to inference, and a camera at most every ``every_s``); a frame that
was not is passed as ``None`` and the latest classification stands: nothing
moved, so nothing changed (the person pipeline carries its boxes forward the
same way). Time-based closes still happen on such frames.

Lifecycle, per label (one incident per label at a time):

- a label is *seen* in a classified frame when one of its boxes reaches
  ``min_confidence``; labels the camera does not alert on are ignored;
- an *episode* begins with the first sighting and is forgotten when the label
  has then been absent ``hold_s`` (before any alert);
- OPENED when the episode has lasted ``hold_s``, the label was seen in at least
  two thirds of the classified frames of the last ``hold_s`` (the latest frame
  classified before that window stands for its start) and in at least
  :data:`MIN_SIGHTINGS` frames, and ``cooldown_s`` has passed since the label's
  last incident closed: one false box never alerts;
- UPDATED every ``update_interval_s`` while the label is still seen;
- CLOSED once the label has been absent ``clear_s`` (it ended when it was first
  seen absent), or after ``max_incident_s``: then the label is not alerted on
  again until it has been absent ``clear_s``, because graffiti stays until it is
  cleaned and one report of it is enough.

Capture time going backwards (a camera restart replaying) closes what is open
and starts afresh. The change region is the union of the label's boxes in the
latest classified frame that showed it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import numpy as np

from cctv.contracts import DetectorInfo, IncidentEvent, incident_id_for
from cctv.rule_config import ClassifierRuleConfig
from detector.backends.base import DetectorConfigError
from detector.detections import RawBoxes, Region
from detector.events import FramePosition, FrameRing, RuleEvent, frame_span

RULE = "classifier"
UPDATE_INTERVAL_S = 10.0
MIN_SIGHTINGS = 2  # classified frames that showed the label before it may alert: never on one box
SEEN_FRACTION = 2 / 3  # of the classified frames in the last hold_s


@dataclass(frozen=True)
class LabelledBox:
    """One box of the classifier's output, with its class name."""

    label: str
    confidence: float
    box: Region


@dataclass(frozen=True)
class Sightings:
    """What the classifier found in one classified frame (empty: it looked and found nothing)."""

    boxes: tuple[LabelledBox, ...] = ()

    @classmethod
    def from_raw(cls, raw: RawBoxes, labels: dict[int, str], width: int, height: int) -> Sightings:
        """A backend's output named by its ``labels`` (an undeclared id: its number), clipped to the frame."""
        out = []
        for (x1, y1, x2, y2), confidence, class_id in zip(
            raw.boxes, raw.confidences, raw.class_ids, strict=True
        ):
            region = (
                max(0, int(np.floor(x1))),
                max(0, int(np.floor(y1))),
                min(width, int(np.ceil(x2))),
                min(height, int(np.ceil(y2))),
            )
            if region[2] <= region[0] or region[3] <= region[1]:
                continue  # wholly outside the frame
            label = labels.get(int(class_id), str(int(class_id)))
            out.append(LabelledBox(label, float(np.clip(confidence, 0.0, 1.0)), region))
        return cls(tuple(out))

    def of(self, label: str, min_confidence: float) -> tuple[LabelledBox, ...]:
        return tuple(b for b in self.boxes if b.label == label and b.confidence >= min_confidence)


@dataclass(frozen=True)
class ClassifierEvent(RuleEvent):
    """A classifier incident's event: also says which label, and the label's boxes (for the message)."""

    label: str = ""
    boxes: tuple[LabelledBox, ...] = ()


@dataclass
class _Episode:
    since: datetime
    window_start: int
    boxes: tuple[LabelledBox, ...]  # of the latest classified frame that showed the label
    sightings: int = 0
    absent_since: datetime | None = None  # the first classified frame without it since it was last seen


@dataclass
class _Incident:
    incident_id: UUID
    started_at: datetime
    threshold_at: datetime
    window_start: int
    last_event_at: datetime
    boxes: tuple[LabelledBox, ...]
    peak: float
    absent_since: datetime | None = None


@dataclass
class _Label:
    """Everything the rule keeps about one label of one camera."""

    history: deque[tuple[datetime, bool]] = field(default_factory=deque)  # classified frames: (at, seen)
    episode: _Episode | None = None
    incident: _Incident | None = None
    closed_at: datetime | None = None
    # After a max_incident_s close the label is not alerted on until it has been absent clear_s.
    accepted: bool = False
    accepted_absent_since: datetime | None = None


def union(boxes: tuple[LabelledBox, ...]) -> Region:
    return (
        min(b.box[0] for b in boxes),
        min(b.box[1] for b in boxes),
        max(b.box[2] for b in boxes),
        max(b.box[3] for b in boxes),
    )


class ClassifierRule:
    """The classifier rule for one camera (see the module docstring)."""

    def __init__(
        self,
        camera_id: str,
        config: ClassifierRuleConfig,
        model_info: DetectorInfo | str,
        pre_roll_s: float,
        update_interval_s: float = UPDATE_INTERVAL_S,
    ) -> None:
        self.camera_id = camera_id
        self.config = config
        self.model_name = model_info.model_name if isinstance(model_info, DetectorInfo) else model_info
        self.update_interval = timedelta(seconds=update_interval_s)
        self.ring = FrameRing(pre_roll_s)
        self._labels = {label: _Label() for label in config.labels}
        self._prev_at: datetime | None = None

    @property
    def open_labels(self) -> tuple[str, ...]:
        return tuple(label for label, state in self._labels.items() if state.incident is not None)

    def process(self, found: Sightings | None, at: datetime, position: FramePosition) -> list[RuleEvent]:
        """One frame: ``found`` is what the classifier saw in it, None when it was not classified."""
        events: list[RuleEvent] = []
        if self._prev_at is not None and at < self._prev_at:  # a restart replaying: not the same timeline
            events += self.close_all(self._prev_at, position, "capture time went backwards: rule restarted")
            self._labels = {label: _Label() for label in self.config.labels}
        self._prev_at = at
        self.ring.add(at, position)
        for label, state in self._labels.items():
            boxes = found.of(label, self.config.min_confidence) if found is not None else None
            events += self._label(label, state, boxes, at, position)
        return events

    def close_all(self, at: datetime, position: FramePosition, reason: str) -> list[RuleEvent]:
        """Close every open incident (worker stopping, partition handed over, restart)."""
        events: list[RuleEvent] = []
        for label, state in self._labels.items():
            if state.incident is not None:
                events.append(self._close(label, state, at, position, reason))
            state.episode = None
            state.history.clear()
        return events

    # ----------------------------------------------------------------- states

    def _label(
        self,
        label: str,
        state: _Label,
        boxes: tuple[LabelledBox, ...] | None,
        at: datetime,
        position: FramePosition,
    ) -> list[RuleEvent]:
        cfg = self.config
        if boxes is not None:
            state.history.append((at, bool(boxes)))
        # The classified frames of the last hold_s, and the latest one before them (it stands for the start).
        while len(state.history) > 1 and (at - state.history[1][0]).total_seconds() >= cfg.hold_s:
            state.history.popleft()
        if state.accepted:
            return self._accepted(state, boxes, at)
        if state.incident is not None:
            return self._open(label, state, boxes, at, position)
        episode = state.episode
        if boxes:
            if episode is None:
                episode = state.episode = _Episode(at, self.ring.start_for(at), boxes)
            episode.boxes, episode.absent_since = boxes, None
            episode.sightings += 1
        elif boxes is not None and episode is not None:
            episode.absent_since = episode.absent_since or at
        if episode is None:
            return []
        if episode.absent_since is not None:
            if (at - episode.absent_since).total_seconds() >= cfg.hold_s:
                state.episode = None  # absent as long as it must be seen to alert: start over
            return []
        cooled = state.closed_at is None or (at - state.closed_at).total_seconds() >= cfg.cooldown_s
        if (
            (at - episode.since).total_seconds() < cfg.hold_s
            or episode.sightings < MIN_SIGHTINGS
            or not cooled
            or not self._mostly_seen(state)
        ):
            return []
        key = f"{label}:{position.stream_id}:{position.seq}"
        state.incident = _Incident(
            incident_id=incident_id_for(self.camera_id, RULE, None, key),
            started_at=episode.since,
            threshold_at=at,
            window_start=episode.window_start,
            last_event_at=at,
            boxes=episode.boxes,
            peak=max(b.confidence for b in episode.boxes),
        )
        state.episode = None
        return [self._event(label, state.incident, IncidentEvent.OPENED, at, position)]

    @staticmethod
    def _mostly_seen(state: _Label) -> bool:
        seen = sum(1 for _, s in state.history if s)
        return seen >= SEEN_FRACTION * len(state.history)

    def _open(
        self,
        label: str,
        state: _Label,
        boxes: tuple[LabelledBox, ...] | None,
        at: datetime,
        position: FramePosition,
    ) -> list[RuleEvent]:
        incident = state.incident
        assert incident is not None
        cfg = self.config
        if boxes:
            incident.absent_since = None
            incident.boxes = boxes
            incident.peak = max(incident.peak, *(b.confidence for b in boxes))
        elif boxes is not None:
            incident.absent_since = incident.absent_since or at
        if (at - incident.threshold_at).total_seconds() >= cfg.max_incident_s:
            state.accepted, state.accepted_absent_since = True, incident.absent_since
            return [self._close(label, state, at, position, f"open for {cfg.max_incident_s:g}s")]
        if incident.absent_since is not None:
            if (at - incident.absent_since).total_seconds() >= cfg.clear_s:
                return [self._close(label, state, at, position, f"{label} no longer seen")]
            return []
        if at - incident.last_event_at >= self.update_interval:
            incident.last_event_at = at
            return [self._event(label, incident, IncidentEvent.UPDATED, at, position)]
        return []

    def _accepted(
        self, state: _Label, boxes: tuple[LabelledBox, ...] | None, at: datetime
    ) -> list[RuleEvent]:
        if boxes:
            state.accepted_absent_since = None
        elif boxes is not None:
            state.accepted_absent_since = state.accepted_absent_since or at
        since = state.accepted_absent_since
        if since is not None and (at - since).total_seconds() >= self.config.clear_s:
            state.accepted, state.accepted_absent_since = False, None
        return []

    def _close(
        self, label: str, state: _Label, at: datetime, position: FramePosition, reason: str
    ) -> RuleEvent:
        incident = state.incident
        assert incident is not None
        ended_at = incident.absent_since or at  # gone: it ended when it was first seen absent
        event = self._event(label, incident, IncidentEvent.CLOSED, at, position, reason, ended_at)
        state.incident, state.closed_at = None, at
        return event

    # ----------------------------------------------------------------- output

    def _event(
        self,
        label: str,
        incident: _Incident,
        kind: IncidentEvent,
        at: datetime,
        position: FramePosition,
        reason: str | None = None,
        ended_at: datetime | None = None,
    ) -> ClassifierEvent:
        duration = ((ended_at or at) - incident.started_at).total_seconds()
        summary = (
            f"{label} seen by model {self.model_name} (confidence {incident.peak:.2f}) for {duration:.0f}s"
        )
        if reason is not None:
            summary += f"; closed: {reason}"
        return ClassifierEvent(
            incident_id=incident.incident_id,
            event=kind,
            rule=RULE,
            zone_id=None,
            track_ids=(),
            started_at=incident.started_at,
            threshold_at=incident.threshold_at,
            event_at=at,
            ended_at=ended_at,
            dwell_s=duration,
            frames=frame_span(position, incident.window_start),
            summary=summary,
            change_region=union(incident.boxes),
            label=label,
            boxes=incident.boxes,
        )


def check_labels(rules: dict[str, ClassifierRuleConfig], model_labels: dict[int, str], model: str) -> None:
    """Every label a camera alerts on must be one the classifier model outputs (a typo never alerts)."""
    known = set(model_labels.values())
    wrong = {camera: sorted(set(rule.labels) - known) for camera, rule in rules.items()}
    if problems := [
        f"camera {camera}: {', '.join(labels)}" for camera, labels in sorted(wrong.items()) if labels
    ]:
        raise DetectorConfigError(
            f"classifier labels that model {model} does not output ({'; '.join(problems)}); "
            f"its labels: {', '.join(sorted(known))}"
        )
