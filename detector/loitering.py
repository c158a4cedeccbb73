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
- OPENED when the dwell reaches ``dwell_s`` (inside ``active_hours``), UPDATED
  every ``update_interval_s`` while open, CLOSED when the person has left the
  zone (``entry_frames`` consecutive frames outside), when the track has been
  lost for longer than the grace, or after ``max_incident_s``;
- one alert per person per zone: no new alert until ``cooldown_s`` after the
  previous incident closed;
- group loitering: ``group_size`` people in the zone past the dwell time together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import numpy as np

from cctv.config import LoiteringRuleConfig, Zone
from cctv.contracts import IncidentEvent, incident_id_for
from detector.detections import Detections
from detector.events import FramePosition, FrameRing, RuleEvent, frame_span
from detector.zones import in_active_hours, points_in_polygon

UPDATE_INTERVAL_S = 10.0


@dataclass
class _TrackOrigin:
    """Where and when the tracker first reported a track (to tell a fragment from a passer-by)."""

    first_seen: datetime
    first_point: tuple[float, float]
    last_seen: datetime


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
        self._origins: dict[int, _TrackOrigin] = {}
        graces = [z.config.reentry_grace_s for z in self._zones]
        self._origin_memory = timedelta(seconds=max(graces, default=0.0))

    @property
    def occupant_count(self) -> int:
        """People remembered across all zones (bounded: retired ones are forgotten)."""
        return sum(len(z.occupants) for z in self._zones)

    def process(self, detections: Detections, position: FramePosition) -> list[RuleEvent]:
        if detections.track_ids is None:
            raise ValueError("loitering needs tracked detections (track_ids is None)")
        at = detections.capture_ts
        self.ring.add(at, position)
        events: list[RuleEvent] = []
        points = detections.bottom_centres()
        tracks = [int(t) for t in detections.track_ids]
        self._remember_origins(tracks, points, at)
        for state in self._zones:
            inside = points_in_polygon(points, state.zone.polygon) if len(points) else np.zeros(0, bool)
            events += self._update_zone(state, detections, tracks, points, inside, position)
        self._prev_ts = at
        return events

    def _remember_origins(self, tracks: list[int], points: np.ndarray, at: datetime) -> None:
        for i, track in enumerate(tracks):
            origin = self._origins.get(track)
            if origin is None:
                self._origins[track] = _TrackOrigin(at, (float(points[i][0]), float(points[i][1])), at)
            else:
                origin.last_seen = at
        # Bounded: a track unseen for longer than any grace can no longer matter to a relink.
        for track in [t for t, o in self._origins.items() if at - o.last_seen > self._origin_memory]:
            del self._origins[track]

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
        self._origins.clear()
        return events

    # ----------------------------------------------------------------- individuals

    def _update_zone(
        self,
        state: _ZoneState,
        det: Detections,
        tracks: list[int],
        points: np.ndarray,
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
                state.occupants[track] = _Occupant(
                    track_id=track,
                    key=f"{position.stream_id}:{position.seq}:{ordinal}",
                    started_at=at,
                    window_start=self.ring.start_for(at),
                    point=point,
                    last_inside=at,
                    entered=cfg.entry_frames <= 1,
                )
                continue
            if self._prev_ts is not None and occ.last_inside == self._prev_ts:
                occ.dwell += at - self._prev_ts  # only time seen inside counts, not time away
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
                del state.occupants[track]
        for occ in list(state.occupants.values()):
            events += self._check_threshold(state, occ, at, position, occ.track_id in inside_tracks)
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
        inside, near where they were, within the grace (see the module docstring)."""
        cfg = state.config
        origin = self._origins.get(track)
        began_at, began = (origin.first_seen, origin.first_point) if origin is not None else (at, point)
        best: tuple[datetime, float, int] | None = None  # most recently seen first, then nearest
        for old_track, occ in state.occupants.items():
            if old_track in present or not occ.entered:
                continue
            if began_at <= occ.last_inside or (at - occ.last_inside).total_seconds() > cfg.reentry_grace_s:
                continue  # seen together with the occupant: someone else
            dist = math.hypot((began[0] - occ.point[0]) * det.width, (began[1] - occ.point[1]) * det.height)
            # The most recently lost occupant wins over a nearer one lost long ago: a tracker resumes a
            # person within a frame or two, while stale occupants near a busy spot are other people.
            candidate = (occ.last_inside, -dist, old_track)
            if dist <= cfg.reentry_radius * diagonal and (best is None or candidate[:2] > best[:2]):
                best = candidate
        if best is None:
            return None
        occ = state.occupants.pop(best[2])
        occ.track_id = track
        state.occupants[track] = occ
        return occ

    def _check_threshold(
        self, state: _ZoneState, occ: _Occupant, at: datetime, position: FramePosition, is_inside: bool
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
        ):
            key = occ.key if occ.alerts == 0 else f"{occ.key}:{occ.alerts}"
            occ.incident = _Incident(incident_id_for(self.camera_id, "loitering", state.zone.id, key), at, at)
            occ.alerts += 1
            return [self._event(state, occ, IncidentEvent.OPENED, at, position, "dwell threshold reached")]
        return []

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
