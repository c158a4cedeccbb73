"""Simulated cameras: deterministic, exact ground truth, and people a real detector finds."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from ingest.sim import BENCH, SimSource, scene_from_url
from ingest.sim_assets import background


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a, b = scene_from_url("sim://walkers?seed=5"), scene_from_url("sim://walkers?seed=5")
    c = scene_from_url("sim://walkers?seed=6")
    for index in (3, 30, 61):
        (fa, ta), (fb, tb), (fc, _) = (s.render(index / 3, index) for s in (a, b, c))
        assert np.array_equal(fa, fb) and ta == tb
        assert not np.array_equal(fa, fc)
    assert a.bench_intervals(300) == b.bench_intervals(300) != c.bench_intervals(300)


def test_ground_truth_box_is_where_the_person_was_drawn() -> None:
    scene = scene_from_url("sim://loiterer?seed=2&dwell=30&start=0")
    plain = background(768, 576).astype(int)
    for t in (2.0, 10.0, 20.0):
        frame, truth = scene.render(t, int(t * 3))
        assert len(truth) == 1
        changed = (np.abs(frame.astype(int) - plain).max(axis=2) > 40).astype(np.uint8)
        x, y, w, h = cv2.boundingRect(changed)
        assert iou((x, y, x + w, y + h), truth[0].box) > 0.85
        assert 150 <= h <= 225


@pytest.mark.parametrize(("dwell", "start", "seed"), [(90.0, 3.0, 1), (30.0, 0.0, 2), (12.0, 5.0, 3)])
def test_loiterer_bench_interval_matches_dwell(dwell: float, start: float, seed: int) -> None:
    scene = scene_from_url(f"sim://loiterer?seed={seed}&dwell={dwell}&start={start}")
    (interval,) = scene.bench_intervals()
    assert interval.left_bench_at - interval.entered_bench_at == pytest.approx(dwell)
    assert interval.entered_bench_at > start
    w, h = scene.size

    def in_bench(t: float) -> bool:
        people = scene.people_at(t)
        if not people:
            return False
        x1, _, x2, y2 = people[0].box
        cx, by = (x1 + x2) / 2 / w, y2 / h
        return BENCH[0] <= cx <= BENCH[2] and BENCH[1] <= by <= BENCH[3]

    for t in np.linspace(interval.entered_bench_at + 0.1, interval.left_bench_at - 0.1, 40):
        assert in_bench(float(t)), t
    assert not in_bench(interval.entered_bench_at - 0.3)
    assert not in_bench(interval.left_bench_at + 0.3)
    assert scene.people_at(interval.left_bench_at + 10) == []  # walked out, scene stays empty
    assert scene.people_at(start - 0.01 if start else -1) == []


def test_standing_loiterer_sways() -> None:
    scene = scene_from_url("sim://loiterer?seed=1&dwell=60&start=0")
    (interval,) = scene.bench_intervals()
    xs = {
        scene.people_at(t)[0].box[0]
        for t in np.linspace(interval.entered_bench_at + 5, interval.entered_bench_at + 9, 12)
    }
    assert 2 <= len(xs) <= 6  # moves a few pixels, does not wander


def test_walkers_never_stop_in_the_bench_and_keep_coming() -> None:
    scene = scene_from_url("sim://walkers?seed=4")
    intervals = scene.bench_intervals(until=1800)
    assert len(intervals) >= 40
    assert all(0 < i.left_bench_at - i.entered_bench_at < 4 for i in intervals)
    seen = sum(bool(scene.people_at(float(t))) for t in np.arange(600, 900, 2.0))
    assert 40 <= seen <= 150  # people most of the time, with gaps


def test_empty_scene_is_background_with_noise_only() -> None:
    frame, truth = scene_from_url("sim://empty?seed=1&size=640x480").render(1.0, 3)
    assert truth == [] and frame.shape == (480, 640, 3)
    diff = frame.astype(int) - background(640, 480).astype(int)
    assert 1.0 < diff.std() < 4.0 and np.abs(diff).max() < 25


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sim://crowd", "unknown sim scene"),
        ("sim://empty?fps=3", "unknown sim parameter"),
        ("sim://empty?size=big", "bad"),
    ],
)
def test_bad_sim_urls_name_the_problem(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        scene_from_url(url)


def test_hog_people_detector_finds_the_simulated_people() -> None:
    """The detector downstream is real: it must see these people (rate printed for the report)."""
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32))
    people = found = 0
    for url, times in (
        ("sim://loiterer?seed=1&dwell=20&start=0", np.arange(1.5, 25, 2.0)),
        ("sim://walkers?seed=3", np.arange(1, 60, 3.1)),
    ):
        scene = scene_from_url(url)
        for t in times:
            frame, truth = scene.render(float(t), int(t * 3))
            rects, _ = hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
            boxes = [(x, y, x + w, y + h) for x, y, w, h in (rects if len(rects) else [])]
            for person in truth:
                if person.box[0] <= 0 or person.box[2] >= scene.size[0] - 1:
                    continue  # partly outside the frame: not a fair test of the detector
                people += 1
                found += any(iou(person.box, b) > 0.3 for b in boxes)
    rate = found / people
    print(f"HOG detection rate on simulated people: {found}/{people} = {rate:.2f}")
    assert people >= 20 and rate >= 0.65


def test_sim_source_paces_in_real_time_and_attaches_ground_truth() -> None:
    source = SimSource(scene_from_url("sim://loiterer?seed=1&start=0&size=320x240"), fps=10)
    source.open()
    frames = [source.read() for _ in range(5)]
    source.close()
    stamps = [f.capture_ts for f in frames if f is not None]
    assert len(stamps) == 5
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.07
    assert frames[-1] is not None and frames[-1].truth is not None and frames[-1].image.shape == (240, 320, 3)
