"""Unit tests of the detector's pure stages on synthetic arrays: zones, loitering, motion gate, tracker."""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest

from cctv.contracts import IncidentEvent
from cctv.rule_config import ActiveHours, LoiteringRuleConfig, Zone, ZoneRules
from detector.detections import Detections
from detector.events import FramePosition, RuleEvent
from detector.loitering import LoiteringRule
from detector.motion import MotionGate
from detector.tracker import CameraTracker
from detector.zones import in_active_hours, point_in_polygon

W, H, FPS = 768, 576, 5.0
T0 = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
SQUARE = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))
IN, IN2, IN3, OUT = (0.5, 0.6), (0.4, 0.6), (0.6, 0.6), (0.9, 0.9)


def detections(i: int, people: dict[int, tuple[float, float]], start: datetime = T0) -> Detections:
    boxes = [[x * W - 20, y * H - 100, x * W + 20, y * H] for x, y in people.values()]
    n = len(people)
    return Detections(
        camera_id="cam",
        seq=i,
        capture_ts=start + timedelta(seconds=i / FPS),
        width=W,
        height=H,
        boxes=np.asarray(boxes, np.float32).reshape(n, 4),
        confidences=np.full(n, 0.9, np.float32),
        class_ids=np.zeros(n, np.int32),
        track_ids=np.asarray(list(people), np.int64),
        inferred=True,
    )


def run(
    rule: LoiteringRule, script: list[dict[int, tuple[float, float]]], start: datetime = T0
) -> list[tuple[int, RuleEvent]]:
    events = []
    for i, people in enumerate(script):
        for event in rule.process(detections(i, people, start), FramePosition("s1", i, 0, 1000 + i)):
            events.append((i, event))
    return events


def make_rule(pre_roll_s: float = 2.0, **loitering: object) -> LoiteringRule:
    config = LoiteringRuleConfig(**{"dwell_s": 4.0, "reentry_grace_s": 15.0, **loitering})  # type: ignore[arg-type]
    zone = Zone(id="z1", name="door", polygon=SQUARE, rules=ZoneRules(loitering=config))
    return LoiteringRule("cam", (zone,), pre_roll_s=pre_roll_s)


def at(i: int, start: datetime = T0) -> datetime:
    return start + timedelta(seconds=i / FPS)


def of(
    events: list[tuple[int, RuleEvent]], kind: IncidentEvent, rule: str = "loitering"
) -> list[tuple[int, RuleEvent]]:
    return [(i, e) for i, e in events if e.event == kind and e.rule == rule]


# --------------------------------------------------------------------------- zones


@pytest.mark.parametrize(
    ("point", "inside"),
    [((0.5, 0.5), True), ((0.1, 0.5), False), ((0.26, 0.74), True), ((0.8, 0.3), False), ((0.5, 0.9), False)],
)
def test_point_in_square(point: tuple[float, float], inside: bool) -> None:
    assert point_in_polygon(point, SQUARE) is inside


def test_point_in_concave_polygon() -> None:
    u_shape = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.7, 1.0), (0.7, 0.3), (0.3, 0.3), (0.3, 1.0), (0.0, 1.0))
    assert point_in_polygon((0.1, 0.8), u_shape)
    assert not point_in_polygon((0.5, 0.8), u_shape)  # in the notch
    assert point_in_polygon((0.5, 0.1), u_shape)


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        (datetime(2025, 7, 1, 21, 30, tzinfo=UTC), True),  # BST: 22:30 local
        (datetime(2025, 1, 15, 21, 30, tzinfo=UTC), False),  # GMT: 21:30 local
        (datetime(2025, 1, 15, 22, 0, tzinfo=UTC), True),  # GMT: exactly the start
        (datetime(2025, 7, 1, 4, 59, tzinfo=UTC), True),  # BST: 05:59 local, wraps past midnight
        (datetime(2025, 7, 1, 5, 0, tzinfo=UTC), False),  # BST: 06:00 local = end, exclusive
    ],
)
def test_active_hours_follow_london_time(utc: datetime, expected: bool) -> None:
    assert in_active_hours(utc, ActiveHours(start=time(22, 0), end=time(6, 0))) is expected


