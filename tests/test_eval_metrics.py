"""The accuracy metrics on tiny synthetic sequences whose values are worked out by hand.

Each case states the hand count in a comment; a metric that drifts from the
MOT definitions (detector/evaluation.py docstring) fails one of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from detector.evaluation import Box, FrameObjects, assign, evaluate, iou_matrix, parse_mot

A: Box = (0.0, 0.0, 10.0, 20.0)
FAR: Box = (100.0, 100.0, 110.0, 120.0)


def one(identity: int, box: Box = A) -> FrameObjects:
    return FrameObjects((identity,), (box,))


def test_a_perfect_track_scores_one_everywhere() -> None:
    truth = {f: one(1) for f in (1, 2, 3)}
    hyp = {f: one(7) for f in (1, 2, 3)}  # track ids need not equal ground-truth ids
    s = evaluate(truth, hyp, [1, 2, 3])
    assert (s.frames, s.gt, s.tp, s.fp, s.fn, s.idsw) == (3, 3, 3, 0, 0, 0)
    assert (s.precision, s.recall, s.mota, s.idf1) == (1.0, 1.0, 1.0, 1.0)


def test_an_identity_switch_costs_mota_and_half_the_idf1() -> None:
    # gt 1 in frames 1-4; track 7 covers frames 1-2, track 8 frames 3-4: one switch at frame 3.
    truth = {f: one(1) for f in (1, 2, 3, 4)}
    hyp = {1: one(7), 2: one(7), 3: one(8), 4: one(8)}
    s = evaluate(truth, hyp, [1, 2, 3, 4])
    assert (s.tp, s.fp, s.fn, s.idsw) == (4, 0, 0, 1)
    assert s.mota == pytest.approx(1 - 1 / 4)
    # one id pair only: 1<->7 (2 frames); IDTP 2, IDFN 2, IDFP 2 (track 8's frames) -> 4 / 8
    assert (s.idtp, s.idfn, s.idfp) == (2, 2, 2)
    assert s.idf1 == pytest.approx(0.5)


def test_switching_back_to_the_first_track_is_a_second_switch() -> None:
    truth = {f: one(1) for f in (1, 2, 3)}
    hyp = {1: one(7), 2: one(8), 3: one(7)}
    s = evaluate(truth, hyp, [1, 2, 3])
    assert s.idsw == 2
    assert (s.idtp, s.idfn, s.idfp) == (2, 1, 1)  # 1<->7 in frames 1 and 3


def test_a_missed_frame_is_one_false_negative_and_no_switch_when_the_track_resumes() -> None:
    truth = {f: one(1) for f in (1, 2, 3, 4)}
    hyp = {1: one(7), 2: one(7), 4: one(7)}  # nothing at frame 3
    s = evaluate(truth, hyp, [1, 2, 3, 4])
    assert (s.tp, s.fp, s.fn, s.idsw) == (3, 0, 1, 0)
    assert (s.precision, s.recall, s.mota) == (1.0, 0.75, 0.75)
    assert s.idf1 == pytest.approx(2 * 3 / (2 * 3 + 0 + 1))


def test_a_false_positive_counts_against_precision_mota_and_idf1() -> None:
    truth = {1: one(1), 2: one(1)}
    hyp = {1: one(7), 2: FrameObjects((7, 9), (A, FAR))}  # track 9 is nobody
    s = evaluate(truth, hyp, [1, 2])
    assert (s.tp, s.fp, s.fn, s.idsw) == (2, 1, 0, 0)
    assert s.precision == pytest.approx(2 / 3)
    assert s.mota == pytest.approx(1 - 1 / 2)
    assert s.idf1 == pytest.approx(4 / 5)  # IDTP 2, IDFP 1, IDFN 0


def test_an_overlap_below_half_is_a_miss_and_a_false_positive() -> None:
    shifted: Box = (5.0, 0.0, 15.0, 20.0)  # IoU 100 / 300 = 1/3
    assert iou_matrix([A], [shifted])[0, 0] == pytest.approx(1 / 3)
    s = evaluate({1: one(1)}, {1: one(7, shifted)}, [1])
    assert (s.tp, s.fp, s.fn, s.mota, s.idf1) == (0, 1, 1, -1.0, 0.0)


def test_a_kept_match_is_not_switched_for_a_better_overlapping_newcomer() -> None:
    # Frame 2: track 7 still overlaps gt 1 (IoU 0.83), newcomer 8 overlaps it perfectly. CLEAR-MOT keeps
    # 7 (continuity), so 8 is a false positive and there is no switch; per-frame best IoU would switch.
    near: Box = (0.0, 0.0, 10.0, 24.0)
    truth = {1: one(1), 2: one(1)}
    hyp = {1: one(7), 2: FrameObjects((7, 8), (near, A))}
    s = evaluate(truth, hyp, [1, 2])
    assert (s.tp, s.fp, s.fn, s.idsw) == (2, 1, 0, 0)


def test_frames_outside_the_scored_list_do_not_count() -> None:
    truth = {f: one(1) for f in (1, 2, 3)}
    s = evaluate(truth, {1: one(7), 3: one(7)}, [1, 3])  # frame 2 was not sampled
    assert (s.frames, s.gt, s.fn, s.mota) == (2, 2, 0, 1.0)


def test_a_detection_of_an_ignored_person_is_not_a_false_positive() -> None:
    truth = {1: FrameObjects((1,), (A,), ignored=(FAR,))}
    s = evaluate(truth, {1: FrameObjects((7, 9), (A, FAR))}, [1])
    assert (s.tp, s.fp, s.fn, s.hypotheses) == (1, 0, 0, 1)


def test_the_global_identity_assignment_is_optimal_not_greedy() -> None:
    # gt x track overlap counts; greedy takes 3 then 0 (IDTP 3), the optimum pairs 2 + 2 = 4.
    counts = np.array([[3.0, 2.0], [2.0, 0.0]])
    assert sorted(assign(counts, 1.0)) == [(0, 1), (1, 0)]
    # The same through evaluate: gt 1 with track a in 3 frames and b in 2; gt 2 with a in 2.
    b_box: Box = (50.0, 0.0, 60.0, 20.0)
    truth = {f: FrameObjects((1, 2), (A, b_box)) for f in range(1, 6)}
    hyp = {
        1: FrameObjects((10,), (A,)),
        2: FrameObjects((10,), (A,)),
        3: FrameObjects((10,), (A,)),
        4: FrameObjects((11, 10), (A, b_box)),
        5: FrameObjects((11, 10), (A, b_box)),
    }
    s = evaluate(truth, hyp, range(1, 6))
    assert s.idtp == 4  # 1<->11 (2 frames) + 2<->10 (2 frames)
    assert (s.idfn, s.idfp) == (10 - 4, 7 - 4)


def test_parse_mot_turns_top_left_width_height_into_corners_and_sets_ignored_rows_apart() -> None:
    text = "1,9,10,20,30,40,1,-1,-1,-1\n1,4,0,0,5,5,0,-1,-1,-1\n\n3,9,11,21,30,40,1,-1,-1,-1\n"
    frames = parse_mot(text)
    assert sorted(frames) == [1, 3]
    assert frames[1] == FrameObjects((9,), ((10.0, 20.0, 40.0, 60.0),), ignored=((0.0, 0.0, 5.0, 5.0),))
    assert frames[3].ids == (9,)
    with pytest.raises(ValueError, match="line 1"):
        parse_mot("1,2,3\n")
