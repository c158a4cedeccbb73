"""Protected-area change (graffiti, damage) and object removed: an area that stays changed after a visit.

Pure logic, no I/O: :meth:`AreaChangeRule.process` takes one camera's frame, its
tracked detections (people boxes with track ids, plus the motion gate's
regions) and where the frame lies in Kafka, and returns incident lifecycle
events. Everything runs on capture time, so a replay of the same frames yields
the same events and the same incident ids.

Per watched area (a zone with an ``area_change`` or ``object_removed`` rule; the
zone polygon is the protected area or the object's outline):

- *reference*: a colour copy of the area and its surroundings (the *context*:
  the area's box grown by :data:`CONTEXT_MARGIN` of its size on each side), at
  :data:`ANALYSIS_WIDTH`-wide frame scale, averaged over recent frames while the
  area is *clear*: no person box and no motion region overlaps it. A copy of the
  whole frame from then (about once a second) is the "before" snapshot.
- *visit*: a person box overlaps the area (``area_change``: "a person was at the
  area"); for ``object_removed`` any motion there counts too, because a thief the
  detector missed must still be caught. The reference and the before snapshot
  are frozen while the visit lasts.
- *judgement*: once the area has been clear for ``settle_s``, the current view is
  compared with the frozen reference. Lighting is normalised first: a gain per
  colour channel, the median current/reference ratio over the whole context
  (so an object that fills its own area cannot explain itself away as a
  lighting change); a view that turned greyscale (IR night mode) is compared in
  grey; both views are blurred a little (:data:`COMPARE_BLUR`) so a slight
  defocus or shake moves no edges. Pixels differing by more than ``pixel_delta``
  inside the area, cleaned
  up (morphological opening and closing) and kept as connected blobs of at least
  ``min_region_fraction`` of the area, are the change.
- changed fraction >= ``min_changed_fraction`` (and not within ``cooldown_s`` of
  this area's last alert): OPENED with ``change_region`` (the blobs' bounding box
  in frame pixels) and ``before_image``; CLOSED on the next frame. Either way the
  current view becomes the reference: a change is reported once, and a lighting
  change while nobody visits just re-learns.

Why close at once: the change is a fact established at one moment, not a
condition that lasts; the evidence covers the visit (from ``pre_roll_s`` before
it began) up to the judgement, plus the evidence store's post-roll.

Not the area but the view: when :data:`WIDESPREAD_CHANGE` of the area's free
surroundings (no people, no motion) changed too, the camera was covered or moved
and nothing is reported (that is the tamper rule's to report). Subtler view
changes (a defocus) are caught by passing ``view_ok=False`` while the camera's
tamper rule suspects the view (:attr:`detector.tamper.TamperRule.view_normal`):
the frame then counts as disturbed everywhere.

A visit longer than ``max_visit_s`` is not judged (the view from before it is too
old to compare with); the area re-learns once clear. A resolution change or
capture time going backwards closes what is open and re-learns every area.
Memory is bounded: per area one reference (small), at most one frame copy and
at most :data:`MAX_VISIT_TRACKS` track ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import cv2
import numpy as np

from cctv.contracts import IncidentEvent, incident_id_for
from cctv.rule_config import AreaChangeRuleConfig, Zone
from detector.detections import Detections, Region
from detector.events import FramePosition, FrameRing, RuleEvent, frame_span
from detector.zones import polygon_pixels

ANALYSIS_WIDTH = 320  # frame width the areas are compared at: graffiti strokes stay a few pixels wide
CONTEXT_MARGIN = 1.0  # lighting is estimated over the area and this much of its size around it
LEARN_TAU_S = 1.0  # the reference averages sensor noise over about a second of clear frames
MIN_REFERENCE_FRAMES = 3  # a visit before the area was seen clear this often cannot be judged
BEFORE_REFRESH_S = 1.0
GREY_CHROMA = 4.0  # mean channel spread (0-255) below which a view counts as greyscale (IR night mode)
DARK_FLOOR = 8.0  # reference pixels darker than this say nothing about the gain
MIN_BLOB_PX = 4  # at analysis scale: a blob smaller than this is noise whatever the area's size
MAX_VISIT_TRACKS = 32
COMPARE_BLUR = 2.0  # px at analysis scale: a defocus or a shake changes no area, paint and removals still do
WIDESPREAD_CHANGE = 0.3  # this much of the area's free surroundings changed too: the view, not the area


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale to ``size`` (width, height), averaging like INTER_AREA at about a third of its cost.

    Why two steps: OpenCV's area interpolation is fast for whole-number factors only;
    the rest of the way is a small bilinear step on an already low-passed image.
    """
    height, width = image.shape[:2]
    factor = max(1, min(width // max(1, size[0]), height // max(1, size[1])))
    if factor > 1:
        image = cv2.resize(image, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Change:
    """What a judgement found: the changed fraction of the area and where (frame pixels)."""

    fraction: float
    region: Region | None
    surroundings: float  # changed fraction of the free context around the area


@dataclass(frozen=True)
class _Geometry:
    """Where an area lies for one frame size, in the camera's small analysis copy (see :func:`small_copy`)."""

    scale: tuple[float, float]  # analysis pixels per frame pixel, x and y
    context: Region  # the analysed crop, in analysis pixels
    mask: np.ndarray  # (h, w) bool: the area's polygon inside the crop
    area_px: int

    @classmethod
    def build(cls, zone: Zone, width: int, height: int) -> _Geometry:
        small_w, small_h = analysis_size(width, height)
        vertices = polygon_pixels(zone.polygon, small_w, small_h).reshape(-1, 2)
        x1, y1 = np.clip(vertices.min(axis=0), 0, [small_w - 1, small_h - 1])
        x2, y2 = np.clip(vertices.max(axis=0) + 1, 1, [small_w, small_h])
        mx, my = (x2 - x1) * CONTEXT_MARGIN, (y2 - y1) * CONTEXT_MARGIN
        cx1, cy1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
        cx2, cy2 = min(small_w, math.ceil(x2 + mx)), min(small_h, math.ceil(y2 + my))
        mask = np.zeros((cy2 - cy1, cx2 - cx1), np.uint8)
        cv2.fillPoly(mask, [(vertices - [cx1, cy1]).astype(np.int32).reshape(-1, 1, 2)], 1)
        return cls(
            (small_w / width, small_h / height),
            (cx1, cy1, cx2, cy2),
            mask.astype(bool),
            max(1, int(np.count_nonzero(mask))),
        )

    def crop(self, small: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = self.context
        return small[y1:y2, x1:x2].astype(np.float32)

    def _cells_of(self, box: Sequence[float]) -> tuple[slice, slice] | None:
        """The crop's rows and columns under a frame-pixel box; None when it misses the crop."""
        (sx, sy), (x1, y1, x2, y2) = self.scale, self.context
        c1, r1 = max(0, int(box[0] * sx) - x1), max(0, int(box[1] * sy) - y1)
        c2, r2 = math.ceil(box[2] * sx) - x1, math.ceil(box[3] * sy) - y1
        if c2 <= 0 or r2 <= 0 or c1 >= x2 - x1 or r1 >= y2 - y1:
            return None
        return slice(r1, r2), slice(c1, c2)

    def overlaps(self, box: Sequence[float]) -> bool:
        """Whether a frame-pixel box covers any pixel of the area."""
        cells = self._cells_of(box)
        return cells is not None and bool(self.mask[cells].any())

    def covered_by(self, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """(h, w) bool: the crop pixels under any of the frame-pixel boxes."""
        out = np.zeros(self.mask.shape, bool)
        for box in boxes:
            cells = self._cells_of(box)
            if cells is not None:
                out[cells] = True
        return out

    def to_frame(self, region: tuple[int, int, int, int]) -> Region:
        """A crop rectangle in frame pixels."""
        (sx, sy), (x1, y1, _, _) = self.scale, self.context
        return (
            int((x1 + region[0]) / sx),
            int((y1 + region[1]) / sy),
            math.ceil((x1 + region[2]) / sx),
            math.ceil((y1 + region[3]) / sy),
        )


def analysis_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, ANALYSIS_WIDTH / width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def small_copy(frame_bgr: np.ndarray) -> np.ndarray:
    """The frame at analysis scale: made once per frame, every area is a crop of it."""
    height, width = frame_bgr.shape[:2]
    return shrink(frame_bgr, analysis_size(width, height))


def compare_area(
    current: np.ndarray,
    reference: np.ndarray,
    geometry: _Geometry,
    config: AreaChangeRuleConfig,
    occupied: np.ndarray | None = None,
) -> Change:
    """How much of the area differs from the reference once lighting is normalised (module docstring);
    ``occupied`` (crop-size bool) marks people and motion around the area, left out of ``surroundings``."""
    chroma_now, chroma_before = _chroma(current), _chroma(reference)
    if chroma_now < GREY_CHROMA or chroma_before < GREY_CHROMA:  # IR night mode on either side
        current = cv2.cvtColor(current, cv2.COLOR_BGR2GRAY)[..., None]
        reference = cv2.cvtColor(reference, cv2.COLOR_BGR2GRAY)[..., None]
    channels = current.shape[2]
    current = cv2.GaussianBlur(current, (0, 0), COMPARE_BLUR).reshape(current.shape)
    reference = cv2.GaussianBlur(reference, (0, 0), COMPARE_BLUR).reshape(reference.shape)
    diff = np.zeros(current.shape[:2], np.float32)
    for channel in range(channels):
        cur, ref = current[..., channel], reference[..., channel]
        lit = ref > DARK_FLOOR
        gain = float(np.median(cur[lit] / ref[lit])) if lit.any() else 1.0
        diff = np.maximum(diff, np.abs(cur / max(gain, 1e-3) - ref))
    kernel = np.ones((3, 3), np.uint8)
    changed_all = cv2.morphologyEx((diff > config.pixel_delta).astype(np.uint8), cv2.MORPH_OPEN, kernel)
    around = ~geometry.mask if occupied is None else ~geometry.mask & ~occupied
    n_around = int(np.count_nonzero(around))
    surroundings = (
        np.count_nonzero(changed_all.astype(bool) & around) / n_around
        if n_around >= max(MIN_BLOB_PX * 4, geometry.area_px // 4)
        else 0.0
    )
    changed = cv2.morphologyEx(changed_all & geometry.mask, cv2.MORPH_CLOSE, kernel) & geometry.mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    min_px = max(MIN_BLOB_PX, config.min_region_fraction * geometry.area_px)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_px]
    if not keep:
        return Change(0.0, None, surroundings)
    kept = np.isin(labels, keep)
    ys, xs = np.nonzero(kept)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Change(np.count_nonzero(kept) / geometry.area_px, geometry.to_frame(box), surroundings)


def _chroma(image: np.ndarray) -> float:
    b, g, r = image[..., 0], image[..., 1], image[..., 2]
    return float((np.abs(b - g).mean() + np.abs(g - r).mean()) / 2)


@dataclass
class _FrameFacts:
    """What every area needs of one frame."""

    frame: np.ndarray
    at: datetime
    dt: float  # seconds since the previous frame
    tick: bool  # refresh the before snapshots on this frame
    view_ok: bool
    boxes: list[tuple[float, ...]]
    tracks: list[int]
    motion: tuple[Region, ...]
    _copy: np.ndarray | None = None
    _small: np.ndarray | None = None

    def small(self) -> np.ndarray:
        if self._small is None:
            self._small = small_copy(self.frame)
        return self._small

    def frame_copy(self) -> np.ndarray:
        """One copy of the frame per frame, shared by every area that keeps it."""
        if self._copy is None:
            self._copy = self.frame.copy()
        return self._copy


@dataclass
class _Visit:
    started_at: datetime
    window_start: int
    last_disturbed: datetime
    before: np.ndarray | None
    tracks: set[int] = field(default_factory=set)


@dataclass
class _Reported:
    """An incident opened on the previous frame, closed on this one."""

    incident_id: UUID
    visit: _Visit
    threshold_at: datetime
    change: Change


@dataclass
class _Watch:
    zone: Zone
    rule: str  # "area_change" | "object_removed"
    config: AreaChangeRuleConfig
    geometry: _Geometry | None = None
    reference: np.ndarray | None = None
    reference_frames: int = 0
    before: np.ndarray | None = None
    visit: _Visit | None = None
    reported: _Reported | None = None
    alerted_at: datetime | None = None

    def forget(self) -> None:
        self.geometry, self.reference, self.reference_frames, self.before, self.visit = (
            None,
            None,
            0,
            None,
            None,
        )


class AreaChangeRule:
    """Protected-area change and object removed for every zone of one camera that has either rule."""

    def __init__(
        self,
        camera_id: str,
        zones: tuple[Zone, ...],
        pre_roll_s: float,
    ) -> None:
        # No update interval, unlike the other rules: a change is reported once, opened and closed at once.
        self.camera_id = camera_id
        self.ring = FrameRing(pre_roll_s)
        self._watches: list[_Watch] = []
        for zone in zones:
            if zone.rules.area_change is not None:
                self._watches.append(_Watch(zone, "area_change", zone.rules.area_change))
            if zone.rules.object_removed is not None:
                self._watches.append(_Watch(zone, "object_removed", zone.rules.object_removed))
        self._shape: tuple[int, ...] | None = None
        self._prev_at: datetime | None = None
        self._before_tick: datetime | None = None
        self.judgements = 0  # visits judged (changed or not): for stats, and proof that areas are watched

    @property
    def watched(self) -> int:
        return len(self._watches)

    def process(
        self, frame_bgr: np.ndarray, detections: Detections, position: FramePosition, view_ok: bool = True
    ) -> list[RuleEvent]:
        """``view_ok`` False (the camera's tamper rule suspects the view, see ``TamperRule.view_normal``):
        the whole frame counts as disturbed, so nothing is learned or judged until the view is back, and
        for ``object_removed`` it is a visit (someone who blinds the camera and takes the object is caught
        once the view returns)."""
        if detections.track_ids is None:
            raise ValueError("area change needs tracked detections (track_ids is None)")
        at = detections.capture_ts
        events: list[RuleEvent] = []
        if self._shape is not None and (
            frame_bgr.shape != self._shape or (self._prev_at is not None and at < self._prev_at)
        ):
            assert self._prev_at is not None
            events += self.close_all(self._prev_at, position, "camera restarted: areas re-learned")
        if not self._watches:
            return events
        self.ring.add(at, position)
        dt = (at - self._prev_at).total_seconds() if self._prev_at is not None else 0.0
        self._shape, self._prev_at = frame_bgr.shape, at
        # All areas refresh their before snapshot on the same frames, so they share one copy.
        tick = self._before_tick is None or (at - self._before_tick).total_seconds() >= BEFORE_REFRESH_S
        if tick:
            self._before_tick = at
        facts = _FrameFacts(
            frame_bgr,
            at,
            dt,
            tick,
            view_ok,
            [tuple(float(v) for v in b) for b in detections.boxes],
            [int(t) for t in detections.track_ids],
            detections.motion_regions,
        )
        for watch in self._watches:
            events += self._step(watch, facts, position)
        return events

    def close_all(self, at: datetime, position: FramePosition, reason: str) -> list[RuleEvent]:
        """Close what is open (worker stopping, partition handed over, restart) and forget every area."""
        events = []
        for watch in self._watches:
            if watch.reported is not None:
                events.append(self._closed(watch, at, position, reason))
            watch.forget()
        self._shape, self._prev_at, self._before_tick = None, None, None
        return events

    # ----------------------------------------------------------------- per area

    def _step(self, watch: _Watch, facts: _FrameFacts, position: FramePosition) -> list[RuleEvent]:
        at = facts.at
        events: list[RuleEvent] = []
        if watch.reported is not None:
            events.append(self._closed(watch, at, position, "change reported; the new view is the reference"))
        if watch.geometry is None:
            height, width = facts.frame.shape[:2]
            watch.geometry = _Geometry.build(watch.zone, width, height)
        geometry = watch.geometry
        people = {t for t, b in zip(facts.tracks, facts.boxes, strict=True) if geometry.overlaps(b)}
        moving = not facts.view_ok or any(geometry.overlaps(r) for r in facts.motion)
        disturbed = bool(people) or moving
        visiting = bool(people) if watch.rule == "area_change" else disturbed
        visit = watch.visit
        if visit is None:
            if visiting and watch.reference_frames >= MIN_REFERENCE_FRAMES:
                first = set(sorted(people)[:MAX_VISIT_TRACKS])
                watch.visit = _Visit(at, self.ring.start_for(at), at, watch.before, first)
            elif not disturbed:
                self._learn(watch, geometry.crop(facts.small()), facts.dt)
                if facts.tick or watch.before is None:
                    watch.before = facts.frame_copy()
            return events
        if disturbed:
            visit.last_disturbed = at
            for track in sorted(people):
                if len(visit.tracks) < MAX_VISIT_TRACKS:
                    visit.tracks.add(track)
        if (at - visit.started_at).total_seconds() > watch.config.max_visit_s:
            watch.visit, watch.reference_frames = None, 0  # too long to judge: re-learn once clear
            return events
        if disturbed or (at - visit.last_disturbed).total_seconds() < watch.config.settle_s:
            return events
        current = geometry.crop(facts.small())
        assert watch.reference is not None
        occupied = geometry.covered_by([*facts.boxes, *facts.motion])
        change = compare_area(current, watch.reference, geometry, watch.config, occupied)
        self.judgements += 1
        watch.visit, watch.reference, watch.reference_frames = None, current, 1
        watch.before = facts.frame_copy()
        cooled = (
            watch.alerted_at is None or (at - watch.alerted_at).total_seconds() >= watch.config.cooldown_s
        )
        if change.fraction < watch.config.min_changed_fraction or not cooled:
            return events
        if change.surroundings >= WIDESPREAD_CHANGE:
            return events  # the whole view changed, not this area: lens covered, camera moved (tamper's job)
        key = f"{position.stream_id}:{position.seq}"
        watch.reported = _Reported(
            incident_id_for(self.camera_id, watch.rule, watch.zone.id, key), visit, at, change
        )
        watch.alerted_at = at
        events.append(self._event(watch, IncidentEvent.OPENED, at, position, before_image=visit.before))
        return events

    @staticmethod
    def _learn(watch: _Watch, crop: np.ndarray, dt: float) -> None:
        if watch.reference is None or watch.reference.shape != crop.shape:
            watch.reference, watch.reference_frames = crop, 1
            return
        alpha = max(1.0 / (watch.reference_frames + 1), 1.0 - math.exp(-min(dt, 2.0) / LEARN_TAU_S))
        watch.reference += alpha * (crop - watch.reference)
        watch.reference_frames += 1

    def _closed(self, watch: _Watch, at: datetime, position: FramePosition, reason: str) -> RuleEvent:
        reported = watch.reported
        assert reported is not None
        event = self._event(
            watch, IncidentEvent.CLOSED, at, position, reason=reason, ended_at=reported.threshold_at
        )
        watch.reported = None
        return event

    def _event(
        self,
        watch: _Watch,
        kind: IncidentEvent,
        at: datetime,
        position: FramePosition,
        reason: str | None = None,
        ended_at: datetime | None = None,
        before_image: np.ndarray | None = None,
    ) -> RuleEvent:
        reported = watch.reported
        assert reported is not None
        visit, change = reported.visit, reported.change
        name = watch.zone.name or watch.zone.id
        if watch.rule == "area_change":
            summary = (
                f"Protected area '{name}' changed after a visit: {change.fraction:.0%} of the area "
                "(graffiti or damage?)"
            )
        else:
            summary = f"Object removed from '{name}': {change.fraction:.0%} of the area changed"
        if reason is not None:
            summary += f"; closed: {reason}"
        return RuleEvent(
            incident_id=reported.incident_id,
            event=kind,
            rule=watch.rule,
            zone_id=watch.zone.id,
            track_ids=tuple(sorted(visit.tracks)),
            started_at=visit.started_at,
            threshold_at=reported.threshold_at,
            event_at=at,
            ended_at=ended_at,
            dwell_s=(visit.last_disturbed - visit.started_at).total_seconds(),
            frames=frame_span(position, visit.window_start),
            summary=summary,
            change_region=change.region,
            before_image=before_image,
        )
