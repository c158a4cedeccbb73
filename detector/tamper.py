"""Camera tamper: the lens covered, defocused or sprayed, or the camera moved, for ``hold_s`` or longer.

Pure logic, no I/O: :meth:`TamperRule.process` takes one camera's frame, its
tracked detections and where the frame lies in Kafka, and returns incident
lifecycle events. Everything runs on capture time, so a replay of the same
frames yields the same events and the same incident ids.

How a frame is judged (on a small grey copy about :data:`ANALYSIS_WIDTH` wide, cut
into a :data:`GRID` of cells):

- *detail* per cell = mean |Laplacian| / (mean brightness + a floor). Dividing by
  brightness makes it gain-invariant (lights switching, exposure, IR night mode
  keep it near 1x normal), while blur, a hand or paint over the lens remove the
  fine structure it measures. Detail is *lost* in a cell below
  ``detail_lost_ratio`` of the normal view; the view has lost detail when that
  holds for ``detail_lost_fraction`` of the textured cells. Which kind: dark
  (brightness below ``covered_brightness`` of normal) = *covered*; the coarse
  layout (a 16x12 thumbnail) still correlates with normal *and* keeps its
  contrast = *defocused* (a blur leaves the coarse scene as it was, a coat of
  paint or haze flattens it even where it lets the layout through); otherwise
  *sprayed* (or obstructed).
- *structure* per cell = correlation of the gradient-magnitude image with the
  normal view's at zero shift: invariant to gain and colour cast, low where
  something else is seen. When ``moved_fraction`` of the textured cells no
  longer match while detail is normal, the camera was *moved* (or its view is
  blocked by something textured); phase correlation says by how much, for the
  summary. People, even large and close, and moving foliage cover part of the
  frame only, far below these fractions, and never for ``hold_s`` in a row.

The normal view (the *reference*) is learned for ``warmup_s`` after a start, then
adapts slowly (``learn_tau_s``) only while the view is judged normal, never
during a suspected or open tamper, and never where people are (their boxes are
masked out), so a tampered view is not learned within ``hold_s``.

Lifecycle: a tamper *episode* begins with the first abnormal frame (normal
frames shorter than :data:`EPISODE_GAP_S` do not end it: a hand over the lens
slips). OPENED when the episode has lasted ``hold_s`` with at least two thirds
of its frames abnormal (its kind is the one seen most often in it), UPDATED every
``update_interval_s``, CLOSED when the view has been normal for ``restore_s``, or
after ``max_incident_s``: then the tampered view is accepted as the new normal
and re-learned. No new alert for ``cooldown_s`` after a close. A resolution change
or capture time going backwards closes what is open and re-learns the view; a
new stream of the same camera (restart) keeps it: the view has not changed.
OPENED carries ``before_image``: a normal frame from at most
:data:`BEFORE_REFRESH_S` before the episode (one copy per camera).
:attr:`TamperRule.view_normal` tells the protected-area rules when not to judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import cv2
import numpy as np

from cctv.contracts import IncidentEvent, incident_id_for
from cctv.rule_config import TamperRuleConfig
from detector.detections import Detections, Region
from detector.events import FramePosition, FrameRing, RuleEvent, frame_span

UPDATE_INTERVAL_S = 10.0
# Fine enough that a blur of ~1% of the frame width removes most Laplacian energy; reached by a whole
# factor (area averaging, no resampling blur, which would hide a defocus), so only about this wide.
ANALYSIS_WIDTH = 240
GRID = (8, 6)  # columns, rows: a person or a bush covers a few cells, tampering covers most
BRIGHTNESS_FLOOR = 10.0  # added to cell brightness so the noise of a black cell does not read as detail
DETAIL_FLOOR = 0.01  # cells whose normal detail is below this (sky, blank wall) cannot lose detail
STRUCTURE_FLOOR = 1.0  # gradient variance below this in the normal view: nothing to match in the cell
MIN_TEXTURED_FRACTION = 0.25  # a normal view this featureless (covered at start, pitch dark): re-learn
COARSE_SIZE = (16, 12)
COARSE_MATCH = 0.8  # thumbnail correlation above this: the scene's layout is still there (blur)
COARSE_CONTRAST = 0.6  # ... and its contrast too: a defocus keeps ~0.9, paint and haze leave ~0.1-0.4
SHIFT_RESPONSE = 0.08  # phase-correlation peak strength that counts as a clear shift
MOVED_MAX_LOST = 0.15  # a view that changed with more cells than this smeared is obstructed, not moved
# Cells that lost detail or no longer match, together: paint blotches leave some cells sharp and others
# merely smeared, so neither measure alone reaches its own threshold. Measured on the simulated street:
# sprayed 0.58-0.79; lights, IR, foliage, walkers and a group standing close <= 0.12.
OBSTRUCTED_FRACTION = 0.5
EPISODE_GAP_S = 1.0
BEFORE_REFRESH_S = 1.0  # how often the copy of a normal frame (the "before" snapshot) is refreshed


class TamperKind(StrEnum):
    COVERED = "covered"
    DEFOCUSED = "defocused"
    SPRAYED = "sprayed"
    MOVED = "moved"


_LABELS = {
    TamperKind.COVERED: "lens covered",
    TamperKind.DEFOCUSED: "view out of focus",
    TamperKind.SPRAYED: "lens sprayed or obstructed",
    TamperKind.MOVED: "camera moved",
}


@dataclass(frozen=True)
class _View:
    """What the analysis needs of one frame."""

    grey: np.ndarray  # (h, w) float32 small grey copy
    factor: int  # frame pixels per analysis pixel
    magnitude: np.ndarray  # (h, w) float32 gradient magnitude
    detail: np.ndarray  # (rows, cols) float32 brightness-normalised Laplacian energy


@dataclass(frozen=True)
class Reading:
    """One frame compared with the normal view; ``kind`` None = normal."""

    kind: TamperKind | None
    detail_ratio: float  # median current/normal detail over textured cells
    lost_fraction: float
    mismatch_fraction: float
    brightness_ratio: float
    coarse_match: float  # correlation of the 16x12 thumbnails
    coarse_contrast: float  # the thumbnail's relative contrast (std / mean) over normal's
    affected: np.ndarray = field(repr=False)  # (rows, cols) bool: the cells that look tampered


def _view(frame_bgr: np.ndarray) -> _View:
    height, width = frame_bgr.shape[:2]
    cols, rows = GRID
    factor = max(1, min(round(width / ANALYSIS_WIDTH), height // (rows * 4), width // (cols * 4)))
    grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
    if factor > 1:
        grey = cv2.resize(grey, (width // factor, height // factor), interpolation=cv2.INTER_AREA)
    small_h, small_w = grey.shape[0] - grey.shape[0] % rows, grey.shape[1] - grey.shape[1] % cols
    small = grey[:small_h, :small_w].astype(np.float32)  # whole cells only: a few edge pixels dropped
    smooth = cv2.GaussianBlur(small, (3, 3), 0)
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    laplacian = np.abs(cv2.Laplacian(smooth, cv2.CV_32F))
    detail = _cells(laplacian) / (_cells(small) + BRIGHTNESS_FLOOR)
    return _View(small, factor, magnitude, detail.astype(np.float32))


def _cells(image: np.ndarray) -> np.ndarray:
    """(rows, cols) mean of each grid cell (the analysis size is a multiple of the grid)."""
    cols, rows = GRID
    h, w = image.shape
    return image.reshape(rows, h // rows, cols, w // cols).mean(axis=(1, 3))


def _contrast(image: np.ndarray) -> float:
    return float(image.std()) / (float(image.mean()) + BRIGHTNESS_FLOOR)


def _normalised(image: np.ndarray) -> np.ndarray:
    centred = image - image.mean()
    return centred / (float(np.linalg.norm(centred)) + 1e-6)


class _Reference:
    """The normal view: running averages of the analysis images, learned only while the view is normal."""

    def __init__(self, view: _View) -> None:
        self.grey = view.grey.copy()
        self.magnitude = view.magnitude.copy()
        self.detail = view.detail.copy()
        self.frames = 1

    def learn(self, view: _View, alpha: float, people: np.ndarray) -> None:
        """Blend ``view`` in at ``alpha`` except under ``people`` (analysis-size mask)."""
        weight = np.where(people, 0.0, alpha).astype(np.float32)
        self.grey += weight * (view.grey - self.grey)
        self.magnitude += weight * (view.magnitude - self.magnitude)
        cell_weight = alpha * (1.0 - _cells(people.astype(np.float32)))
        self.detail += (cell_weight * (view.detail - self.detail)).astype(np.float32)
        self.frames += 1

    def textured(self) -> np.ndarray:
        """(rows, cols) bool: cells with enough normal detail to lose."""
        return (self.detail >= DETAIL_FLOOR) & (self.detail >= 0.2 * float(np.median(self.detail)))

    def compare(self, view: _View, config: TamperRuleConfig) -> Reading:
        textured = self.textured()
        ratio = view.detail / np.maximum(self.detail, 1e-6)
        lost = textured & (ratio < config.detail_lost_ratio)
        n_textured = max(1, int(np.count_nonzero(textured)))
        lost_fraction = np.count_nonzero(lost) / n_textured
        detail_ratio = float(np.median(ratio[textured])) if textured.any() else 1.0

        cur, ref = view.magnitude, self.magnitude
        mean_c, mean_r = _cells(cur), _cells(ref)
        var_c = _cells(cur * cur) - mean_c**2
        var_r = _cells(ref * ref) - mean_r**2
        ncc = (_cells(cur * ref) - mean_c * mean_r) / np.sqrt(np.maximum(var_c * var_r, 1e-6))
        structured = var_r >= STRUCTURE_FLOOR
        mismatch = structured & (ncc < config.moved_correlation)
        mismatch_fraction = np.count_nonzero(mismatch) / max(1, int(np.count_nonzero(structured)))
        judged = textured | structured
        obstructed = (lost | mismatch) & judged
        obstructed_fraction = np.count_nonzero(obstructed) / max(1, int(np.count_nonzero(judged)))

        brightness = float(view.grey.mean()) / max(float(self.grey.mean()), 1.0)
        thumb_now = cv2.resize(view.grey, COARSE_SIZE, interpolation=cv2.INTER_AREA)
        thumb_normal = cv2.resize(self.grey, COARSE_SIZE, interpolation=cv2.INTER_AREA)
        coarse = float(np.sum(_normalised(thumb_now) * _normalised(thumb_normal)))
        contrast = _contrast(thumb_now) / max(_contrast(thumb_normal), 1e-6)
        kind: TamperKind | None = None
        affected = np.zeros_like(lost)
        if lost_fraction >= config.detail_lost_fraction:
            if brightness < config.covered_brightness:
                kind = TamperKind.COVERED
            elif coarse >= COARSE_MATCH and contrast >= COARSE_CONTRAST:
                kind = TamperKind.DEFOCUSED
            else:
                kind = TamperKind.SPRAYED
            affected = lost
        elif mismatch_fraction >= config.moved_fraction or obstructed_fraction >= OBSTRUCTED_FRACTION:
            # Moved, or painted over? A moved camera still sees a sharp street everywhere; paint smears
            # a good part of it (measured: knocked <= 0.08 of cells lost detail, sprayed >= 0.21).
            if mismatch_fraction >= config.moved_fraction and lost_fraction < MOVED_MAX_LOST:
                kind, affected = TamperKind.MOVED, mismatch
            else:
                kind, affected = TamperKind.SPRAYED, obstructed
        return Reading(
            kind, detail_ratio, lost_fraction, mismatch_fraction, brightness, coarse, contrast, affected
        )

    def shift_to(self, view: _View) -> tuple[float, float, float]:
        """(dx, dy, peak) in analysis pixels: how far the scene moved from the normal view."""
        window = cv2.createHanningWindow(self.magnitude.shape[::-1], cv2.CV_32F)
        (dx, dy), peak = cv2.phaseCorrelate(self.magnitude, view.magnitude, window)
        return float(dx), float(dy), float(peak)


@dataclass
class _Episode:
    """Frames that looked tampered, from the first one on (before an alert)."""

    since: datetime
    window_start: int
    last_abnormal: datetime
    before: np.ndarray | None
    kinds: dict[TamperKind, int] = field(default_factory=dict)
    normal_frames: int = 0  # the gaps' frames

    @property
    def mostly_abnormal(self) -> bool:
        """At least two thirds of its frames looked tampered: not a branch that keeps swinging past."""
        return sum(self.kinds.values()) >= 2 * self.normal_frames

    def majority(self) -> TamperKind:
        # Ties go to the kind listed first: deterministic.
        return max(TamperKind, key=lambda k: self.kinds.get(k, 0))


@dataclass
class _Incident:
    incident_id: UUID
    kind: TamperKind
    started_at: datetime
    threshold_at: datetime
    window_start: int
    last_event_at: datetime
    normal_since: datetime | None = None
    description: str = ""  # as of the latest tampered frame: a CLOSED event repeats it
    region: Region = (0, 0, 0, 0)


class TamperRule:
    """Camera tamper for one camera (see the module docstring)."""

    def __init__(
        self,
        camera_id: str,
        config: TamperRuleConfig,
        pre_roll_s: float,
        update_interval_s: float = UPDATE_INTERVAL_S,
    ) -> None:
        self.camera_id = camera_id
        self.config = config
        self.update_interval = timedelta(seconds=update_interval_s)
        self.ring = FrameRing(pre_roll_s)
        self._reset()

    def _reset(self) -> None:
        self._shape: tuple[int, ...] | None = None
        self._reference: _Reference | None = None
        self._learning_until: datetime | None = None
        self._prev_at: datetime | None = None
        self._before: np.ndarray | None = None
        self._before_at: datetime | None = None
        self._episode: _Episode | None = None
        self._incident: _Incident | None = None
        self._closed_at: datetime | None = None
        self._last: tuple[Reading, _View] | None = None

    @property
    def is_open(self) -> bool:
        return self._incident is not None

    @property
    def view_normal(self) -> bool:
        """False while the view looks tampered (an episode or an open incident): rules that compare the
        view with an earlier one (protected areas) must not judge meanwhile."""
        return self._episode is None and self._incident is None

    @property
    def learning(self) -> bool:
        """Whether the normal view is still being learned (nothing is judged meanwhile)."""
        return self._reference is None or self._learning_until is not None

    def process(
        self, frame_bgr: np.ndarray, detections: Detections, position: FramePosition
    ) -> list[RuleEvent]:
        at = detections.capture_ts
        events: list[RuleEvent] = []
        if self._shape is not None and (
            frame_bgr.shape != self._shape or (self._prev_at is not None and at < self._prev_at)
        ):
            # Another resolution or an earlier time: not the view we learned. Start over.
            if self._prev_at is not None:
                events += self.close_all(self._prev_at, position, "camera restarted: view re-learned")
            self._reset()
        self.ring.add(at, position)
        dt = (at - self._prev_at).total_seconds() if self._prev_at is not None else 0.0
        self._prev_at, self._shape = at, frame_bgr.shape
        view = _view(frame_bgr)
        people = self._people_mask(detections, view.factor, view.grey.shape)
        if self._reference is None:
            self._start_learning(at, view)
            self._refresh_before(at, frame_bgr)
            return events
        if self._learning_until is not None:
            self._reference.learn(view, 1.0 / (self._reference.frames + 1), people)
            self._refresh_before(at, frame_bgr)
            if at >= self._learning_until:
                textured = np.count_nonzero(self._reference.textured()) / self._reference.detail.size
                if textured >= MIN_TEXTURED_FRACTION:
                    self._learning_until = None
                else:  # featureless (started covered, pitch dark): nothing to lose; learn afresh until not
                    self._start_learning(at, view)
            return events
        reading = self._reference.compare(view, self.config)
        self._last = (reading, view)
        if reading.kind is None:
            events += self._normal(at, dt, view, people, frame_bgr, position)
        else:
            events += self._abnormal(at, reading, view, frame_bgr.shape, position)
        return events

    def close_all(self, at: datetime, position: FramePosition, reason: str) -> list[RuleEvent]:
        """Close an open incident (worker stopping, partition handed over, restart); the view is kept."""
        events = []
        if self._incident is not None:
            events.append(self._close(at, position, reason))
        self._episode = None
        return events

    # ----------------------------------------------------------------- states

    @property
    def _warmup(self) -> timedelta:
        return timedelta(seconds=self.config.warmup_s)

    def _start_learning(self, at: datetime, view: _View) -> None:
        self._reference = _Reference(view)
        self._learning_until = at + self._warmup
        self._episode = None

    def _refresh_before(self, at: datetime, frame_bgr: np.ndarray) -> None:
        # One copy per camera, refreshed about once a second: the newest normal frame before a tamper.
        if self._before_at is None or (at - self._before_at).total_seconds() >= BEFORE_REFRESH_S:
            self._before, self._before_at = frame_bgr.copy(), at

    def _normal(
        self,
        at: datetime,
        dt: float,
        view: _View,
        people: np.ndarray,
        frame_bgr: np.ndarray,
        position: FramePosition,
    ) -> list[RuleEvent]:
        if self._incident is not None:
            self._incident.normal_since = self._incident.normal_since or at
            if (at - self._incident.normal_since).total_seconds() >= self.config.restore_s:
                return [self._close(at, position, "view back to normal")]
            return []
        if self._episode is not None:
            if (at - self._episode.last_abnormal).total_seconds() < EPISODE_GAP_S:
                self._episode.normal_frames += 1
                return []  # a gap inside an episode: neither learned nor the end of it
            self._episode = None
        assert self._reference is not None
        alpha = 1.0 - math.exp(-min(dt, 2.0) / self.config.learn_tau_s)  # per capture time, not per frame
        self._reference.learn(view, alpha, people)
        self._refresh_before(at, frame_bgr)
        return []

    def _abnormal(
        self, at: datetime, reading: Reading, view: _View, shape: tuple[int, ...], position: FramePosition
    ) -> list[RuleEvent]:
        assert reading.kind is not None
        cfg = self.config
        incident = self._incident
        if incident is not None:
            incident.normal_since = None
            if (at - incident.threshold_at).total_seconds() >= cfg.max_incident_s:
                event = self._close(at, position, "tampered view accepted as the new normal view")
                self._start_learning(at, view)
                return [event]
            if at - incident.last_event_at >= self.update_interval:
                incident.last_event_at = at
                return [self._event(IncidentEvent.UPDATED, at, position, shape)]
            return []
        episode = self._episode
        if episode is None:
            episode = self._episode = _Episode(at, self.ring.start_for(at), at, self._before)
        episode.last_abnormal = at
        episode.kinds[reading.kind] = episode.kinds.get(reading.kind, 0) + 1
        cooled = self._closed_at is None or (at - self._closed_at).total_seconds() >= cfg.cooldown_s
        if (at - episode.since).total_seconds() < cfg.hold_s or not cooled or not episode.mostly_abnormal:
            return []
        key = f"{position.stream_id}:{position.seq}"
        self._incident = _Incident(
            incident_id=incident_id_for(self.camera_id, "tamper", None, key),
            kind=episode.majority(),
            started_at=episode.since,
            threshold_at=at,
            window_start=episode.window_start,
            last_event_at=at,
        )
        before = episode.before
        self._episode = None
        return [self._event(IncidentEvent.OPENED, at, position, shape, before_image=before)]

    def _close(self, at: datetime, position: FramePosition, reason: str) -> RuleEvent:
        assert self._incident is not None
        shape = self._shape or (0, 0)
        ended_at = self._incident.normal_since or at  # restored: it ended when the view came back
        event = self._event(IncidentEvent.CLOSED, at, position, shape, reason=reason, ended_at=ended_at)
        self._incident, self._closed_at = None, at
        return event

    # ----------------------------------------------------------------- output

    def _event(
        self,
        kind: IncidentEvent,
        at: datetime,
        position: FramePosition,
        shape: tuple[int, ...],
        reason: str | None = None,
        ended_at: datetime | None = None,
        before_image: np.ndarray | None = None,
    ) -> RuleEvent:
        incident = self._incident
        assert incident is not None
        if kind is not IncidentEvent.CLOSED:  # closing frames may look normal again: keep what was seen
            incident.description = self._describe(incident.kind)
            incident.region = self._region(incident.kind, shape)
        duration = ((ended_at or at) - incident.started_at).total_seconds()
        summary = f"Camera tamper: {incident.description} for {duration:.0f}s"
        if reason is not None:
            summary += f"; closed: {reason}"
        return RuleEvent(
            incident_id=incident.incident_id,
            event=kind,
            rule="tamper",
            zone_id=None,
            track_ids=(),
            started_at=incident.started_at,
            threshold_at=incident.threshold_at,
            event_at=at,
            ended_at=ended_at,
            dwell_s=duration,
            frames=frame_span(position, incident.window_start),
            summary=summary,
            change_region=incident.region,
            before_image=before_image,
        )

    def _describe(self, kind: TamperKind) -> str:
        label = _LABELS[kind]
        if self._last is None or self._reference is None:
            return label
        reading, view = self._last
        detail = f"detail {reading.detail_ratio:.0%} of normal"
        if kind is TamperKind.COVERED:
            return f"{label} ({detail}, brightness {reading.brightness_ratio:.0%})"
        if kind is not TamperKind.MOVED:
            return f"{label} ({detail})"
        dx, dy, peak = self._reference.shift_to(view)
        if peak >= SHIFT_RESPONSE and math.hypot(dx, dy) >= 1.0:
            horizontal = f"{abs(dx) * view.factor:.0f} px {'right' if dx > 0 else 'left'}"
            vertical = f"{abs(dy) * view.factor:.0f} px {'down' if dy > 0 else 'up'}"
            return f"{label} (view shifted {horizontal}, {vertical})"
        return f"{label} or view blocked ({1 - reading.mismatch_fraction:.0%} of the view still matches)"

    def _region(self, kind: TamperKind, shape: tuple[int, ...]) -> Region:
        """The affected cells' bounding box in frame pixels; the whole frame for a moved camera."""
        height, width = (int(shape[0]), int(shape[1])) if len(shape) > 1 else (0, 0)
        if kind is TamperKind.MOVED or self._last is None or not self._last[0].affected.any():
            return (0, 0, width, height)
        rows, cols = np.nonzero(self._last[0].affected)
        n_cols, n_rows = GRID
        return (
            int(cols.min()) * width // n_cols,
            int(rows.min()) * height // n_rows,
            (int(cols.max()) + 1) * width // n_cols,
            (int(rows.max()) + 1) * height // n_rows,
        )

    @staticmethod
    def _people_mask(detections: Detections, factor: int, small_shape: tuple[int, ...]) -> np.ndarray:
        mask = np.zeros(small_shape[:2], bool)
        for x1, y1, x2, y2 in detections.boxes:
            c1, r1 = max(0, int(x1 / factor)), max(0, int(y1 / factor))
            c2, r2 = math.ceil(x2 / factor), math.ceil(y2 / factor)
            mask[r1:r2, c1:c2] = True
        return mask