# --------------------------------------------------------------------------- loitering


@pytest.mark.parametrize("dwell_s", [1.0, 4.0, 7.4])
def test_alert_exactly_when_dwell_threshold_is_crossed(dwell_s: float) -> None:
    rule = make_rule(dwell_s=dwell_s)
    events = run(rule, [{1: IN}] * 60)
    opened = of(events, IncidentEvent.OPENED)
    assert len(opened) == 1
    _, event = opened[0]
    assert event.threshold_at == event.event_at == T0 + timedelta(seconds=dwell_s)
    assert event.started_at == T0 and event.dwell_s == pytest.approx(dwell_s)
    assert event.track_ids == (1,)


@pytest.mark.parametrize("entry_frames", [1, 3, 5])
def test_entry_needs_consecutive_frames_inside(entry_frames: int) -> None:
    rule = make_rule(entry_frames=entry_frames)
    # in for entry_frames-1 frames, out once (the streak breaks), then in for good from frame `entry_frames`
    script: list[dict[int, tuple[float, float]]] = (
        [{1: IN}] * (entry_frames - 1) + [{1: OUT}] + [{1: IN}] * 40
    )
    opened = of(run(rule, script), IncidentEvent.OPENED)
    assert len(opened) == 1
    assert opened[0][1].started_at == at(entry_frames)
    assert opened[0][1].threshold_at == at(entry_frames) + timedelta(seconds=4)


@pytest.mark.parametrize(
    ("grace_s", "new_point", "threshold_frame"),
    [
        (15.0, IN, 36),  # relinked: 1.8 s before the gap (frames 0..9) + 2.2 s from frame 25 on
        (2.0, IN, 45),  # gap of 3.2 s > grace: a new person, clock restarts at frame 25
        (15.0, (0.7, 0.3), 45),  # within grace but too far from where the person was: a new person
    ],
)
def test_track_break_keeps_clock_only_within_grace_and_radius(
    grace_s: float, new_point: tuple[float, float], threshold_frame: int
) -> None:
    rule = make_rule(reentry_grace_s=grace_s)
    script: list[dict[int, tuple[float, float]]] = [{1: IN}] * 10 + [{}] * 15 + [{7: new_point}] * 30
    opened = of(run(rule, script), IncidentEvent.OPENED)
    assert [i for i, _ in opened] == [threshold_frame]
    assert opened[0][1].track_ids == (7,)


def test_leaving_closes_and_cooldown_blocks_a_second_alert() -> None:
    rule = make_rule(dwell_s=2.0, cooldown_s=10.0)
    # in 3 s (alert at frame 10), out for 5 frames (closed after 3), back in for 15 s
    script: list[dict[int, tuple[float, float]]] = [{1: IN}] * 15 + [{1: OUT}] * 5 + [{1: IN}] * 75
    events = run(rule, script)
    opened, closed = of(events, IncidentEvent.OPENED), of(events, IncidentEvent.CLOSED)
    assert [i for i, _ in opened][:1] == [10]
    assert closed[0][0] == 17 and closed[0][1].ended_at == at(14)
    assert "left the zone" in closed[0][1].summary
    # the second alert waits for cooldown_s after the close (frame 17 + 50 frames)
    assert [i for i, _ in opened][1:] == [67]
    assert opened[1][1].incident_id != opened[0][1].incident_id


def test_lost_track_closes_after_grace() -> None:
    rule = make_rule(dwell_s=2.0, reentry_grace_s=3.0)
    events = run(rule, [{1: IN}] * 20 + [{}] * 30)
    closed = of(events, IncidentEvent.CLOSED)
    assert len(closed) == 1
    ended = closed[0][1].ended_at
    assert ended == at(19) and closed[0][1].event_at - ended > timedelta(seconds=3)
    assert "track lost" in closed[0][1].summary
    assert rule.occupant_count == 0


