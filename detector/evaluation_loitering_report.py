"""Loitering accuracy on PETS09 S2L1, the running part: the pipeline pass, scoring it, the Markdown report.

Alerts: one pass of :class:`DetectorPipeline` (sampler, JPEG, motion gate on, backend, ByteTrack, rule)
with one copy of every zone per threshold, so all thresholds cost one detector pass. Beside it, the same
:class:`LoiteringRule` fed the annotated boxes as its tracks ("perfect tracks"): what the rule alone gets
wrong, apart from detector and tracker.

The ground truth those alerts are scored against, and the matcher, are in
:mod:`detector.evaluation_loitering` (its docstring gives the definitions); this module runs, scores
(:func:`evaluate_loitering_pets`) and renders the results-file section (:func:`markdown_section`).
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from statistics import mean, median

import numpy as np

from cctv.config import Camera, CameraRegistry
from cctv.contracts import IncidentEvent, IncidentMessage
from cctv.rule_config import Zone
from detector.backends import DetectorConfigError, make_backend
from detector.detections import Detections
from detector.evaluation import Box, FrameMap, FrameObjects, parse_mot
from detector.evaluation_loitering import (
    DEFAULT_THRESHOLDS,
    FRAME_SIZE,
    GROUP_SIZE,
    MATCH_IOU,
    PETS_ZONES,
    WINDOW_S,
    Alert,
    EventTrace,
    GroupScores,
    Sample,
    SceneZone,
    ZoneScores,
    alert_subject,
    match_alerts,
    match_groups,
    trace_event,
    truth_events,
    zone_copies,
)
from detector.evaluation_pets import (
    CAMERA,
    CLIP_START,
    backend_settings,
    pets_camera,
    run_clip,
    tracked_objects,
)
from detector.events import FramePosition, RuleEvent
from detector.loitering import LoiteringRule
from detector.pipeline import DetectorPipeline

PRE_ROLL_S = 3.0


# --------------------------------------------------------------------------- running the rule


@dataclass
class RuleRun:
    """The sampled frames, the tracks the rule saw on each, and its OPENED alerts by zone copy."""

    samples: list[Sample] = field(default_factory=list)
    tracked: dict[int, FrameObjects] = field(default_factory=dict)
    alerts: dict[str, list[Alert]] = field(default_factory=lambda: defaultdict(list))
    group_alerts: dict[str, list[Alert]] = field(default_factory=lambda: defaultdict(list))
    seconds: float = 0.0

    def record(self, event: RuleEvent | IncidentMessage, frame: int, boxes: Mapping[int | None, Box]) -> None:
        """Keep an OPENED event as an alert, with its subjects' ``boxes`` (by track id) at ``frame``."""
        if event.event != IncidentEvent.OPENED or event.zone_id is None:
            return
        subjects = tuple(boxes[t] for t in event.track_ids if t in boxes)
        alert = Alert(event.track_ids, frame, (event.threshold_at - CLIP_START).total_seconds(), subjects)
        (self.group_alerts if event.rule == "group_loitering" else self.alerts)[event.zone_id].append(alert)


def run_pipeline(
    video: Path, fps: float, zones: Iterable[Zone], backend: str = "hog", limit: int | None = None
) -> RuleRun:
    """Drive :class:`DetectorPipeline` over the clip as :mod:`detector.evaluation_pets` does, with zones."""
    settings = backend_settings(backend)
    detector = make_backend(settings)  # DetectorConfigError when the backend cannot be built
    base = pets_camera(video, fps)
    camera = Camera.model_validate({**base.model_dump(), "zones": [z.model_dump() for z in zones]})
    pipeline = DetectorPipeline(CameraRegistry(cameras=(camera,)), detector, settings, pre_roll_s=PRE_ROLL_S)
    run, began = RuleRun(), time.perf_counter()
    for number, at, incidents in run_clip(pipeline, camera, video, fps, limit, "pets-loitering"):
        for incident in incidents:  # the subject boxes the incident carries, as operators see them
            run.record(incident, number, {b.track_id: (b.x1, b.y1, b.x2, b.y2) for b in incident.boxes})
        run.tracked[number] = tracked_objects(pipeline.last_detections(CAMERA))
        run.samples.append((number, at))
    run.seconds = time.perf_counter() - began
    return run


