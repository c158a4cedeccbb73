"""The whole pipeline on real footage: PETS09 S2L1 through the real workers, scored against its annotations.

The loitering ground truth is derived here from the human-annotated boxes
(``gt.txt``, MOT format): an identity loiters when its bottom-centre point (the
feet, what the rule tests too) is inside the zone for at least ``DWELL_S`` in
total, counted on the video's own timeline (the container's fps, the clock the
file source plays at). The pipeline runs as deployed: the file source plays the
clip once in real time, the detector (HOG, ByteTrack, loitering rule) reads the
frames from Kafka, the evidence store seals each closed incident, the API
persists it all. Then:

- precision: every loitering incident's alert falls while a ground-truth
  loiterer is in the zone;
- recall: every ground-truth loiterer got an incident;
- timing: no alert earlier than the ground-truth crossing (minus a tolerance for
  detection jitter), none absurdly late;
- evidence: sealed for every incident, and the clip served by the API hashes to
  the recorded artifact hash.

Pipeline times map to video time through the first ingested frame's capture
time (seq 0 is the clip's first frame; the file source paces frames by the
container fps). Numbers are printed (run with ``-s``), never timed assertions.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from kafka import TopicPartition

from cctv.bus import make_consumer
from cctv.config import CameraRegistry, Settings
from cctv.contracts import FrameMessage, decode
from cctv.harness import RunningPipeline, running_pipeline

pytestmark = [pytest.mark.service, pytest.mark.e2e]

CAMERA = "pets-s2l1"
ZONE_PX = (300.0, 250.0, 600.0, 400.0)  # x1, y1, x2, y2 of the plaza zone in the 768x576 frame
DWELL_S = 25.0  # on the container's 10 fps timeline: exactly one annotated loiterer (id 9, 32.5 s in total)
# 5 fps: at 2.5 fps ByteTrack loses PETS walkers (narrow boxes move > half their width between frames).
# The detector lags real time on 2 cores here (HOG at 1.5x, ~0.4-0.7 s per frame); it reads from Kafka.
ANALYTICS_FPS = 5.0
HOG_SCALE = 1.5  # PETS people are 60-125 px tall; HOG's window wants ~100 px: upscale (measured recall 0.81)
# Early alerts are judged by dwell, not time: the loiterer walks along the zone's edge, where a few pixels
# of box jitter count seconds the annotators did not, and an alert is early only if it came before the
# person had really spent most of the threshold inside.
OVERCOUNT_TOLERANCE_S = 5.0  # the annotated dwell at the alert must be >= DWELL_S - this
LATE_LIMIT_S = 20.0  # later than this after the ground truth crossed is a miss in a control room
PRESENCE_TOLERANCE_S = 3.0


@dataclass(frozen=True)
class GroundTruthLoiterer:
    identity: int
    dwell_s: float  # total time inside the zone
    crossed_at_s: float  # video time when the total reached the threshold
    stints: tuple[tuple[float, float], ...]  # (first, last) video time of each continuous stay inside

    def inside_near(self, at_s: float, tolerance_s: float) -> bool:
        return any(first - tolerance_s <= at_s <= last + tolerance_s for first, last in self.stints)

    def dwell_until(self, at_s: float, frame_s: float) -> float:
        """Annotated time inside up to ``at_s`` (each frame inside is worth ``frame_s``)."""
        return sum(
            max(0.0, min(last, at_s) - first + frame_s) for first, last in self.stints if first <= at_s
        )


# Evidence downloads record who, in which role, and why (the custody log).
E2E_REASON = {"reason": "end-to-end test of the evidence path"}


def video_fps(video: Path) -> float:
    capture = cv2.VideoCapture(str(video))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()
    assert fps > 0, f"{video}: the container reports no fps"
    return fps


def ground_truth_loiterers(
    gt_path: Path, zone_px: tuple[float, float, float, float], fps: float, dwell_s: float
) -> list[GroundTruthLoiterer]:
    """Identities whose feet are inside ``zone_px`` for >= ``dwell_s``; frame f (1-based) is at (f-1)/fps."""
    rows = np.loadtxt(gt_path, delimiter=",", ndmin=2)
    frames, ids = rows[:, 0].astype(int), rows[:, 1].astype(int)
    feet_x, feet_y = rows[:, 2] + rows[:, 4] / 2.0, rows[:, 3] + rows[:, 5]
    x1, y1, x2, y2 = zone_px
    inside = (feet_x >= x1) & (feet_x <= x2) & (feet_y >= y1) & (feet_y <= y2)
    inside_frames: dict[int, list[int]] = defaultdict(list)
    for frame, identity in zip(frames[inside], ids[inside], strict=True):
        inside_frames[int(identity)].append(int(frame))
    needed = math.ceil(dwell_s * fps - 1e-9)  # frames inside, each worth 1/fps
    out = []
    for identity, frame_list in sorted(inside_frames.items()):
        ordered = sorted(frame_list)
        if len(ordered) < needed:
            continue
        stints: list[tuple[float, float]] = []
        start = prev = ordered[0]
        for frame in ordered[1:]:
            if frame != prev + 1:
                stints.append(((start - 1) / fps, (prev - 1) / fps))
                start = frame
            prev = frame
        stints.append(((start - 1) / fps, (prev - 1) / fps))
        out.append(
            GroundTruthLoiterer(
                identity=identity,
                dwell_s=len(ordered) / fps,
                crossed_at_s=(ordered[needed - 1] - 1) / fps,
                stints=tuple(stints),
            )
        )
    return out


def test_ground_truth_derivation_counts_frames_inside_on_the_video_timeline(tmp_path: Path) -> None:
    # id 1 is inside for frames 1-30 then 41-60 (50 frames = 5 s at 10 fps); id 2 only passes through.
    lines = [f"{f},1,95,80,10,20,1,-1,-1,-1" for f in [*range(1, 31), *range(41, 61)]]
    lines += [f"{f},2,95,80,10,20,1,-1,-1,-1" for f in range(1, 11)]
    lines += [f"{f},3,500,500,10,20,1,-1,-1,-1" for f in range(1, 100)]  # never inside
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(lines) + "\n")
    (only,) = ground_truth_loiterers(path, (50.0, 50.0, 150.0, 150.0), fps=10.0, dwell_s=4.0)
    assert only.identity == 1
    assert only.dwell_s == pytest.approx(5.0)
    assert only.crossed_at_s == pytest.approx(4.9)  # the 40th frame inside is frame 50
    assert only.stints == ((0.0, 2.9), (4.0, 5.9))
    assert only.dwell_until(4.5, 0.1) == pytest.approx(3.6)  # frames 1-30 and 41-46
    assert ground_truth_loiterers(path, (50.0, 50.0, 150.0, 150.0), fps=10.0, dwell_s=5.1) == []


def pets_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'cctv.db'}"}),
            "detector": settings.detector.model_copy(update={"backend": "hog", "hog_scale": HOG_SCALE}),
            "evidence": settings.evidence.model_copy(
                update={
                    "pre_roll_s": 3.0,
                    "post_roll_s": 2.0,
                    "read_timeout_s": 10.0,
                    "signing_key_path": tmp_path / "keys" / "signing.key",
                }
            ),
        }
    )


def pets_registry(video: Path) -> CameraRegistry:
    x1, y1, x2, y2 = ZONE_PX
    polygon = [[x1 / 768, y1 / 576], [x2 / 768, y1 / 576], [x2 / 768, y2 / 576], [x1 / 768, y2 / 576]]
    return CameraRegistry.model_validate(
        {
            "cameras": [
                {
                    "id": CAMERA,
                    "name": "PETS09 S2L1 view 001",
                    "location": "University campus (PETS 2009)",
                    "source": str(video.resolve()),  # played once, in real time at the container fps
                    "fps": ANALYTICS_FPS,
                    "zones": [
                        {
                            "id": "plaza",
                            "name": "Plaza",
                            "polygon": polygon,
                            "rules": {"loitering": {"dwell_s": DWELL_S}},
                        }
                    ],
                }
            ]
        }
    )


def camera_state(pipeline: RunningPipeline) -> str | None:
    response = pipeline.client.get(f"/api/v1/cameras/{CAMERA}")
    health = response.json().get("health") if response.status_code == 200 else None
    return health["state"] if health else None


def frames_progress(settings: Settings) -> tuple[datetime | None, int, int]:
    """(capture time of the first frame, frames in the topic, frames the detector group has committed)."""
    consumer = make_consumer(settings.kafka, "pets-e2e-probe", settings.detector.group_id)
    try:
        topic = settings.kafka.frames_topic
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        ends = consumer.end_offsets(partitions)
        committed = {tp: consumer.committed(tp) or 0 for tp in partitions}
        first: datetime | None = None
        with_frames = [tp for tp in partitions if ends[tp] > 0]
        if with_frames:
            consumer.assign(with_frames)
            consumer.seek_to_beginning()
            deadline = time.monotonic() + 10
            while first is None and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=1000).values():
                    frame = decode(FrameMessage, records[0].value, list(records[0].headers or []))
                    assert frame.seq == 0, "the first record of the camera is not its first frame"
                    first = frame.capture_ts
                    break
        return first, sum(ends.values()), sum(committed.values())
    finally:
        consumer.close(autocommit=False)


def settled_incidents(pipeline: RunningPipeline) -> list[dict[str, Any]] | None:
    """All incidents, each with its evidence, once none is open and every one has sealed evidence."""
    incidents = pipeline.incidents(camera_id=CAMERA)
    out = []
    for incident in incidents:
        if incident["status"] != "closed":
            return None
        evidence = pipeline.client.get(f"/api/v1/incidents/{incident['incident_id']}/evidence").json()
        if not evidence:
            return None
        out.append({**incident, "evidence": evidence})
    return out


def test_pets_loitering_matches_the_annotated_ground_truth(
    settings: Settings, tmp_path: Path, pets_dir: Path
) -> None:
    video, gt_path = pets_dir / "vtest.avi", pets_dir / "gt.txt"
    fps = video_fps(video)
    truth = ground_truth_loiterers(gt_path, ZONE_PX, fps, DWELL_S)
    assert truth, "the ground truth has no loiterer for this zone and threshold: the test would prove nothing"
    print(f"\nground truth at {fps:g} fps, dwell >= {DWELL_S:g}s: " + "; ".join(
        f"id {g.identity}: {g.dwell_s:.1f}s in total, crossed at {g.crossed_at_s:.1f}s" for g in truth
    ))  # fmt: skip

    settings = pets_settings(settings, tmp_path)
    began = time.monotonic()
    with running_pipeline(settings, pets_registry(video)) as pipeline:
        pipeline.wait_for(
            "the camera to play the clip to its end",
            lambda: camera_state(pipeline) == "stopped",
            timeout_s=200,
            every_s=2.0,
        )
        ingested_s = time.monotonic() - began

        def caught_up() -> tuple[datetime, int] | None:
            first, total, committed = frames_progress(settings)
            return (first, total) if first is not None and total > 0 and committed >= total else None

        first_ts, frame_count = pipeline.wait_for(
            "the detector to catch up with the ingested frames", caught_up, timeout_s=240, every_s=3.0
        )
        detected_s = time.monotonic() - began
        # An incident whose track is still in the zone when the clip ends closes only after
        # camera_silence_s without frames; its evidence then waits up to read_timeout_s for
        # post-roll before sealing. A fresh-clone CI run once took longer than a flat 60 s here.
        settle_s = settings.detector.camera_silence_s + settings.evidence.read_timeout_s + 60
        incidents = pipeline.wait_for(
            "every incident to close with sealed evidence",
            lambda: settled_incidents(pipeline),
            timeout_s=settle_s,
            every_s=2.0,
        )
        sealed_s = time.monotonic() - began
        clips = {}
        for incident in incidents:
            for evidence in incident["evidence"]:
                clip = pipeline.client.get(
                    f"/api/v1/evidence/{evidence['evidence_id']}/clip", params=E2E_REASON
                )
                clips[evidence["evidence_id"]] = (clip.status_code, hashlib.sha256(clip.content).hexdigest())

    def video_time(value: str) -> float:
        return (datetime.fromisoformat(value) - first_ts).total_seconds()

    print(
        f"frames ingested {frame_count} at {ANALYTICS_FPS:g} fps; clip played in {ingested_s:.0f}s, "
        f"detector caught up at {detected_s:.0f}s, evidence sealed at {sealed_s:.0f}s"
    )
    loitering = [i for i in incidents if i["rule"] == "loitering"]
    assert len(loitering) == len(incidents), f"unexpected rules: {[i['rule'] for i in incidents]}"
    matched: dict[int, list[float]] = defaultdict(list)
    for incident in loitering:
        alert_s = video_time(incident["threshold_at"])
        started_s, ended_s = video_time(incident["started_at"]), video_time(incident["ended_at"])
        owners = [g for g in truth if g.inside_near(alert_s, PRESENCE_TOLERANCE_S)]
        print(f"incident tracks {incident['track_ids']}: entered {started_s:.1f}s, alert {alert_s:.1f}s, "
              f"left {ended_s:.1f}s, dwell {incident['dwell_s']:.1f}s -> ground truth "
              f"{[g.identity for g in owners] or 'none'}")  # fmt: skip
        # Precision: at the alert, an annotated loiterer is really in the zone.
        assert owners, (
            f"incident {incident['incident_id']} alerted at {alert_s:.1f}s with no loiterer in the zone"
        )
        for owner in owners:
            matched[owner.identity].append(alert_s - owner.crossed_at_s)
            annotated = owner.dwell_until(alert_s, 1.0 / fps)
            print(f"  id {owner.identity} had spent {annotated:.1f}s in the zone at the alert (annotated)")
            # Not early: the person had really spent (nearly) the threshold in the zone.
            assert annotated >= DWELL_S - OVERCOUNT_TOLERANCE_S, f"alert after only {annotated:.1f}s inside"
        # Evidence was sealed and the served clip is the recorded artifact.
        for evidence in incident["evidence"]:
            assert evidence["frame_count"] > 0
            working = [a for a in evidence["artifacts"] if a["kind"] == "working_copy"]
            assert len(working) == 1
            status, clip_sha = clips[evidence["evidence_id"]]
            assert status == 200
            assert clip_sha == working[0]["sha256"]
    for g in truth:
        # Recall: every annotated loiterer raised an alert, and not absurdly late.
        assert matched[g.identity], f"ground-truth loiterer id {g.identity} raised no incident"
        delay = min(matched[g.identity])
        print(f"ground truth id {g.identity}: alert delay {delay:+.1f}s after the annotated crossing")
        assert delay <= LATE_LIMIT_S, (
            f"id {g.identity}: first alert {delay:+.1f}s after the annotated crossing"
        )