def test_updates_while_staying_and_max_duration_closes() -> None:
    rule = make_rule(dwell_s=2.0, max_incident_s=25.0, cooldown_s=1000.0)
    events = run(rule, [{1: IN}] * 200)
    updated, closed = of(events, IncidentEvent.UPDATED), of(events, IncidentEvent.CLOSED)
    assert [i for i, _ in updated] == [60, 110]  # every 10 s after the alert at frame 10
    assert [i for i, _ in closed] == [135]  # 25 s after the alert
    assert "maximum" in closed[0][1].summary
    assert len(of(events, IncidentEvent.OPENED)) == 1  # cooldown keeps it from reopening


def test_incident_ids_are_replay_stable_and_frame_span_has_pre_roll() -> None:
    script: list[dict[int, tuple[float, float]]] = [{}] * 20 + [{1: IN}] * 30
    first = run(make_rule(pre_roll_s=2.0), script)
    second = run(make_rule(pre_roll_s=2.0), script)
    assert [e.incident_id for _, e in first] == [e.incident_id for _, e in second]
    frame, opened = of(first, IncidentEvent.OPENED)[0]
    assert opened.frames.partition == 0
    assert opened.frames.start_offset == 1000 + 20 - 10  # 2 s of pre-roll before entry at frame 20
    assert opened.frames.end_offset == 1000 + frame


@pytest.mark.parametrize(
    ("utc_start", "alerts"),
    [(datetime(2025, 7, 1, 21, 30, tzinfo=UTC), 1), (datetime(2025, 1, 15, 21, 30, tzinfo=UTC), 0)],
)
def test_active_hours_gate_alerts(utc_start: datetime, alerts: int) -> None:
    rule = make_rule(active_hours=ActiveHours(start=time(22, 0), end=time(6, 0)))
    events = run(rule, [{1: IN}] * 40, start=utc_start)
    assert len(of(events, IncidentEvent.OPENED)) == alerts


def test_group_loitering_opens_once_and_closes_when_the_group_breaks_up() -> None:
    rule = make_rule(group_size=3)
    script: list[dict[int, tuple[float, float]]] = [{1: IN, 2: IN2, 3: IN3}] * 30 + [
        {1: IN, 2: IN2, 3: OUT}
    ] * 5
    events = run(rule, script)
    group_open = of(events, IncidentEvent.OPENED, "group_loitering")
    group_closed = of(events, IncidentEvent.CLOSED, "group_loitering")
    assert [i for i, _ in group_open] == [20]
    assert group_open[0][1].track_ids == (1, 2, 3)
    assert [i for i, _ in group_closed] == [32]  # 3 frames outside = person 3 left
    assert len(of(events, IncidentEvent.OPENED)) == 3  # plus each individual


def test_group_of_two_is_not_a_group_of_three() -> None:
    events = run(make_rule(group_size=3), [{1: IN, 2: IN2}] * 40)
    assert of(events, IncidentEvent.OPENED, "group_loitering") == []


def test_state_stays_bounded_with_many_passers_by() -> None:
    rule = make_rule(reentry_grace_s=1.0)
    script: list[dict[int, tuple[float, float]]] = []
    for person in range(1000):  # each walks through the zone for 4 frames, then is gone
        script += [{person: IN}] * 4
    run(rule, script + [{}] * 10)
    assert rule.occupant_count == 0
    assert len(rule.ring) <= 2 * FPS + 1


def test_close_all_closes_open_incidents() -> None:
    rule = make_rule(dwell_s=1.0)
    run(rule, [{1: IN}] * 10)
    closed = rule.close_all(at(10), FramePosition("s1", 10, 0, 1010), "detector stopped")
    assert [e.event for e in closed] == [IncidentEvent.CLOSED]
    assert rule.occupant_count == 0