def rule_on_truth(
    truth: FrameMap,
    samples: Sequence[Sample],
    zones: Iterable[Zone],
    frame_size: tuple[int, int] = FRAME_SIZE,
) -> RuleRun:
    """The production :class:`LoiteringRule` fed the annotated boxes and identities as its tracks."""
    rule, run = LoiteringRule(CAMERA, tuple(zones), PRE_ROLL_S), RuleRun(samples=list(samples))
    for seq, (frame, seconds) in enumerate(samples):
        objects = run.tracked[frame] = truth.get(frame, FrameObjects())
        n = len(objects.ids)
        detections = Detections(
            CAMERA, seq, CLIP_START + timedelta(seconds=seconds), *frame_size,
            boxes=np.asarray(objects.boxes, np.float32).reshape(-1, 4), confidences=np.ones(n, np.float32),
            class_ids=np.zeros(n, np.int32), track_ids=np.asarray(objects.ids, np.int64),
        )  # fmt: skip
        for event in rule.process(detections, FramePosition("truth", seq, 0, seq)):
            run.record(event, frame, dict(zip(objects.ids, objects.boxes, strict=True)))
    return run


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class LoiteringReport:
    backend: str
    fps: float
    thresholds: tuple[float, ...]
    zones: tuple[SceneZone, ...]
    group_size: int | None
    window_s: tuple[float, float]
    frames: int = 0  # sampled frames run
    clip_s: float = 0.0  # capture time they span
    seconds: float = 0.0  # wall time of the pipeline pass
    rows: tuple[ZoneScores, ...] = ()
    groups: tuple[GroupScores, ...] = ()
    traces: tuple[EventTrace, ...] = ()
    perfect_tracks: tuple[ZoneScores, ...] = ()  # the rule alone, on the annotated tracks
    skipped: str | None = None

    def total(self, threshold: float, rows: Sequence[ZoneScores] | None = None) -> ZoneScores:
        """All zones together at one threshold (of ``rows``, by default the pipeline's)."""
        chosen = [r for r in (self.rows if rows is None else rows) if r.threshold_s == threshold]
        events = tuple(e for r in chosen for e in r.events)
        alerts = tuple(a for r in chosen for a in r.alerts)
        matches = tuple(m for r in chosen for m in r.matches)
        return ZoneScores("all", threshold, events, alerts, matches, sum(r.duplicates for r in chosen))


def score_run(
    truth: FrameMap,
    run: RuleRun,
    copies: Mapping[str, tuple[SceneZone, float, Zone]],
    window: tuple[float, float] = WINDOW_S,
) -> tuple[list[ZoneScores], list[GroupScores], list[EventTrace]]:
    """Ground truth at the run's frames, matched with the run's alerts, for every zone copy."""
    rows, groups, traces = [], [], []
    for zone_id, (scene, threshold, zone) in copies.items():
        assert zone.rules.loitering is not None
        events, truth_groups = truth_events(truth, run.samples, zone.polygon, zone.rules.loitering)
        row = match_alerts(events, run.alerts.get(zone_id, []), truth, scene.id, threshold, window)
        rows.append(row)
        if zone.rules.loitering.group_size is not None:
            groups.append(
                match_groups(truth_groups, run.group_alerts.get(zone_id, []), scene.id, threshold, window)
            )
        matched = {event for event, _ in row.matches}
        for event in events:
            coverage, tracks = trace_event(event, truth, run.tracked, run.samples)
            delays = tuple(
                round(a.at - event.at, 3) for a in row.alerts if alert_subject(a, truth) == event.identity
            )
            traces.append(EventTrace(scene.id, threshold, event, event in matched, coverage, tracks, delays))
    return rows, groups, traces


def evaluate_loitering_pets(
    data_dir: Path,
    fps: float = 5.0,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    max_frames: int | None = None,
    backend: str = "hog",
    zones: Sequence[SceneZone] = PETS_ZONES,
    group_size: int | None = GROUP_SIZE,
    window: tuple[float, float] = WINDOW_S,
) -> LoiteringReport:
    """Loitering precision, recall and alert delay of ``backend`` on the clip (or its first ``max_frames``
    sampled frames), all thresholds in one pipeline pass; says why if the backend cannot be built."""
    copies = zone_copies(zones, thresholds, group_size)
    report = LoiteringReport(
        backend, fps, tuple(float(t) for t in thresholds), tuple(zones), group_size, window
    )
    truth = parse_mot((data_dir / "gt.txt").read_text())
    try:
        run = run_pipeline(
            data_dir / "vtest.avi", fps, [z for _, _, z in copies.values()], backend, max_frames
        )
    except DetectorConfigError as exc:  # e.g. YOLO weights absent
        return dataclasses.replace(report, skipped=str(exc))
    rows, groups, traces = score_run(truth, run, copies, window)
    perfect = score_run(
        truth, rule_on_truth(truth, run.samples, [z for _, _, z in copies.values()]), copies, window
    )
    span = run.samples[-1][1] - run.samples[0][1] if run.samples else 0.0
    return dataclasses.replace(
        report, frames=len(run.samples), clip_s=span, seconds=run.seconds, rows=tuple(rows),
        groups=tuple(groups), traces=tuple(traces), perfect_tracks=tuple(perfect[0]),
    )  # fmt: skip


# --------------------------------------------------------------------------- markdown

COLUMNS = (
    "dwell", "zone", "GT events", "alerts", "TP", "FP", "dupes", "FN", "precision", "recall",
    "delay mean s", "delay median s", "delay max s",
)  # fmt: skip


def _row(r: ZoneScores) -> str:
    d = r.delays
    delays = (f"{mean(d):+.1f}", f"{median(d):+.1f}", f"{max(d):+.1f}") if d else ("-", "-", "-")
    rates = ("-" if v is None else f"{v:.2f}" for v in (r.precision, r.recall))
    counts = (len(r.events), len(r.alerts), r.tp, r.fp, r.duplicates, r.fn)
    zone = "**all**" if r.zone_id == "all" else r.zone_id
    return "| " + " | ".join((f"{r.threshold_s:g}s", zone, *map(str, counts), *rates, *delays)) + " |"


