"""What the loitering rule remembers beyond one frame: where each track began, how it moved, whether it
walked out of view, and who was recently alerted in each zone.

Two faults, found by feeding :class:`detector.loitering.LoiteringRule` the annotated PETS09 S2L1 tracks
(issue 5), are why this exists:

- *Walking out of the picture is not an occlusion.* Where a zone reaches the frame edge (PETS' road
  junction), people leave the view while inside it; their track is lost there, and the next person
  to come in at the same spot has a track that began right where the lost one was, so re-entry
  matching by position handed them the old clock (4 false or early alerts of 18). A track whose last
  box was at the frame border, or would have reached it within :data:`EXIT_LOOKAHEAD_S` at the
  speed it was moving outwards, most likely left the field of view: :meth:`TrackHistory.left_view`.
- *One alert per person per zone* lived on the occupant record, which is forgotten when the track
  has been lost beyond the grace, so the same person back later alerted again. :class:`AlertMemory`
  keeps, per zone, the people whose incident closed less than ``cooldown_s`` ago.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from detector.appearance import RunningAppearance, similarity, usable
from detector.detections import Detections

MODEL_WEIGHT = 0.1  # the running appearance models' EMA weight: ~2 s of memory at 5 fps

# Leaving the view. Candidates for LoiteringRuleConfig (exit_margin_px, exit_lookahead_s,
# exit_min_speed). On PETS09 S2L1 the annotation of a person walking out at the right edge ends with
# the box 3-21 px short of the border, moving out at 27-79 px/s; a detector stops finding a person
# earlier still, when much of them is out of the picture (and clips the box to the frame).
BORDER_MARGIN_PX = 4.0  # a box this near the border touches it (rounding, JPEG edge blocks)
EXIT_LOOKAHEAD_S = 1.0  # lost while moving out and this close to the edge in time: gone out of view
# Slower than this (box heights per second, towards the border) is standing, not walking out: a
# walker covers 0.3-1 height a second across the picture (PETS exits: 0.28-0.92), while +-3 px of box
# jitter moves the centre at most 6 px/s over MOTION_WINDOW_S, 0.1 height of a 60 px person.
EXIT_MIN_SPEED = 0.1
MOTION_WINDOW_S = 1.0  # how far back a track's speed is measured: steadier than frame to frame
MOTION_WINDOW = timedelta(seconds=MOTION_WINDOW_S)
MOTION_MIN_SPAN_S = 0.3  # less history than this says nothing about which way someone walks
# A box more than this fraction covered by another person's box shows some of them too: it does not
# update anyone's appearance model, nor serve as the evidence for a re-association.
OCCLUSION_COVER = 0.25

# Remembered alerted people. Candidates for LoiteringRuleConfig (alert_memory_size): a cap, so a
# busy zone cannot grow the state without bound; at one alert a minute 300 s of cooldown needs 5.
ALERT_MEMORY_SIZE = 64


@dataclass
class TrackOrigin:
    """One track of the tracker: where and when it first appeared (to tell a fragment from a passer-by),
    how it looks, and its recent boxes (to tell whether it walked out of view)."""

    first_seen: datetime
    first_point: tuple[float, float]
    last_seen: datetime
    last_box: tuple[float, float, float, float]
    looks: RunningAppearance = field(default_factory=lambda: RunningAppearance(MODEL_WEIGHT))
    # (capture time, box centre x, box centre y) of the last MOTION_WINDOW_S, changed boxes only
    trail: deque[tuple[datetime, float, float]] = field(default_factory=deque)

    def velocity(self) -> tuple[float, float]:
        """Box-centre pixels per second over the trail, up to the last sighting (a box that stopped
        changing stood still since); (0, 0) when too short to say."""
        (t0, x0, y0), (_, x1, y1) = self.trail[0], self.trail[-1]
        span = (self.last_seen - t0).total_seconds()
        if span < MOTION_MIN_SPAN_S:
            return 0.0, 0.0
        return (x1 - x0) / span, (y1 - y0) / span


class TrackHistory:
    """Every track seen lately, bounded: one unseen for longer than ``memory_s`` is forgotten."""

    def __init__(self, memory_s: float) -> None:
        self.memory = timedelta(seconds=memory_s)
        self._tracks: dict[int, TrackOrigin] = {}

    def get(self, track: int) -> TrackOrigin | None:
        return self._tracks.get(track)

    def __contains__(self, track: int) -> bool:
        return track in self._tracks

    def __getitem__(self, track: int) -> TrackOrigin:
        return self._tracks[track]

    def __len__(self) -> int:
        return len(self._tracks)

    def clear(self) -> None:
        self._tracks.clear()

    def update(
        self,
        tracks: list[int],
        boxes: np.ndarray,
        points: np.ndarray,
        looks: list[np.ndarray | None],
        at: datetime,
    ) -> None:
        for i, track in enumerate(tracks):
            box = (float(boxes[i][0]), float(boxes[i][1]), float(boxes[i][2]), float(boxes[i][3]))
            origin = self._tracks.get(track)
            if origin is None:
                origin = TrackOrigin(at, (float(points[i][0]), float(points[i][1])), at, box)
                self._tracks[track] = origin
            # A frame carried forward repeats the last boxes: not a sighting of where the person is now.
            if not origin.trail or box != origin.last_box:
                origin.trail.append((at, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
            while len(origin.trail) > 1 and at - origin.trail[0][0] > MOTION_WINDOW:
                origin.trail.popleft()
            origin.last_seen, origin.last_box = at, box
            look = looks[i]
            if look is not None:
                origin.looks.add(look)
        for track in [t for t, o in self._tracks.items() if at - o.last_seen > self.memory]:
            del self._tracks[track]

    def left_view(self, track: int, width: int, height: int) -> bool:
        """Whether ``track`` was last seen walking out of the picture: its box at a frame border (within
        :data:`BORDER_MARGIN_PX`, or as far as it would have moved in :data:`EXIT_LOOKAHEAD_S`) while
        moving towards that border at :data:`EXIT_MIN_SPEED` or more. A person standing at the edge
        (not moving out) or lost mid-frame did not leave the view."""
        origin = self._tracks.get(track)
        if origin is None:
            return False
        x1, y1, x2, y2 = origin.last_box
        vx, vy = origin.velocity()
        slowest = EXIT_MIN_SPEED * max(y2 - y1, 1.0)
        for gap, outwards in ((x1, -vx), (width - x2, vx), (y1, -vy), (height - y2, vy)):
            if outwards >= slowest and gap <= BORDER_MARGIN_PX + outwards * EXIT_LOOKAHEAD_S:
                return True
        return False


@dataclass(frozen=True)
class AlertedPerson:
    """Someone whose incident in a zone closed, kept until their cooldown ends."""

    track_id: int  # their last track: the tracker's identity, unique for as long as this rule lives
    looks: np.ndarray | None  # their appearance model when forgotten; None without descriptors
    until: datetime  # closed_at + cooldown_s


class AlertMemory:
    """One zone's recently alerted people (bounded: expired after ``cooldown_s``, at most ``capacity``,
    the oldest dropped first), so that "one alert per person per zone" outlives the occupant record.

    Someone is an alerted person back when they have the same track id (the tracker says so), or,
    with descriptors, when they look alike to ``strong`` or more *and* more alike, by ``margin``, than
    to any other alerted person or anyone else around: a look many people share says nothing about
    who it is. Why that second condition: on PETS09 S2L1 (dark coats) strangers score 0.96-0.99
    against remembered people; the likeness alone silenced 3 of the 9 true 5 s events in the plaza,
    with it none. Without descriptors the memory cannot tell people apart, so only the track id is
    used: a stranger must not be silenced because someone else alerted. The trade-off that remains:
    a stranger who looks as alike as that, and unlike everyone else, within the cooldown, is silenced.
    """

    def __init__(
        self, cooldown_s: float, strong: float, margin: float, capacity: int = ALERT_MEMORY_SIZE
    ) -> None:
        self.cooldown = timedelta(seconds=cooldown_s)
        self.strong, self.margin = strong, margin
        self._people: deque[AlertedPerson] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._people)

    def clear(self) -> None:
        self._people.clear()

    def remember(self, track_id: int, looks: np.ndarray | None, closed_at: datetime) -> None:
        until = closed_at + self.cooldown
        if until > closed_at:  # a cooldown of 0 has nothing to remember
            self._people.append(AlertedPerson(track_id, None if looks is None else looks.copy(), until))

    def expire(self, at: datetime) -> None:
        self._people = deque((p for p in self._people if p.until > at), maxlen=self._people.maxlen)

    def silenced(
        self,
        track_id: int,
        looks: np.ndarray | None,
        at: datetime,
        lost: Iterable[tuple[int, np.ndarray | None]] = (),
        around: Iterable[np.ndarray | None] = (),
    ) -> bool:
        """Whether the person with this track and appearance was alerted and their cooldown runs.

        ``lost``: (track, looks) of the zone's alerted occupants, cooldown running, whose track is
        lost: alerted people not yet forgotten. ``around``: how everyone else in view or in the zone
        looks, the other people it could be.
        """
        known = [(p.track_id, p.looks) for p in self._people if p.until > at] + list(lost)
        if any(track == track_id for track, _ in known):
            return True
        if looks is None:
            return False
        scores = sorted((similarity(k, looks) for _, k in known if k is not None), reverse=True)
        if not scores or scores[0] < self.strong:
            return False
        rivals = scores[1:] + [similarity(other, looks) for other in around if other is not None]
        return all(rival <= scores[0] - self.margin for rival in rivals)


def clean_descriptors(det: Detections) -> list[np.ndarray | None]:
    """Per box, its descriptor if it may update a model: fresh (the backend looked at this frame; a
    carried-forward frame repeats the last one's boxes and would count them twice), usable, and not
    much covered by another person's box (it would show some of them too)."""
    if det.appearance is None or not det.inferred or not len(det):
        return [None] * len(det)
    boxes = det.boxes.astype(np.float64)
    left = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    top = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    right = np.minimum(boxes[:, None, 2], boxes[None, :, 2])
    bottom = np.minimum(boxes[:, None, 3], boxes[None, :, 3])
    overlap = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    np.fill_diagonal(overlap, 0.0)
    area = np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9, None)
    covered = overlap.max(axis=1) / area > OCCLUSION_COVER
    return [
        det.appearance[i] if not covered[i] and usable(det.appearance[i]) else None for i in range(len(det))
    ]