# --------------------------------------------------------------------------- motion gate


def still_scene(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (H, W, 3)).astype(np.uint8)


def noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 6.0) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sigma", [0.0, 4.0, 8.0])
def test_gate_skips_static_scene_with_sensor_noise(sigma: float) -> None:
    gate, rng, base = MotionGate(threshold=0.002, recheck_s=1.0), np.random.default_rng(0), still_scene()
    decisions = [gate.decide("cam", noisy(base, rng, sigma), i / FPS, tracks_alive=False) for i in range(20)]
    assert decisions[0].run and decisions[0].reason == "first-frame"
    assert not any(d.run for d in decisions[1:])
    assert gate.counts.skipped == 19 and gate.counts.skip_ratio == pytest.approx(19 / 20)


def test_gate_runs_on_a_moving_rectangle_and_reports_where() -> None:
    gate, base = MotionGate(threshold=0.002, recheck_s=1.0), np.full((H, W, 3), 100, np.uint8)
    gate.decide("cam", base, 0.0, tracks_alive=False)
    for i in range(1, 10):
        frame = base.copy()
        x = 100 + 30 * i
        frame[300:460, x : x + 60] = 230
        decision = gate.decide("cam", frame, i / FPS, tracks_alive=False)
        assert decision.run and decision.reason == "motion"
        assert any(r[0] <= x + 30 <= r[2] and r[1] <= 380 <= r[3] for r in decision.motion.regions)


def test_gate_rechecks_tracked_people_at_the_recheck_interval() -> None:
    gate, base = MotionGate(threshold=0.002, recheck_s=1.0), still_scene()
    runs = [i for i in range(26) if gate.decide("cam", base, i / FPS, tracks_alive=True).run]
    assert runs == [0, 5, 10, 15, 20, 25]
    assert all(not gate.decide("cam", base, 5.2 + i / FPS, tracks_alive=False).run for i in range(10))


def test_gate_disabled_always_runs() -> None:
    gate, base = MotionGate(threshold=0.002, recheck_s=1.0, enabled=False), still_scene()
    assert all(gate.decide("cam", base, i / FPS, tracks_alive=False).run for i in range(5))


# --------------------------------------------------------------------------- tracker


def untracked(i: int, xs: list[float]) -> Detections:
    det = detections(i, {k: (x, 0.6) for k, x in enumerate(xs)})
    return Detections(det.camera_id, det.seq, det.capture_ts, W, H, det.boxes, det.confidences, det.class_ids)


def test_tracker_keeps_ids_of_walking_people_and_does_not_mutate_input() -> None:
    tracker = CameraTracker(fps=FPS)
    ids = []
    for i in range(10):
        det = untracked(i, [0.2 + 0.01 * i, 0.7 - 0.01 * i])
        out = tracker.update(det)
        assert det.track_ids is None  # input untouched
        assert out.track_ids is not None
        ids.append(sorted(int(t) for t in out.track_ids))
    assert ids[-1] == [1, 2] and all(row == [1, 2] for row in ids[1:])


def test_tracker_retires_lost_tracks_by_capture_time() -> None:
    tracker = CameraTracker(fps=FPS, track_buffer_s=2.0)
    for i in range(5):
        tracker.update(untracked(i, [0.5]))
    assert tracker.alive
    tracker.update(untracked(6, []))
    assert tracker.alive  # lost, within the buffer
    tracker.update(untracked(30, []))  # 4.8 s later, skipped frames count as elapsed
    assert not tracker.alive


# --------------------------------------------------------------------------- relinking track fragments

SPOT = (0.5, 0.6)  # where the lost occupant was last seen inside SQUARE


def walk_up(start_frame: int, frames: int) -> list[tuple[float, float]]:
    """From below the zone, (0.5, 0.95), straight up to SPOT over ``frames`` frames."""
    return [(0.5, 0.95 - (0.95 - SPOT[1]) * i / (frames - 1)) for i in range(frames)]