def markdown_table(report: LoiteringReport, perfect_tracks: bool = False) -> str:
    """Per threshold, a row per zone and one for all zones (``perfect_tracks``: the rule on annotations)."""
    rows = report.perfect_tracks if perfect_tracks else report.rows
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for threshold in report.thresholds:
        chosen = [r for r in rows if r.threshold_s == threshold] + [report.total(threshold, rows)]
        lines += [_row(r) for r in chosen]
    return "\n".join(lines) + "\n"


def group_table(report: LoiteringReport) -> str:
    shown = [g for g in report.groups if g.events or g.alerts]
    if report.group_size is None or not shown:
        return (
            f"No group events (>= {report.group_size} people past the threshold at once), no group alerts.\n"
        )
    lines = ["| dwell | zone | GT group events | group alerts | matched |", "|---|---|---|---|---|"]
    for g in shown:
        events = ", ".join(f"{e.at:.1f}s (ids {'+'.join(map(str, e.identities))})" for e in g.events) or "-"
        alerts = ", ".join(f"{a.at:.1f}s" for a in g.alerts) or "-"
        lines.append(f"| {g.threshold_s:g}s | {g.zone_id} | {events} | {alerts} | {g.matched} |")
    return "\n".join(lines) + "\n"


def misses_table(report: LoiteringReport) -> str:
    missed = [t for t in report.traces if not t.matched]
    lines = [
        "| dwell | zone | GT id | GT time s | coverage | tracks | likely cause |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in missed:
        tracks = ",".join(map(str, t.tracks)) or "-"
        lines.append(
            f"| {t.threshold_s:g}s | {t.zone_id} | {t.event.identity} | {t.event.at:.1f} | {t.coverage:.0%} "
            f"| {tracks} | {t.cause(report.window_s)} |"
        )
    return "\n".join(lines) + "\n" if missed else "Every ground-truth event was matched.\n"


def method_paragraph(report: LoiteringReport) -> str:
    group = (
        f"; group events: >= {report.group_size} people past the threshold at once"
        if report.group_size
        else ""
    )
    return (
        f"Ground truth: the loitering rule's definitions applied to the annotated identities of `gt.txt` at "
        f"exactly the frames the pipeline sampled ({report.fps:g} fps on the container's 10 fps clock): feet "
        f"point (x + w/2, y + h) in the zone, entry after 3 consecutive frames, dwell = time seen inside, a "
        f"person away for more than the 15 s grace starts again, one event per person per zone, event time = "
        f"the frame the dwell reaches the threshold{group}. Alerts: OPENED incidents of the production "
        f"pipeline ({report.backend}, motion gate on, ByteTrack, loitering rule), one pass with a copy of "
        f"each zone per threshold. An alert matches an event (one to one) when its subject box overlaps the "
        f"person's annotated box at the alert frame with IoU >= {MATCH_IOU} and its threshold time is within "
        f"{report.window_s[0]:+g} s ... {report.window_s[1]:+g} s of the event's. Delay = alert threshold "
        f"time - ground-truth threshold time (negative = early). Dupes = further alerts on a person who "
        f"already had one in that zone (a track that fragmented and restarted its clock; also in FP). "
        f"'Perfect tracks' runs the same rule on the annotated boxes and identities instead of the "
        f"tracker's: the errors of the rule itself."
    )


def markdown_section(report: LoiteringReport, *, command: str) -> str:
    """The results-file section: method, zones, both tables, groups and every missed event with its cause."""
    title = f"## Loitering on PETS09 S2L1 ({report.backend})"
    if report.skipped is not None:
        return f"{title}\n\nSkipped: {report.skipped}\n"
    zones = "\n".join(f"- `{z.id}` ({z.name}) {[list(p) for p in z.polygon]}: {z.why}." for z in report.zones)
    missed = [t for t in report.traces if not t.matched]
    switched = sum(len(t.tracks) > 1 for t in report.traces)
    return "\n".join([
        title, "",
        f"Produced by `{command}`: {report.frames} sampled frames ({report.clip_s:.1f} s of clip), "
        f"pipeline pass {report.seconds:.0f} s wall time.", "",
        method_paragraph(report), "", "Zones (polygons in normalised x, y):", "", zones, "",
        markdown_table(report), "The rule alone, on perfect (annotated) tracks:", "",
        markdown_table(report, perfect_tracks=True), "Group loitering:", "", group_table(report),
        f"Missed events and their likely cause: {len(missed)} of {len(report.traces)} events missed; "
        f"{switched} of the {len(report.traces)} people were covered by more than one track before the "
        f"threshold (coverage: share of the stay's frames in which a track covered the person at IoU >= "
        f"{MATCH_IOU}; tracks: the track ids that did):", "",
        misses_table(report),
    ])  # fmt: skip
