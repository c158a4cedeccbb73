"""Loitering accuracy on real footage, the pure part: PETS09 S2L1 ground-truth dwell events and matching.

Why: loitering is the product's main alert and PETS the only real footage with annotated identities. Its
people walk more than they linger (79.5 s on the container's 10 fps clock, the clock
:mod:`detector.evaluation_pets` and the file source play at), so the dwell thresholds are short (5-20 s).

This module holds the scene zones, the ground-truth derivation, the alert matcher and the miss tracer: no
video, no detector. Running the pipeline (and the rule on perfect tracks), scoring a run and the Markdown
report live in :mod:`detector.evaluation_loitering_report`.

Ground truth: the rule's definitions (:mod:`detector.loitering`) applied to the annotated identities at the
frames the analytics rate samples: feet ``(x + w/2, y + h)`` in the polygon; entry after ``entry_frames``
consecutive frames, dwell counted from the first; dwell = time seen inside; away for more than
``reentry_grace_s`` = a fresh stay; the event is the frame the dwell reaches the threshold; one event per
person per zone until ``cooldown_s`` after it closed. Identities are continuous, so there is no re-entry
matching. Rows flagged conf 0 (people far up the road) are absent, as :func:`parse_mot` has them. Group:
``group_size`` people entered, not left and past the threshold at one frame.

Matching, per zone and threshold, one to one: an OPENED incident matches an event when its subject box
(its track's box at OPENED) overlaps the person's annotated box at that frame with IoU >= ``MATCH_IOU`` and
its threshold time lies within ``WINDOW_S`` of the event's. Why 0.3, not the tracking benchmarks' 0.5: the
question is *which person* the alert is about, not how tight the box is; HOG's boxes at PETS scale are
looser than the annotation, and two people must overlap heavily to be confused at 0.3. A further alert on
a person who already had one in that zone is a *duplicate* (a track that fragmented and restarted its
clock); duplicates are false positives too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from cctv.rule_config import LoiteringRuleConfig, Zone
from detector.evaluation import Box, FrameMap, FrameObjects, assign, iou_matrix
from detector.zones import points_in_polygon
from ingest.frames import FrameSampler

DEFAULT_THRESHOLDS = (5.0, 10.0, 15.0, 20.0)
GROUP_SIZE = 3  # the design's default group
MATCH_IOU = 0.3
WINDOW_S = (-5.0, 15.0)  # alert threshold time minus ground-truth threshold time that still matches
FRAME_SIZE = (768, 576)

Sample = tuple[int, float]
"""(1-based frame number, capture seconds on the container clock) of one sampled frame."""


@dataclass(frozen=True)
class SceneZone:
    """A zone of the PETS view and why it is there (the reason goes into the results file)."""

    id: str
    name: str
    polygon: tuple[tuple[float, float], ...]
    why: str


# Chosen from the annotations: per-identity time in a 10 x 10 grid of feet points, then polygons drawn over
# every annotated feet point on a frame. Kept off the frame edges, where people are half in view.
PETS_ZONES = (
    SceneZone(
        "plaza", "Plaza by the lamp post and sign", ((0.45, 0.36), (0.72, 0.36), (0.72, 0.53), (0.45, 0.53)),
        "the paved crossing mid-view where the paths meet: people stop and talk here (ids 9, 15, 19 for "
        "6-24 s from the start, id 1 for 21 s), the busiest place to stand",
    ),
    SceneZone(
        "junction", "Road junction, right", ((0.74, 0.45), (0.98, 0.50), (0.98, 0.78), (0.74, 0.75)),
        "the road on the right where people enter the scene and turn around (id 1 for 18 s, id 2 for "
        "10 s, several for 5-8 s): many short stays next to where people enter and leave the view",
    ),
    SceneZone(
        "lawn", "Lawn, foreground",
        ((0.02, 0.50), (0.30, 0.57), (0.50, 0.64), (0.62, 0.70), (0.62, 1.0), (0.02, 1.0)),
        "the grass off the paths, the classic place to loiter: two people wander across it late in the "
        "clip (id 4 for 19 s, id 3 for 7 s), large and unoccluded",
    ),
)  # fmt: skip


def zone_copies(
    zones: Sequence[SceneZone], thresholds: Sequence[float], group_size: int | None = GROUP_SIZE
) -> dict[str, tuple[SceneZone, float, Zone]]:
    """Pipeline zone id -> (scene zone, threshold, zone with its loitering rule): one copy per threshold."""
    out = {}
    for scene in zones:
        for threshold in thresholds:
            rule = LoiteringRuleConfig(dwell_s=threshold, group_size=group_size)
            zone = Zone.model_validate({
                "id": f"{scene.id}.t{threshold:g}", "name": scene.name, "polygon": scene.polygon,
                "rules": {"loitering": rule.model_dump()},
            })  # fmt: skip
            out[zone.id] = (scene, float(threshold), zone)
    return out


def sample_schedule(frame_count: int, native_fps: float, fps: float) -> list[Sample]:
    """The frames an ``fps`` analytics rate keeps of a clip, without decoding it (ingest's sampler)."""
    sampler = FrameSampler(fps)
    return [
        (n, (n - 1) / native_fps) for n in range(1, frame_count + 1) if sampler.accept((n - 1) / native_fps)
    ]


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class TruthEvent:
    identity: int
    frame: int
    at: float  # capture seconds when the dwell reached the threshold
    started_at: float  # capture seconds of the first frame of the stay that reached it


@dataclass(frozen=True)
class TruthGroup:
    identities: tuple[int, ...]
    frame: int
    at: float


@dataclass
class _Stay:
    """One annotated person's current stay in one zone (the rule's occupant, keyed by identity)."""

    started_at: timedelta
    last_inside: timedelta
    streak: int = 1
    entered: bool = False
    dwell: timedelta = timedelta(0)
    outside_streak: int = 0
    left: bool = False


@dataclass
class _Alerting:
    """Open/closed state of one person's (or the group's) event, for the cooldown."""

    open_since: timedelta | None = None
    closed_at: timedelta | None = None

    def cooled(self, at: timedelta, cooldown: timedelta) -> bool:
        return self.open_since is None and (self.closed_at is None or at - self.closed_at >= cooldown)

    def close(self, at: timedelta) -> None:
        if self.open_since is not None:
            self.open_since, self.closed_at = None, at


def truth_events(
    truth: FrameMap,
    samples: Sequence[Sample],
    polygon: Sequence[tuple[float, float]],
    rule: LoiteringRuleConfig,
    frame_size: tuple[int, int] = FRAME_SIZE,
) -> tuple[list[TruthEvent], list[TruthGroup]]:
    """The loitering events (and group events, if ``rule.group_size``) the annotations hold in one zone.

    Times are timedeltas, as the rule's capture times are, so thresholds round exactly as the pipeline's.
    """
    width, height = frame_size
    dwell, grace = timedelta(seconds=rule.dwell_s), timedelta(seconds=rule.reentry_grace_s)
    cooldown, longest = timedelta(seconds=rule.cooldown_s), timedelta(seconds=rule.max_incident_s)
    stays: dict[int, _Stay] = {}
    alerting: dict[int, _Alerting] = defaultdict(_Alerting)
    group = _Alerting()
    events: list[TruthEvent] = []
    groups: list[TruthGroup] = []
    previous: timedelta | None = None
    for frame, seconds in samples:
        at = timedelta(seconds=seconds)
        objects = truth.get(frame, FrameObjects())
        feet = np.asarray([((b[0] + b[2]) / 2 / width, b[3] / height) for b in objects.boxes])
        flags = points_in_polygon(feet, polygon) if len(feet) else np.zeros(0, bool)
        inside = {i for i, flag in zip(objects.ids, flags, strict=True) if flag}
        for identity in inside:
            stay = stays.get(identity)
            if stay is None:
                stays[identity] = _Stay(at, at, entered=rule.entry_frames <= 1)
                continue
            if previous is not None and stay.last_inside == previous:
                stay.dwell += at - previous  # only time seen inside counts
            stay.streak += 1
            stay.entered = stay.entered or stay.streak >= rule.entry_frames
            stay.outside_streak, stay.left, stay.last_inside = 0, False, at
        for identity, stay in list(stays.items()):
            if identity in inside:
                continue
            if not stay.entered:  # the entry streak broke
                del stays[identity]
                continue
            stay.streak = 0
            if identity in objects.ids:
                stay.outside_streak += 1
                if stay.outside_streak >= rule.entry_frames and not stay.left:
                    stay.left = True
                    alerting[identity].close(at)
            if at - stay.last_inside > grace:
                alerting[identity].close(at)
                del stays[identity]
        for identity, stay in stays.items():
            state = alerting[identity]
            if state.open_since is not None and at - state.open_since >= longest:
                state.close(at)
            elif identity in inside and stay.entered and stay.dwell >= dwell and state.cooled(at, cooldown):
                state.open_since = at
                events.append(TruthEvent(identity, frame, seconds, stay.started_at.total_seconds()))
        if rule.group_size is not None:
            members = sorted(i for i, s in stays.items() if s.entered and not s.left and s.dwell >= dwell)
            if group.open_since is not None and (
                len(members) < rule.group_size or at - group.open_since >= longest
            ):
                group.close(at)
            elif len(members) >= rule.group_size and group.cooled(at, cooldown):
                group.open_since = at
                groups.append(TruthGroup(tuple(members), frame, seconds))
        previous = at
    return events, groups


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Alert:
    """An OPENED incident of one zone copy, reduced to what matching needs."""

    track_ids: tuple[int, ...]
    frame: int  # the sampled frame it was opened on
    at: float  # its threshold time, capture seconds
    boxes: tuple[Box, ...]  # its subjects' boxes at OPENED


@dataclass(frozen=True)
class ZoneScores:
    """One zone at one threshold (``zone_id`` "all": every zone together)."""

    zone_id: str
    threshold_s: float
    events: tuple[TruthEvent, ...]
    alerts: tuple[Alert, ...]
    matches: tuple[tuple[TruthEvent, Alert], ...]
    duplicates: int  # alerts on a person who already had one in this zone (also false positives)

    @property
    def tp(self) -> int:
        return len(self.matches)

    @property
    def fp(self) -> int:
        return len(self.alerts) - self.tp

    @property
    def fn(self) -> int:
        return len(self.events) - self.tp

    @property
    def precision(self) -> float | None:
        return self.tp / len(self.alerts) if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.tp / len(self.events) if self.events else None

    @property
    def delays(self) -> list[float]:
        """Alert threshold time - ground-truth threshold time of each match, seconds (negative = early)."""
        return sorted(round(alert.at - event.at, 3) for event, alert in self.matches)


def _person_box(truth: FrameMap, frame: int, identity: int) -> Box | None:
    objects = truth.get(frame, FrameObjects())
    return objects.boxes[objects.ids.index(identity)] if identity in objects.ids else None


def alert_subject(alert: Alert, truth: FrameMap, min_iou: float = MATCH_IOU) -> int | None:
    """The annotated person the alert's subject box covers best at its frame (IoU >= ``min_iou``)."""
    objects = truth.get(alert.frame, FrameObjects())
    if not alert.boxes or not objects.ids:
        return None
    overlap = iou_matrix(alert.boxes[:1], objects.boxes)[0]
    best = int(np.argmax(overlap))
    return objects.ids[best] if overlap[best] >= min_iou else None


def _one_to_one(score: np.ndarray) -> list[tuple[int, int]]:
    return assign(score, 1.0)  # scores of valid pairs lie in (1, 2]: more pairs first, then nearer ones


def match_alerts(
    events: Sequence[TruthEvent],
    alerts: Sequence[Alert],
    truth: FrameMap,
    zone_id: str = "",
    threshold_s: float = 0.0,
    window: tuple[float, float] = WINDOW_S,
    min_iou: float = MATCH_IOU,
) -> ZoneScores:
    """One-to-one matches of one zone copy's alerts to its events (see the module docstring).

    The subject is compared with the person at the *alert's* frame: the box the operator sees.
    """
    score = np.zeros((len(events), len(alerts)))
    for i, event in enumerate(events):
        for j, alert in enumerate(alerts):
            delay, person = alert.at - event.at, _person_box(truth, alert.frame, event.identity)
            if person is None or not alert.boxes or not window[0] <= delay <= window[1]:
                continue
            if iou_matrix(alert.boxes[:1], [person])[0, 0] >= min_iou:
                score[i, j] = 2.0 - abs(delay) / (window[1] - window[0])
    per_person: dict[int, int] = defaultdict(int)
    for alert in alerts:
        subject = alert_subject(alert, truth, min_iou)
        if subject is not None:
            per_person[subject] += 1
    matches = tuple((events[i], alerts[j]) for i, j in _one_to_one(score))
    duplicates = sum(n - 1 for n in per_person.values())
    return ZoneScores(zone_id, threshold_s, tuple(events), tuple(alerts), matches, duplicates)


@dataclass(frozen=True)
class GroupScores:
    zone_id: str
    threshold_s: float
    events: tuple[TruthGroup, ...]
    alerts: tuple[Alert, ...]
    matched: int


def match_groups(
    events: Sequence[TruthGroup],
    alerts: Sequence[Alert],
    zone_id: str = "",
    threshold_s: float = 0.0,
    window: tuple[float, float] = WINDOW_S,
) -> GroupScores:
    """Group alerts matched to group events by time alone (one to one): who is in a group shifts."""
    score = np.zeros((len(events), len(alerts)))
    for i, event in enumerate(events):
        for j, alert in enumerate(alerts):
            if window[0] <= alert.at - event.at <= window[1]:
                score[i, j] = 2.0 - abs(alert.at - event.at) / (window[1] - window[0])
    return GroupScores(zone_id, threshold_s, tuple(events), tuple(alerts), len(_one_to_one(score)))


@dataclass(frozen=True)
class EventTrace:
    """How the pipeline saw one event's person during the stay: why an event was missed."""

    zone_id: str
    threshold_s: float
    event: TruthEvent
    matched: bool
    coverage: float  # share of the stay's sampled frames in which a track covered the person
    tracks: tuple[int, ...]  # the track ids that did, in order: more than one = identity switches
    alert_delays: tuple[float, ...]  # every alert of this zone copy on this person, matched or not

    def cause(self, window: tuple[float, float] = WINDOW_S) -> str:
        """The most likely reason a missed event got no matching alert."""
        if self.coverage < 0.5:
            return f"detector missed the person in {1 - self.coverage:.0%} of the stay's frames"
        outside = [f"{d:+.1f}s" for d in self.alert_delays if not window[0] <= d <= window[1]]
        if outside:
            return f"alert outside the window ({', '.join(outside)})"
        if len(self.tracks) > 1:
            return f"identity switches ({len(self.tracks)} tracks in turn): the clock did not survive"
        return "tracked, but the tracked feet point stayed out of the zone too long"


def trace_event(
    event: TruthEvent,
    truth: FrameMap,
    tracked: FrameMap,
    samples: Sequence[Sample],
    min_iou: float = MATCH_IOU,
) -> tuple[float, tuple[int, ...]]:
    """(coverage, covering track ids) of the person from the start of the stay to the threshold."""
    frames = covered = 0
    tracks: list[int] = []
    for frame, seconds in samples:
        person = _person_box(truth, frame, event.identity)
        if not event.started_at <= seconds <= event.at or person is None:
            continue
        frames += 1
        hypotheses = tracked.get(frame, FrameObjects())
        overlap = iou_matrix([person], hypotheses.boxes)[0]
        if len(overlap) and overlap.max() >= min_iou:
            covered += 1
            track = hypotheses.ids[int(np.argmax(overlap))]
            tracks += [track] if track not in tracks else []
    return (covered / frames if frames else 0.0), tuple(tracks)