@pytest.mark.parametrize(
    "passer_from", [12, 4], ids=["appears-after-occupant-lost", "seen-alongside-occupant"]
)
def test_passer_by_walking_up_to_a_lost_occupants_spot_does_not_inherit_the_clock(passer_from: int) -> None:
    # Occupant 1 stands at SPOT for 2 s (frames 0-9) and is lost. Track 7 begins below the zone (far
    # from SPOT), waits there until frame 14 and then walks up to SPOT. Its first frame inside the zone
    # is well within reentry_radius of SPOT: matching by current position would hand it the clock.
    path = walk_up(14, 10)
    script: list[dict[int, tuple[float, float]]] = []
    for i in range(14 + len(path) + 40):
        people: dict[int, tuple[float, float]] = {1: SPOT} if i < 10 else {}
        if i >= passer_from:
            people[7] = path[min(max(i - 14, 0), len(path) - 1)]
        script.append(people)
    first_inside = next(i for i, p in enumerate(script) if 7 in p and point_in_polygon(p[7], SQUARE))
    x, y = script[first_inside][7]
    assert math.hypot((x - SPOT[0]) * W, (y - SPOT[1]) * H) < 0.1 * math.hypot(W, H)  # near enough
    opened = of(run(make_rule(), script), IncidentEvent.OPENED)
    assert [(i, e.track_ids) for i, e in opened] == [(first_inside + 20, (7,))]  # a full 4 s of its own
    assert opened[0][1].started_at == at(first_inside)


@pytest.mark.parametrize(
    ("resumes_at", "threshold_frame"),
    [
        (10, 20),  # no gap: the clock runs on as if the track had never broken
        (12, 20),  # a 0.6 s miss (frames 10-11) counts: the person was there, the detector missed them
        (20, 31),  # 1.8 s before the break (frames 0-9) + 2.2 s from the fragment's second frame on:
        # a 2.2 s gap is longer than a missed detection (loitering.MISSED_GAP), so it is time away
    ],
)
def test_track_fragment_beginning_at_the_spot_keeps_the_clock(resumes_at: int, threshold_frame: int) -> None:
    # The tracker loses occupant 1 after frame 9 and finds them again as track 7, a pixel or two away.
    script: list[dict[int, tuple[float, float]]] = (
        [{1: SPOT}] * 10 + [{}] * (resumes_at - 10) + [{7: (SPOT[0] + 0.003, SPOT[1])}] * 40
    )
    opened = of(run(make_rule(), script), IncidentEvent.OPENED)
    assert [(i, e.track_ids) for i, e in opened] == [(threshold_frame, (7,))]
    assert opened[0][1].started_at == T0
    assert opened[0][1].dwell_s == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("lost_last", "new_at", "inherited_start"),
    [
        # occupant 2 (entered frame 3, at x 0.56) lost last; the new track begins nearer occupant 1
        (2, (0.49, 0.6), 3),
        # occupant 1 (entered frame 0, at x 0.48) lost last; the new track begins nearer occupant 2
        (1, (0.55, 0.6), 0),
    ],
)
def test_two_lost_occupants_near_the_spot_the_most_recently_lost_is_taken(
    lost_last: int, new_at: tuple[float, float], inherited_start: int
) -> None:
    spots = {1: (0.48, 0.6), 2: (0.56, 0.6)}
    first = {1: 0, 2: 3}
    script: list[dict[int, tuple[float, float]]] = []
    for i in range(16 + 40):
        people = {p: spots[p] for p in (1, 2) if first[p] <= i < (15 if p == lost_last else 10)}
        if i >= 16:
            people[7] = new_at
        script.append(people)
    opened = of(run(make_rule(), script), IncidentEvent.OPENED)
    assert [e.track_ids for _, e in opened] == [(7,)]
    assert opened[0][1].started_at == at(inherited_start)
