"""A loiterer's dwell clock carried across track breaks by position and appearance (issue 5).

Frames are composed from the simulated street and its two real pedestrians (beige coat: sprite 0,
black coat: sprite 1), JPEG round-tripped as ingest does, with sensor noise and a few pixels of box
jitter; the detections (with track ids, as the tracker would give them) are built by hand, so each
test scripts exactly where a track breaks. Every scenario also runs without descriptors, the
position-only rule, to show what appearance changes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pytest

from cctv.config import Camera, CameraRegistry, DetectorSettings
from cctv.contracts import IncidentEvent
from cctv.rule_config import LoiteringRuleConfig, Zone, ZoneRules
from detector.appearance import DESCRIPTOR_SIZE, RunningAppearance, describe, similarity, usable
from detector.backends.hog import HogBackend
from detector.detections import Detections, RawBoxes
from detector.events import FramePosition, RuleEvent
from detector.loitering import APPEARANCE_FLOOR, APPEARANCE_STRONG, WIDE_RADIUS_FACTOR, LoiteringRule
from detector.pipeline import DetectorPipeline, FrameInput
from ingest.sim import scripted_frames
from ingest.sim_assets import background
from tests.street_support import (
    BEIGE,
    BLACK,
    FOOT_Y,
    T0,
    H,
    Person,
    Script,
    W,
    at,
    frames,
    person_box,
    render,
)

SQUARE = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))  # x 192..576, y 144..432 px
RADIUS = 0.1  # LoiteringRuleConfig's default reentry_radius, fraction of the frame diagonal
RADIUS_PX = RADIUS * math.hypot(W, H)  # 96 px
DWELL_S = 20.0


def opened(detections: Sequence[Detections], by_appearance: bool) -> list[tuple[int, RuleEvent]]:
    """The OPENED loitering events (frame, event), with or without the descriptors."""
    config = LoiteringRuleConfig(dwell_s=DWELL_S, reentry_grace_s=15.0, reentry_radius=RADIUS)
    rule = LoiteringRule("cam", (Zone(id="z", polygon=SQUARE, rules=ZoneRules(loitering=config)),), 2.0)
    events = []
    for i, det in enumerate(detections):
        det = det if by_appearance else dataclasses.replace(det, appearance=None)
        events += [(i, e) for e in rule.process(det, FramePosition("s", i, 0, i)) if e.rule == "loitering"]
    assert rule.occupant_count <= 4  # bounded: retired people are forgotten
    return [(i, e) for i, e in events if e.event == IncidentEvent.OPENED]


# --------------------------------------------------------------------------- the descriptor


@pytest.fixture(scope="module")
def two_people() -> tuple[np.ndarray, np.ndarray]:
    people = (Person(1, BEIGE, 300.0), Person(2, BLACK, 480.0))
    return render(people, 0), np.array([person_box(p) for p in people], np.float32)


def test_same_person_moved_mirrored_and_jittered_scores_high_the_other_low(
    two_people: tuple[np.ndarray, np.ndarray],
) -> None:
    image, boxes = two_people
    beige, black = describe(image, boxes)
    assert beige.shape == (DESCRIPTOR_SIZE,) and usable(beige) and usable(black)
    elsewhere = (Person(1, BLACK, 260.0, mirrored=True, y=360.0), Person(2, BEIGE, 450.0, mirrored=True))
    moved = describe(render(elsewhere, 3), np.array([person_box(p) for p in elsewhere], np.float32))
    rng = np.random.default_rng(7)
    for _ in range(5):
        jittered = describe(image, boxes + rng.uniform(-6, 6, boxes.shape).astype(np.float32))
        assert similarity(beige, jittered[0]) > 0.95 and similarity(black, jittered[1]) > 0.95
    assert similarity(beige, moved[1]) > APPEARANCE_STRONG and similarity(black, moved[0]) > APPEARANCE_STRONG
    assert similarity(beige, black) < APPEARANCE_FLOOR
    assert similarity(beige, moved[0]) < APPEARANCE_FLOOR and similarity(black, moved[1]) < APPEARANCE_FLOOR
    assert similarity(beige, beige) == pytest.approx(1.0, abs=1e-5)
    assert similarity(beige, black) == pytest.approx(similarity(black, beige))


@pytest.mark.parametrize("hidden", [0.3, 0.45])
def test_partly_hidden_person_is_still_nearer_themselves_than_the_other(
    two_people: tuple[np.ndarray, np.ndarray], hidden: float
) -> None:
    image, boxes = two_people
    beige, black = describe(image, boxes)
    x1, y1, x2, y2 = (int(v) for v in boxes[0])
    covered = image.copy()
    cut = y2 - int(hidden * (y2 - y1))
    covered[cut:y2, x1:x2] = background(W, H)[cut:y2, x1:x2]  # the legs behind something street-coloured
    (partial,) = describe(covered, boxes[:1])
    assert similarity(partial, beige) > similarity(partial, black) + 0.1
    assert similarity(partial, beige) < similarity(beige, beige)  # it did change


def test_descriptor_is_deterministic_and_a_box_outside_the_frame_is_no_evidence(
    two_people: tuple[np.ndarray, np.ndarray],
) -> None:
    image, boxes = two_people
    odd = np.array([[-50, -50, -10, -5], [700, 500, 900, 700], [10, 10, 10, 40]], np.float32)
    first = describe(image, np.concatenate([boxes, odd]))
    second = describe(image.copy(), np.concatenate([boxes, odd]))
    assert first.dtype == np.float32 and first.shape == (5, DESCRIPTOR_SIZE)
    assert np.array_equal(first[:2], second[:2])
    assert [usable(row) for row in first] == [True, True, False, True, False]  # half out: what is visible
    assert np.allclose(first[:4].reshape(4, -1, DESCRIPTOR_SIZE // 4).sum(axis=2)[[0, 1, 3]], 1.0, atol=1e-4)
    assert describe(image, np.zeros((0, 4), np.float32)).shape == (0, DESCRIPTOR_SIZE)


def test_running_appearance_follows_a_change_but_little_from_one_odd_frame(
    two_people: tuple[np.ndarray, np.ndarray],
) -> None:
    beige, black = describe(*two_people)
    model = RunningAppearance(0.1)
    for _ in range(20):
        model.add(beige)
    model.add(black)  # one frame of someone else (a passer-by the overlap test missed)
    assert model.mean is not None and similarity(model.mean, beige) > 0.97
    for _ in range(40):
        model.add(black)
    assert similarity(model.mean, black) > 0.97 and model.samples == 61


def test_detections_validate_and_with_raw_clears_appearance() -> None:
    boxes = np.array([[0, 0, 10, 30], [20, 0, 30, 30]], np.float32)
    base = Detections("cam", 0, T0, W, H, boxes, np.ones(2, np.float32), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="appearance"):
        dataclasses.replace(base, appearance=np.zeros((3, DESCRIPTOR_SIZE), np.float32))
    with pytest.raises(ValueError, match="appearance"):
        dataclasses.replace(base, appearance=np.zeros(2, np.float32))
    described = dataclasses.replace(base, appearance=np.zeros((2, DESCRIPTOR_SIZE), np.float32))
    assert described.appearance is not None
    assert dataclasses.replace(described, seq=1).appearance is described.appearance  # carried forward
    assert described.with_raw(RawBoxes.empty()).appearance is None


# --------------------------------------------------------------------------- the loitering rule


def test_loiterer_reappearing_further_away_keeps_the_clock() -> None:
    # Track 1 (beige) stands at x 300 for 10 s (frames 0-49), is lost for 5 s, and is found again as
    # track 2 at 1.8x reentry_radius away, turned round: beyond the position-only radius.
    away = 300.0 + 1.8 * RADIUS_PX
    script: Script = (
        [[Person(1, BEIGE, 300.0)]] * 50 + [[]] * 25 + [[Person(2, BEIGE, away, mirrored=True)]] * 125
    )
    detections = frames(script)
    kept = opened(detections, by_appearance=True)
    # 9.8 s before the break (frames 0-49) + 10.2 s from frame 75 on: frame 126; time away does not count
    assert [(i, e.track_ids, e.started_at) for i, e in kept] == [(126, (2,), T0)]
    assert kept[0][1].dwell_s == pytest.approx(DWELL_S)
    # Position only, the reappearance is a new person: a fresh clock, 20 s from frame 75.
    fresh = opened(detections, by_appearance=False)
    assert [(i, e.track_ids, e.started_at) for i, e in fresh] == [(175, (2,), at(75))]


@pytest.mark.parametrize(
    ("bystander", "alert_frame", "started"),
    [(BLACK, 126, 0), (BEIGE, 175, 75)],
    ids=["looks-distinct-keeps-the-clock", "lookalike-around-starts-afresh"],
)
def test_far_reappearance_keeps_the_clock_only_if_nobody_around_looks_as_alike(
    bystander: int, alert_frame: int, started: int
) -> None:
    # As above, while someone else stands in the zone the whole time, 100 px from where the loiterer
    # reappears. If they are dressed alike, the far fragment could as well be theirs: a fresh clock.
    away = 250.0 + 1.8 * RADIUS_PX
    script: Script = [
        [Person(5, bystander, 525.0, mirrored=True), *people]
        for people in [[Person(1, BEIGE, 250.0)]] * 50 + [[]] * 25 + [[Person(2, BEIGE, away)]] * 125
    ]
    events = opened(frames(script), by_appearance=True)
    assert [(i, e.track_ids) for i, e in events if e.track_ids == (5,)] == [(100, (5,))]
    assert [(i, e.started_at) for i, e in events if e.track_ids == (2,)] == [(alert_frame, at(started))]


def test_lookalike_beyond_the_wide_radius_is_a_new_person() -> None:
    far = 230.0 + WIDE_RADIUS_FACTOR * RADIUS_PX + 10.0  # 250 px away: too far even for a close likeness
    script: Script = [[Person(1, BEIGE, 230.0)]] * 50 + [[]] * 25 + [[Person(2, BEIGE, far)]] * 110
    assert far < 0.75 * W  # still inside the zone
    kept = opened(frames(script), by_appearance=True)
    assert [(i, e.started_at) for i, e in kept] == [(175, at(75))]


@pytest.mark.parametrize(
    ("newcomer", "alert_frame", "started"),
    [(BLACK, 160, 60), (BEIGE, 111, 0)],
    ids=["other-coat-starts-afresh", "same-coat-keeps-the-clock"],
)
def test_person_appearing_where_the_loiterer_vanished_inherits_only_if_alike(
    newcomer: int, alert_frame: int, started: int
) -> None:
    # Track 1 (beige) stands at x 300 for 10 s and is lost; 2 s later track 2 appears right there.
    script: Script = [[Person(1, BEIGE, 300.0)]] * 50 + [[]] * 10 + [[Person(2, newcomer, 302.0)]] * 140
    detections = frames(script)
    events = opened(detections, by_appearance=True)
    assert [(i, e.track_ids, e.started_at) for i, e in events] == [(alert_frame, (2,), at(started))]
    # Position only, whoever stands there takes the clock: 9.8 s + 10.2 s from frame 60.
    inherited = opened(detections, by_appearance=False)
    assert [(i, e.started_at) for i, e in inherited] == [(111, T0)]


def test_two_people_side_by_side_each_keeps_their_own_clock() -> None:
    # Beige (track 1, from frame 0) and black (track 2, from frame 25) stand 80 px apart, within
    # reentry_radius of each other. A passer-by hides them: track 1 is lost after frame 59, track 2
    # after frame 61. Beige is found again as track 7 at frame 70, black as track 8 at frame 72.
    script: Script = []
    for i in range(180):
        people = []
        if i < 60 or i >= 70:
            people.append(Person(1 if i < 60 else 7, BEIGE, 300.0))
        if 25 <= i < 62 or i >= 72:
            people.append(Person(2 if i < 62 else 8, BLACK, 380.0))
        script.append(people)
    detections = frames(script)
    by_look = {e.track_ids: (i, e.started_at) for i, e in opened(detections, by_appearance=True)}
    # beige: 11.8 s (frames 0-59) + 8.2 s from frame 70; black: 7.2 s (frames 25-61) + 12.8 s from 72
    assert by_look == {(7,): (111, T0), (8,): (136, at(25))}
    # Position only: track 7 takes the most recently lost clock (black's), track 8 the one left over.
    by_position = {e.track_ids: (i, e.started_at) for i, e in opened(detections, by_appearance=False)}
    assert by_position == {(7,): (134, at(25)), (8,): (113, T0)}


def test_lookalikes_side_by_side_the_most_recently_lost_wins_as_without_appearance() -> None:
    # Two people in the same coat, 80 px apart: track 1 (from frame 0) lost after frame 61, track 2
    # (from frame 25) after frame 59. Track 7 begins between them, a little nearer track 2's spot.
    # Appearance cannot tell them apart, so the tracker's habit decides: the most recently lost.
    script: Script = []
    for i in range(150):
        people = [Person(1, BEIGE, 300.0)] if i < 62 else [Person(7, BEIGE, 345.0)] if i >= 70 else []
        if 25 <= i < 60:
            people.append(Person(2, BEIGE, 380.0))
        script.append(people)
    detections = frames(script)
    for by_appearance in (True, False):  # 12.2 s (frames 0-61) + 7.8 s from frame 70
        events = opened(detections, by_appearance)
        assert [(i, e.track_ids, e.started_at) for i, e in events] == [(109, (7,), T0)]


def test_someone_standing_in_front_does_not_spoil_the_loiterers_model() -> None:
    # Black stands just in front of beige for the 4 s before beige's track breaks (frames 30-49, the boxes
    # overlapping by more than half); beige resumes 1.8x reentry_radius away. Learnt from the overlapping
    # boxes too, beige's model would look partly black (measured: 0.84 against the reappearance, below
    # APPEARANCE_STRONG, so a fresh clock); the overlapping boxes are not learnt from, and it stays 0.98.
    away = 300.0 + 1.8 * RADIUS_PX
    script: Script = []
    for i in range(200):
        people = [Person(1, BEIGE, 300.0)] if i < 50 else [] if i < 75 else [Person(2, BEIGE, away)]
        if 30 <= i < 50:
            people.append(Person(9, BLACK, 310.0, y=FOOT_Y + 8))  # drawn last: in front
        script.append(people)
    kept = opened(frames(script), by_appearance=True)
    assert [(i, e.track_ids, e.started_at) for i, e in kept] == [(126, (2,), T0)]


# --------------------------------------------------------------------------- the pipeline


def test_pipeline_attaches_descriptors_only_where_a_loitering_rule_reads_them() -> None:
    zone = Zone(
        id="bench",
        polygon=((0.3, 0.6), (0.7, 0.6), (0.7, 0.98), (0.3, 0.98)),
        rules=ZoneRules(loitering=LoiteringRuleConfig(dwell_s=60.0)),
    )
    watched = Camera(id="watched", name="W", source="sim://loiterer?dwell=30&start=0&seed=1", zones=(zone,))
    plain = Camera(id="plain", name="P", source="sim://loiterer?dwell=30&start=0&seed=1")
    pipeline = DetectorPipeline(
        CameraRegistry(cameras=(watched, plain)), HogBackend(), DetectorSettings(), pre_roll_s=2.0
    )
    seen = 0
    for camera in (watched, plain):
        for frame in scripted_frames(camera, 3.0):
            pipeline.process([FrameInput(frame, 0, frame.seq)])
            det = pipeline.last_detections(camera.id)
            assert det is not None
            if camera is plain:
                assert det.appearance is None
            elif len(det):
                assert det.appearance is not None and det.appearance.shape == (len(det), DESCRIPTOR_SIZE)
                assert all(usable(row) for row in det.appearance)
                seen += 1
    assert seen > 0  # HOG found the loiterer walking in
