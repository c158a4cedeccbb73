"""Loitering rule: people who stay in a zone too long, alone or in a group.

Pure logic, no I/O: :meth:`LoiteringRule.process` takes one camera's tracked
detections and where that frame lies in Kafka, and returns incident lifecycle
events. Everything is counted in capture time (the camera's clock as stamped at
ingest), never wall time, so a replay of the same frames yields the same events
and the same incident ids.

Definitions (defaults from :class:`cctv.config.LoiteringRuleConfig`):
- a person *enters* a zone after ``entry_frames`` consecutive frames with their
  bottom-centre inside; their dwell is counted from the first of those frames;
- dwell is the total capture time spent inside; a person who leaves or whose
  track is lost and who reappears (same track, or a new track that *began*
  within ``reentry_radius`` of where they were last seen inside, after that)
  within ``reentry_grace_s`` keeps their clock. Why where the new track began
  and not where it is now: a tracker that loses someone (occlusion, missed
  detections) starts a fresh track where it finds them again, while a passer-by
  who walks up to that spot has a track that began elsewhere; in a crowded
  scene matching by current position alone hands one person's clock to another;
- re-association by appearance too, when the detections carry descriptors
  (:mod:`detector.appearance`): each occupant keeps a running model of how they
  look while inside, and a new track is compared with it. It must not look
  clearly different (:data:`APPEARANCE_FLOOR`) to take a clock within
  ``reentry_radius``, and must look alike (:data:`APPEARANCE_STRONG`), and more
  alike than anyone else around (:data:`DISTINCT_MARGIN`), to take one from up
  to :data:`WIDE_RADIUS_FACTOR` times further away (the person moved a few steps
  while a passer-by hid them). Without descriptors (a backend
  or test without images) the rule is position only, exactly as above;
- except for someone who walked out of the picture: a track last seen at a frame
  border, moving out (:meth:`TrackHistory.left_view`), was not lost but gone,
  and nobody takes their clock. Whoever comes in next at that spot begins right
  where they were: on PETS' road junction that handed 4 of 18 alerts (perfect
  tracks) to newcomers. Not even by appearance: there the one such re-association
  the far band made (HOG + ByteTrack) gave the clock to a stranger 190 px inside
  the frame. Someone who steps out and back in within the grace starts afresh;
- OPENED when the dwell reaches ``dwell_s`` (inside ``active_hours``), UPDATED
  every ``update_interval_s`` while open, CLOSED when the person has left the
  zone (``entry_frames`` consecutive frames outside), when the track has been
  lost for longer than the grace, or after ``max_incident_s``;
- one alert per person per zone: no new alert until ``cooldown_s`` after the
  previous incident closed. The occupant record keeps this while it lives; once
  it is forgotten (lost beyond the grace) the zone's :class:`AlertMemory` keeps
  it, as do the zone's other alerted occupants whose track is lost: a new
  occupant with the same track id, or looking alike to :data:`APPEARANCE_STRONG`
  and more alike than anyone around, is still timed but does not alert until
  that cooldown ends. Without descriptors only the track id can match (a stranger
  must not be silenced because someone else alerted); with them a lookalike
  stranger within the cooldown is silenced too (see :class:`AlertMemory`);
- group loitering: ``group_size`` people in the zone past the dwell time together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import numpy as np

from cctv.contracts import IncidentEvent, incident_id_for
from cctv.rule_config import LoiteringRuleConfig, Zone
from detector.appearance import RunningAppearance, similarity
from detector.detections import Detections
from detector.events import FramePosition, FrameRing, RuleEvent, frame_span
from detector.loitering_memory import MODEL_WEIGHT, AlertMemory, TrackHistory, clean_descriptors
from detector.zones import in_active_hours, points_in_polygon

UPDATE_INTERVAL_S = 10.0

# Re-association by appearance. Candidates for LoiteringRuleConfig once tuned per site; calibrated on
# PETS09 S2L1 (annotated boxes with +-8% jitter, JPEG q85, 5 fps; a person's running model against
# their own box 3 s later, and against other people within 240 px): at 0.70 97% of same-person pairs
# pass and 40% of other-person pairs are turned away; at 0.88, 77% and 89%. The simulated street's
# two pedestrians (beige coat, black coat) score 0.65-0.66 against each other, 0.99 against themselves.
APPEARANCE_FLOOR = 0.70  # within reentry_radius: reject only a clearly different-looking person
APPEARANCE_STRONG = 0.88  # beyond it, up to the wide radius: accept only a close likeness
WIDE_RADIUS_FACTOR = 2.5  # the wide radius, in reentry_radius units
# A far re-association also needs the candidate to look more alike, by this much, than every other
# person around (the zone's other occupants, everyone in view): where many dress alike (PETS: dark
# coats), a far fragment is more often a lookalike passer-by than the lost person. On PETS09 S2L1
# with HOG + ByteTrack (398 frames, 55 relink decisions scored against the annotations) the far band
# without this check made 18 wrong re-associations where position alone made 14; with it, 9 (0.03 to
# 0.1 all give 9).
DISTINCT_MARGIN = 0.05
# A person seen inside, then not detected for up to this long, then seen inside again (and never seen
# outside meanwhile) was there all along: the detector missed them (HOG misses 1 frame in 3 on a
# crowded bench). Counting only consecutive sightings made the dwell clock run up to ~30 % slow.
MISSED_GAP = timedelta(seconds=1.5)
# How much distance counts against likeness when choosing between candidates: being at the edge of
# the wide radius costs as much as this much similarity.
DISTANCE_PENALTY = 0.1
# Candidates whose scores differ by less than this are told apart by recency, not appearance: colour
# histograms of two people in dark clothes differ by noise.
AMBIGUITY_MARGIN = 0.03


@dataclass
class _Incident:
    incident_id: UUID
    threshold_at: datetime
    last_event_at: datetime


@dataclass
class _Occupant:
    """One person in (or recently in) one zone; survives track changes through re-entry matching."""

    track_id: int
    key: str  # stream:seq:ordinal of the first frame inside: stable under replay
    started_at: datetime
    window_start: int
    point: tuple[float, float]
    last_inside: datetime
    streak: int = 1
    entered: bool = False
    dwell: timedelta = timedelta(0)
    outside_streak: int = 0
    left: bool = False
    alerts: int = 0
    closed_at: datetime | None = None
    incident: _Incident | None = None
    looks: RunningAppearance = field(default_factory=lambda: RunningAppearance(MODEL_WEIGHT))


@dataclass
class _ZoneState:
    zone: Zone
    config: LoiteringRuleConfig
    occupants: dict[int, _Occupant] = field(default_factory=dict)  # by current track id
    group: _Incident | None = None
    group_members: tuple[int, ...] = ()
    group_started: datetime | None = None
    group_window: int = 0
    group_closed_at: datetime | None = None
    alerted: AlertMemory = field(init=False)  # the zone's recently alerted people

    def __post_init__(self) -> None:
        self.alerted = AlertMemory(self.config.cooldown_s, APPEARANCE_STRONG, DISTINCT_MARGIN)


class LoiteringRule:
    """Loitering for every zone of one camera that has a loitering rule."""

    def __init__(
        self,
        camera_id: str,
        zones: tuple[Zone, ...],
        pre_roll_s: float,
        update_interval_s: float = UPDATE_INTERVAL_S,
    ) -> None:
        self.camera_id = camera_id
        self.update_interval = timedelta(seconds=update_interval_s)
        self.ring = FrameRing(pre_roll_s)
        self._zones = [_ZoneState(z, z.rules.loitering) for z in zones if z.rules.loitering is not None]
        self._prev_ts: datetime | None = None
        # Bounded: a track unseen for longer than any grace can no longer matter to a relink.
        self._origins = TrackHistory(max((z.config.reentry_grace_s for z in self._zones), default=0.0))

    @property
    def needs_appearance(self) -> bool:
        """Whether descriptors would be used: only zones with a loitering rule read them."""
        return bool(self._zones)

    @property
    def occupant_count(self) -> int:
        """People remembered across all zones (bounded: retired ones are forgotten)."""
        return sum(len(z.occupants) for z in self._zones)

    @property
    def remembered_alerts(self) -> int:
        """Alerted people remembered for their cooldown across all zones (bounded per zone)."""
        return sum(len(z.alerted) for z in self._zones)

    def process(self, detections: Detections, position: FramePosition) -> list[RuleEvent]:
        if detections.track_ids is None:
            raise ValueError("loitering needs tracked detections (track_ids is None)")
        at = detections.capture_ts
        self.ring.add(at, position)
        events: list[RuleEvent] = []
        points = detections.bottom_centres()
        tracks = [int(t) for t in detections.track_ids]
        looks = clean_descriptors(detections)
        self._origins.update(tracks, detections.boxes, points, looks, at)
        for state in self._zones:
            inside = points_in_polygon(points, state.zone.polygon) if len(points) else np.zeros(0, bool)
            events += self._update_zone(state, detections, tracks, points, looks, inside, position)
        self._prev_ts = at
        return events

    def close_all(self, at: datetime, position: FramePosition, reason: str) -> list[RuleEvent]:
        """Close every open incident (worker stopping, partition handed over) and forget all state."""
        events = []
        for state in self._zones:
            for occ in state.occupants.values():
                if occ.incident is not None:
                    events.append(self._close(state, occ, at, position, reason))
            if state.group is not None:
                events.append(self._close_group(state, at, position, reason))
            state.occupants.clear()
            state.alerted.clear()
        self._origins.clear()
        return events

    # ----------------------------------------------------------------- individuals

    def _update_zone(
        self,
        state: _ZoneState,
        det: Detections,
        tracks: list[int],
        points: np.ndarray,
        looks: list[np.ndarray | None],
        inside: np.ndarray,
        position: FramePosition,
    ) -> list[RuleEvent]:
        cfg, at = state.config, det.capture_ts
        events: list[RuleEvent] = []
        present = set(tracks)
        diagonal = math.hypot(det.width, det.height)
        new_inside = sorted((float(points[i][0]), i) for i, t in enumerate(tracks) if inside[i])
        for ordinal, (_, i) in enumerate(new_inside):
            track, point = tracks[i], (float(points[i][0]), float(points[i][1]))
            occ = state.occupants.get(track) or self._relink(state, track, point, present, at, det, diagonal)
            if occ is None:
                origin = self._origins[track]
                state.occupants[track] = _Occupant(
                    track_id=track,
                    key=f"{position.stream_id}:{position.seq}:{ordinal}",
                    started_at=at,
                    window_start=self.ring.start_for(at),
                    point=point,
                    last_inside=at,
                    entered=cfg.entry_frames <= 1,
                    looks=origin.looks.copy(),  # how the track looked so far, this frame included
                )
                continue
            look = looks[i]
            if look is not None:
                occ.looks.add(look)
            missed = occ.entered and occ.outside_streak == 0 and at - occ.last_inside <= MISSED_GAP
            if self._prev_ts is not None and (occ.last_inside == self._prev_ts or missed):
                occ.dwell += at - occ.last_inside  # time seen inside counts, and short misses; time away not
            occ.streak += 1
            occ.entered = occ.entered or occ.streak >= cfg.entry_frames
            occ.outside_streak, occ.left, occ.point, occ.last_inside = 0, False, point, at
        inside_tracks = {tracks[i] for i in range(len(tracks)) if inside[i]}
        grace = timedelta(seconds=cfg.reentry_grace_s)
        for track, occ in list(state.occupants.items()):
            if track in inside_tracks:
                continue
            if not occ.entered:  # the entry streak broke: not a zone occupant after all
                del state.occupants[track]
                continue
            occ.streak = 0
            if track in present:
                occ.outside_streak += 1
                if occ.outside_streak >= cfg.entry_frames and not occ.left:
                    occ.left = True
                    if occ.incident is not None:
                        events.append(self._close(state, occ, at, position, "left the zone"))
            if at - occ.last_inside > grace:
                if occ.incident is not None:
                    events.append(self._close(state, occ, at, position, "track lost"))
                if occ.closed_at is not None:  # one alert per person per zone outlives the record
                    state.alerted.remember(occ.track_id, occ.looks.mean, occ.closed_at)
                del state.occupants[track]
        state.alerted.expire(at)
        for occ in list(state.occupants.values()):
            is_inside = occ.track_id in inside_tracks
            events += self._check_threshold(state, occ, at, position, is_inside, present)
        events += self._check_group(state, at, position)
        return events

    def _relink(
        self,
        state: _ZoneState,
        track: int,
        point: tuple[float, float],
        present: set[int],
        at: datetime,
        det: Detections,
        diagonal: float,
    ) -> _Occupant | None:
        """The entered occupant whose track this one continues: it began after the occupant was last seen
        inside, near where they were, within the grace, and does not look like someone else; never
        one who walked out of the picture (see the module docstring).

        Choosing among several candidates: each gets a score, its appearance similarity less
        :data:`DISTANCE_PENALTY` for distance (a candidate without appearance evidence, on either side,
        scores :data:`APPEARANCE_FLOOR`). Among the candidates within :data:`AMBIGUITY_MARGIN` of the
        best score, the most recently lost wins, then the nearest: a tracker resumes a person within a
        frame or two, while stale occupants near a busy spot are other people. Without descriptors all
        scores tie, so this is exactly the position-only choice.
        """
        cfg = state.config
        origin = self._origins.get(track)
        began_at, began = (origin.first_seen, origin.first_point) if origin is not None else (at, point)
        probe = origin.looks.mean if origin is not None else None
        radius = cfg.reentry_radius * diagonal
        wide = WIDE_RADIUS_FACTOR * radius
        candidates: list[tuple[float, datetime, float, int]] = []  # score, last seen, -distance, track
        for old_track, occ in state.occupants.items():
            if old_track in present or not occ.entered:
                continue
            if began_at <= occ.last_inside or (at - occ.last_inside).total_seconds() > cfg.reentry_grace_s:
                continue  # seen together with the occupant: someone else
            if self._origins.left_view(old_track, det.width, det.height):
                continue  # walked out of the picture: whoever comes in there is someone else
            dist = math.hypot((began[0] - occ.point[0]) * det.width, (began[1] - occ.point[1]) * det.height)
            if probe is None or occ.looks.mean is None:
                if dist > radius:
                    continue
                score = APPEARANCE_FLOOR
            else:
                alike = similarity(probe, occ.looks.mean)
                near = dist <= radius and alike >= APPEARANCE_FLOOR
                far = dist <= wide and alike >= APPEARANCE_STRONG
                if not (near or (far and self._distinct(state, probe, occ, alike, track, present))):
                    continue
                score = alike - DISTANCE_PENALTY * dist / wide
            candidates.append((score, occ.last_inside, -dist, old_track))
        if not candidates:
            return None
        top = max(c[0] for c in candidates)
        best = max((c for c in candidates if c[0] >= top - AMBIGUITY_MARGIN), key=lambda c: c[1:3])
        occ = state.occupants.pop(best[3])
        occ.track_id = track
        state.occupants[track] = occ
        return occ

    def _distinct(
        self,
        state: _ZoneState,
        probe: np.ndarray,
        candidate: _Occupant,
        alike: float,
        track: int,
        present: set[int],
    ) -> bool:
        """Whether ``probe`` looks like ``candidate`` by DISTINCT_MARGIN more than like anyone else around:
        the zone's other occupants and the other people in view."""
        others = [o.looks.mean for o in state.occupants.values() if o is not candidate]
        others += [self._origins[t].looks.mean for t in present if t != track and t in self._origins]
        limit = alike - DISTINCT_MARGIN
        return all(similarity(probe, other) <= limit for other in others if other is not None)

    def _check_threshold(
        self,
        state: _ZoneState,
        occ: _Occupant,
        at: datetime,
        position: FramePosition,
        is_inside: bool,
        present: set[int],
    ) -> list[RuleEvent]:
        cfg = state.config
        if occ.incident is not None:
            if at - occ.incident.threshold_at >= timedelta(seconds=cfg.max_incident_s):
                return [self._close(state, occ, at, position, "maximum incident duration")]
            if is_inside and at - occ.incident.last_event_at >= self.update_interval:
                occ.incident.last_event_at = at
                return [self._event(state, occ, IncidentEvent.UPDATED, at, position, "still in the zone")]
            return []
        cooled = occ.closed_at is None or at - occ.closed_at >= timedelta(seconds=cfg.cooldown_s)
        if (
            is_inside
            and occ.entered
            and occ.dwell >= timedelta(seconds=cfg.dwell_s)
            and cooled
            and in_active_hours(at, cfg.active_hours)
            and not self._alerted_before(state, occ, at, present)
        ):
            key = occ.key if occ.alerts == 0 else f"{occ.key}:{occ.alerts}"
            occ.incident = _Incident(incident_id_for(self.camera_id, "loitering", state.zone.id, key), at, at)
            occ.alerts += 1
            return [self._event(state, occ, IncidentEvent.OPENED, at, position, "dwell threshold reached")]
        return []

    def _alerted_before(self, state: _ZoneState, occ: _Occupant, at: datetime, present: set[int]) -> bool:
        """Whether ``occ`` was alerted in this zone and their cooldown runs: remembered, or one of the
        zone's alerted occupants whose track is lost (not yet forgotten)."""
        cooldown = timedelta(seconds=state.config.cooldown_s)
        lost: list[tuple[int, np.ndarray | None]] = []
        around = [self._origins[t].looks.mean for t in present if t != occ.track_id and t in self._origins]
        for other in (o for o in state.occupants.values() if o is not occ):
            cooling = other.incident is not None or (
                other.closed_at is not None and at - other.closed_at < cooldown
            )
            if cooling and other.track_id not in present:
                lost.append((other.track_id, other.looks.mean))
            else:  # in view, or not alerted: someone else it could be
                around.append(other.looks.mean)
        return state.alerted.silenced(occ.track_id, occ.looks.mean, at, lost, around)

    def _close(
        self, state: _ZoneState, occ: _Occupant, at: datetime, position: FramePosition, reason: str
    ) -> RuleEvent:
        event = self._event(state, occ, IncidentEvent.CLOSED, at, position, reason, ended_at=occ.last_inside)
        occ.incident, occ.closed_at = None, at
        return event

    def _event(
        self,
        state: _ZoneState,
        occ: _Occupant,
        kind: IncidentEvent,
        at: datetime,
        position: FramePosition,
        why: str,
        ended_at: datetime | None = None,
    ) -> RuleEvent:
        assert occ.incident is not None
        dwell = occ.dwell.total_seconds()
        name = state.zone.name or state.zone.id
        return RuleEvent(
            incident_id=occ.incident.incident_id,
            event=kind,
            rule="loitering",
            zone_id=state.zone.id,
            track_ids=(occ.track_id,),
            started_at=occ.started_at,
            threshold_at=occ.incident.threshold_at,
            event_at=at,
            ended_at=ended_at,
            dwell_s=dwell,
            frames=frame_span(position, occ.window_start),
            summary=f"Person (track {occ.track_id}) loitering in '{name}' for {dwell:.0f}s: {why}",
        )

    # ----------------------------------------------------------------- groups

    def _check_group(self, state: _ZoneState, at: datetime, position: FramePosition) -> list[RuleEvent]:
        cfg = state.config
        if cfg.group_size is None:
            return []
        dwell = timedelta(seconds=cfg.dwell_s)
        members = [o for o in state.occupants.values() if o.entered and not o.left and o.dwell >= dwell]
        ids = tuple(sorted(o.track_id for o in members))
        if state.group is not None:
            if len(members) < cfg.group_size:
                return [self._close_group(state, at, position, "group dispersed")]
            if at - state.group.threshold_at >= timedelta(seconds=cfg.max_incident_s):
                return [self._close_group(state, at, position, "maximum incident duration")]
            state.group_members = tuple(sorted(set(state.group_members) | set(ids)))
            if at - state.group.last_event_at >= self.update_interval:
                state.group.last_event_at = at
                return [
                    self._group_event(state, IncidentEvent.UPDATED, at, position, "group still in the zone")
                ]
            return []
        cooled = state.group_closed_at is None or at - state.group_closed_at >= timedelta(
            seconds=cfg.cooldown_s
        )
        if len(members) >= cfg.group_size and cooled and in_active_hours(at, cfg.active_hours):
            key = f"{position.stream_id}:{position.seq}"
            state.group = _Incident(
                incident_id_for(self.camera_id, "group_loitering", state.zone.id, key), at, at
            )
            state.group_members = ids
            state.group_started = min(o.started_at for o in members)
            state.group_window = min(o.window_start for o in members)
            return [
                self._group_event(state, IncidentEvent.OPENED, at, position, "group dwell threshold reached")
            ]
        return []

    def _close_group(
        self, state: _ZoneState, at: datetime, position: FramePosition, reason: str
    ) -> RuleEvent:
        event = self._group_event(state, IncidentEvent.CLOSED, at, position, reason, ended_at=at)
        state.group, state.group_closed_at = None, at
        return event

    def _group_event(
        self,
        state: _ZoneState,
        kind: IncidentEvent,
        at: datetime,
        position: FramePosition,
        why: str,
        ended_at: datetime | None = None,
    ) -> RuleEvent:
        assert state.group is not None and state.group_started is not None
        name = state.zone.name or state.zone.id
        return RuleEvent(
            incident_id=state.group.incident_id,
            event=kind,
            rule="group_loitering",
            zone_id=state.zone.id,
            track_ids=state.group_members,
            started_at=state.group_started,
            threshold_at=state.group.threshold_at,
            event_at=at,
            ended_at=ended_at,
            dwell_s=(at - state.group_started).total_seconds(),
            frames=frame_span(position, state.group_window),
            summary=f"Group of {len(state.group_members)} loitering in '{name}': {why}",
        )
