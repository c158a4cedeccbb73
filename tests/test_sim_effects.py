"""The newer simulated scenes: each incident (and each non-incident) looks the way it is scripted,
and the ground truth (people_at, bench_intervals, truth_events) says exactly what happened."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from detector.backends.hog import HogBackend
from ingest.sim import BENCH, FOLIAGE, OBJECT_AREA, WALL, SimScene, scene_from_url
from ingest.sim_assets import background

NEW_SCENES = ("group", "occluded", "tamper", "lights", "trees", "graffiti", "removal")


def grey(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)


def sharpness(frame: npt.NDArray[np.uint8]) -> float:
    return float(cv2.Laplacian(grey(frame), cv2.CV_32F).var())


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def px(rect: tuple[float, float, float, float], scene: SimScene) -> tuple[int, int, int, int]:
    w, h = scene.size
    return round(rect[0] * w), round(rect[1] * h), round(rect[2] * w), round(rect[3] * h)


def overlaps(box: tuple[int, ...], rect: tuple[int, ...]) -> bool:
    return box[0] < rect[2] and rect[0] < box[2] and box[1] < rect[3] and rect[1] < box[3]


@pytest.mark.parametrize("scene", NEW_SCENES)
def test_same_seed_same_frames_and_truth_other_seed_other_frames(scene: str) -> None:
    url = f"sim://{scene}?size=384x288&" + ("kind=spray&" if scene == "tamper" else "")
    a, b, c = (scene_from_url(f"{url}seed={seed}") for seed in (7, 7, 8))
    times = (6.0, 21.5, 40.0)  # walking in, mid-scene (tamper under way), later
    for index, t in enumerate(times):
        (fa, ta), (fb, tb) = a.render(t, index), b.render(t, index)
        assert np.array_equal(fa, fb) and ta == tb
    assert any(not np.array_equal(a.render(t, i)[0], c.render(t, i)[0]) for i, t in enumerate(times))
    backwards = scene_from_url(f"{url}seed=7")  # asked in another order: still the same frames
    for index, t in reversed(list(enumerate(times))):
        assert np.array_equal(backwards.render(t, index)[0], b.render(t, index)[0])
    assert a.truth_events(200) == b.truth_events(200)
    assert a.bench_intervals(200) == b.bench_intervals(200)


# ---------------------------------------------------------------------------------------- people


def test_group_stands_together_for_dwell_and_truth_says_when() -> None:
    scene = scene_from_url("sim://group?seed=3&people=4&dwell=40")
    events = scene.truth_events()
    singles = [e for e in events if e.kind == "loitering"]
    (group,) = [e for e in events if e.kind == "group_loitering"]
    assert len(singles) == 4 and len(set(group.person_ids)) == 4
    assert group.start_s == pytest.approx(max(e.start_s for e in singles))
    assert group.end_s == pytest.approx(min(e.end_s or 0 for e in singles))
    assert group.end_s is not None and group.end_s - group.start_s == pytest.approx(40.0)
    assert [e.start_s for e in singles] == sorted(e.start_s for e in singles)  # they arrive one by one
    assert min(b.start_s - a.start_s for a, b in itertools.pairwise(singles)) > 1.0
    w, h = scene.size
    for t in np.linspace(group.start_s + 0.2, group.end_s - 0.2, 8):
        feet = [((p.box[0] + p.box[2]) / 2 / w, p.box[3] / h) for p in scene.people_at(float(t))]
        inside = [BENCH[0] <= x <= BENCH[2] and BENCH[1] <= y <= BENCH[3] for x, y in feet]
        assert len(feet) == 4 and all(inside), t
    assert scene.people_at(group.end_s + 30) == []


def test_occluded_loiterer_vanishes_from_people_at_but_never_leaves_the_bench() -> None:
    scene = scene_from_url("sim://occluded?seed=4&gaps=3&dwell=60")
    (stay,) = [i for i in scene.bench_intervals() if i.person_id == 1]
    assert stay.left_bench_at - stay.entered_bench_at == pytest.approx(60.0)
    (event,) = scene.truth_events()
    assert (event.kind, event.start_s, event.end_s) == (
        "loitering",
        stay.entered_bench_at,
        stay.left_bench_at,
    )
    starts = [v for k, v in event.marks if k == "hidden_from"]
    ends = [v for k, v in event.marks if k == "hidden_until"]
    assert len(starts) == len(ends) == 3

    def loiterer(t: float) -> tuple[int, ...] | None:
        return next((p.box for p in scene.people_at(t) if p.person_id == 1), None)

    for start, end in zip(starts, ends, strict=True):
        assert 2.0 <= end - start <= 6.0
        assert all(loiterer(float(t)) is None for t in np.linspace(start, end, 6))
        before, after = loiterer(start - 2.0), loiterer(end + 2.0)
        assert before is not None and after is not None
        assert abs((before[0] + before[2]) - (after[0] + after[2])) / 2 < 60  # shuffled a little at most
        assert start - 2.0 > stay.entered_bench_at and end + 2.0 < stay.left_bench_at


def test_hidden_person_is_really_hidden_in_the_picture() -> None:
    scene = scene_from_url("sim://occluded?seed=4&gaps=3&dwell=60")
    (event,) = scene.truth_events()
    start, end = event.mark("hidden_from"), event.mark("hidden_until")
    before, truth = scene.render(start - 2.0, 1)
    (box,) = [p.box for p in truth if p.person_id == 1]
    during, _ = scene.render((start + end) / 2, 1)
    x1, y1, x2, y2 = box
    person = before[y1:y2, x1:x2].astype(int)
    # what covers them is something else: most of the person's box changed completely
    assert (np.abs(during[y1:y2, x1:x2].astype(int) - person).max(axis=2) > 40).mean() > 0.6


# ---------------------------------------------------------------------------------------- tamper


def tamper(kind: str, extra: str = "") -> SimScene:
    return scene_from_url(f"sim://tamper?kind={kind}&seed=3&walkers=0&at=20&{extra}")


def test_cover_darkens_nearly_everything_and_hides_people() -> None:
    scene = tamper("cover", "duration=30")
    normal, covered = scene.render(19.0, 5)[0], scene.render(21.0, 5)[0]
    assert grey(covered).std() < 0.25 * grey(normal).std()
    assert (grey(covered) < 60).mean() > 0.85
    assert np.array_equal(scene.render(51.0, 5)[0], normal)  # taken away after duration (+0.5 s)
    with_people = scene_from_url("sim://tamper?kind=cover&seed=3&at=20")
    assert any(with_people.people_at(float(t)) for t in range(3, 20))
    assert not any(with_people.people_at(float(t)) for t in np.arange(20.5, 50, 0.5))


def test_defocus_blurs_the_whole_view() -> None:
    scene = tamper("defocus")
    normal, blurred = scene.render(19.0, 5)[0], scene.render(21.0, 5)[0]
    assert sharpness(blurred) < 0.3 * sharpness(normal)
    assert abs(grey(blurred).mean() - grey(normal).mean()) < 3  # blur, not darkness
    assert np.array_equal(scene.render(50.6, 5)[0], normal)


def test_spray_grows_over_two_seconds_to_cover_most_of_the_view() -> None:
    scene = tamper("spray")
    normal = scene.render(19.0, 5)[0].astype(int)

    def painted(t: float) -> float:
        return float((np.abs(scene.render(t, 5)[0].astype(int) - normal).max(axis=2) > 40).mean())

    early, half, full, later = painted(20.3), painted(21.0), painted(22.1), painted(40.0)
    assert early < half < full and 0.55 <= full <= 0.92 and later == pytest.approx(full, abs=0.01)
    (event,) = scene.truth_events()
    assert (event.kind, event.start_s, event.end_s, event.detail) == ("tamper", 20.0, 50.0, "spray")
    assert painted(50.0) == 0.0  # wiped off


def test_knock_shifts_and_turns_the_view_by_the_scripted_amount_and_stays() -> None:
    for seed in (1, 6):
        scene = scene_from_url(f"sim://tamper?kind=knock&seed={seed}&walkers=0")
        (event,) = scene.truth_events()
        assert event.end_s is None and event.start_s == 20.0
        dx, dy, angle = event.mark("dx_px"), event.mark("dy_px"), event.mark("angle_deg")
        w, h = scene.size
        assert 0.08 <= math.hypot(dx / w, dy / h) <= 0.15 + 1e-9 and 2.0 <= abs(angle) <= 6.0
        before, after = scene.render(19.0, 4)[0], scene.render(300.0, 9)[0]
        # Undo the scripted turn about the frame centre; what is left is a pure shift by R^-1 (dx, dy).
        turn = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
        steady: npt.NDArray[np.uint8] = cv2.warpAffine(after, turn, (w, h))  # type: ignore[assignment]
        window = cv2.createHanningWindow((w, h), cv2.CV_32F)
        (sx, sy), response = cv2.phaseCorrelate(grey(before), grey(steady), window)
        a = math.radians(angle)
        expected = (math.cos(a) * dx - math.sin(a) * dy, math.sin(a) * dx + math.cos(a) * dy)
        assert response > 0.3
        assert sx == pytest.approx(expected[0], abs=1.5) and sy == pytest.approx(expected[1], abs=1.5)
        black = (after < 8).all(axis=2).astype(np.float32)
        rim = 1.0 - cv2.copyMakeBorder(
            np.ones((h - 20, w - 20), np.float32), 10, 10, 10, 10, cv2.BORDER_CONSTANT
        )
        assert (
            black * rim
        ).sum() < 0.02 * rim.sum()  # the photo around the frame came into view, not black borders


def test_knocked_people_boxes_follow_the_view() -> None:
    scene = scene_from_url("sim://tamper?kind=knock&seed=1")
    (event,) = scene.truth_events()
    w, h = scene.size
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), event.mark("angle_deg"), 1.0)
    matrix[:, 2] += np.array((event.mark("dx_px"), event.mark("dy_px")))
    knocked_street = cv2.warpAffine(background(w, h), matrix, (w, h)).astype(int)
    old_view = cv2.warpAffine(np.full((h, w), 255, np.uint8), matrix, (w, h))  # what the old view covers
    seen: npt.NDArray[np.bool_] = cv2.erode(old_view, np.ones((9, 9), np.uint8)) > 0
    checked = 0
    for t in np.arange(25.0, 60.0, 1.0):
        frame, truth = scene.render(float(t), 3)
        inner = [
            p for p in truth if p.box[0] > 10 and p.box[2] < w - 10 and p.box[1] > 10 and p.box[3] < h - 10
        ]
        if (
            len(truth) != 1
            or not inner
            or not seen[inner[0].box[1] : inner[0].box[3], inner[0].box[0] : inner[0].box[2]].all()
        ):
            continue  # someone at the edge of what the camera saw before the knock: half in the dark
        moved = (np.abs(frame.astype(int) - knocked_street).max(axis=2) > 40) & seen
        x, y, bw, bh = cv2.boundingRect(moved.astype(np.uint8))
        assert iou((x, y, x + bw, y + bh), inner[0].box) > 0.75, t
        checked += 1
    assert checked >= 5


# ---------------------------------------------------------------------------------------- no incident


def test_lights_switch_at_the_scripted_times() -> None:
    scene = scene_from_url("sim://lights?seed=2&at=10&every=15&walkers=0")
    switches = scene.light_switches(until=100)
    assert [t for t, _ in switches] == [10.0, 25.0, 40.0, 55.0, 70.0, 85.0, 100.0]
    assert [m for _, m in switches][1::2] == ["normal"] * 3
    assert {m for _, m in switches[::2]} == {"dim", "ir"}  # both kinds happen in this script
    normal = scene.render(5.0, 1)[0]
    for at, mode in switches:
        before, after = scene.render(at - 0.05, 1)[0], scene.render(at + 0.05, 1)[0]
        if mode == "normal":
            assert np.array_equal(after, normal)
            continue
        assert np.array_equal(before, normal)  # abrupt: nothing changes until the switch
        ratio = grey(after).mean() / grey(before).mean()
        channel_means = after.reshape(-1, 3).mean(axis=0)
        if mode == "dim":
            assert 0.3 <= ratio <= 0.6
        else:  # IR night mode: grey, somewhat darker, noisier
            assert np.ptp(channel_means) < 1.5 and 0.5 <= ratio <= 0.9
            # two frames of the same instant differ by their sensor noise only (indices 1 and 2 draw
            # different noise): twice the noise added on top makes that difference ~2.2 times larger
            normal_noise = np.std(scene.render(5.0, 2)[0].astype(int) - normal.astype(int))
            ir_noise = np.std(scene.render(at + 0.05, 2)[0].astype(int) - after.astype(int))
            assert normal_noise > 2 and ir_noise > 1.8 * normal_noise
    assert scene.truth_events(120) == []


def test_trees_move_in_the_wind_all_the_time() -> None:
    scene = scene_from_url("sim://trees?seed=5&walkers=0")
    w, h = scene.size
    street = background(w, h).astype(int)
    x1, y1, x2, y2 = px(FOLIAGE, scene)
    frames = [scene.render(float(t), 2)[0].astype(int) for t in np.arange(0.0, 30.0, 1.5)]
    leaves = (np.abs(frames[0] - street).max(axis=2) > 40).mean()
    assert leaves >= 0.10  # at least 10 % of the frame is foliage
    for a, b in itertools.pairwise(frames):
        moved = np.abs(a - b).max(axis=2) > 40
        assert moved[y1:y2, x1:x2].mean() > 0.02  # the leaves always move
        outside = moved.copy()
        outside[: y2 + 10, x1 - 10 :] = False
        assert outside.mean() < 0.001  # and nothing else does
    assert scene.truth_events(120) == []


@pytest.mark.parametrize("url", ["sim://walkers?seed=2", "sim://lights?seed=2", "sim://trees?seed=2"])
def test_negative_scenes_have_nobody_staying_in_the_bench(url: str) -> None:
    scene = scene_from_url(url)
    visits = scene.bench_intervals(until=900)
    assert len(visits) >= 20
    assert max(v.left_bench_at - v.entered_bench_at for v in visits) < 3.0
    assert scene.truth_events(900) == []


# ---------------------------------------------------------------------------------------- area change


def test_graffiti_appears_while_the_person_stands_at_the_wall_and_stays() -> None:
    scene = scene_from_url("sim://graffiti?seed=1&dwell=20")
    (event,) = scene.truth_events()
    started, finished = event.mark("painting_started"), event.mark("painting_finished")
    assert event.kind == "area_change" and event.end_s is None
    assert (
        started < finished < event.mark("person_left_wall") == event.start_s < event.mark("person_left_frame")
    )
    wall = px(WALL, scene)
    for t in np.linspace(started, finished, 5):
        (person,) = scene.people_at(float(t))
        assert overlaps(person.box, wall)  # the painter is at the wall the whole time
    assert scene.people_at(event.start_s + 0.05) and not any(
        overlaps(p.box, wall) for p in scene.people_at(event.start_s + 0.05)
    )
    mask = scene.graffiti_mask()
    assert mask is not None and mask.shape == (scene.size[1], scene.size[0])
    ys, xs = np.nonzero(mask)
    assert event.region == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    x1, y1, x2, y2 = wall
    assert mask[y1:y2, x1:x2].sum() == mask.sum()  # all of it on the wall
    assert 0.05 <= mask.sum() / ((x2 - x1) * (y2 - y1)) <= 0.20
    before, after = scene.render(1.0, 7)[0].astype(int), scene.render(event.start_s + 60, 7)[0].astype(int)
    changed = (before != after).any(axis=2)
    assert (changed & ~mask).sum() == 0 and (mask & ~changed).sum() < 0.01 * mask.sum()
    halfway = (scene.render((started + finished) / 2, 7)[0].astype(int) != before).any(axis=2) & mask
    assert 0.15 < halfway.sum() / mask.sum() < 0.85  # painted progressively


def test_removed_bin_leaves_its_place_with_the_person() -> None:
    scene = scene_from_url("sim://removal?seed=2&dwell=6")
    (event,) = scene.truth_events()
    taken, gone = event.mark("taken"), event.mark("person_left_frame")
    assert event.kind == "object_removed" and taken < event.start_s < gone and event.end_s is None
    assert event.region is not None
    x1, y1, x2, y2 = event.region
    area = px(OBJECT_AREA, scene)
    assert area[0] <= x1 < x2 <= area[2] and area[1] <= y1 < y2 <= area[3]
    street = background(*scene.size)[y1:y2, x1:x2].astype(int)
    there = scene.render(1.0, 3)[0][y1:y2, x1:x2].astype(int)
    assert (np.abs(there - street).max(axis=2) > 40).mean() > 0.5
    person = scene.people_at(taken - 0.5)
    assert len(person) == 1 and overlaps(person[0].box, area)
    after = scene.render(event.start_s + 0.1, 3)[0][y1:y2, x1:x2].astype(int)
    assert np.abs(after - street).max() <= 20  # sensor noise only: the bin is gone
    assert not any(overlaps(p.box, area) for p in scene.people_at(event.start_s + 0.1))
    # carried: the bin's green is still in the frame next to the person while they walk off
    frame, (walker,) = scene.render(event.start_s + 0.3 * (gone - event.start_s), 3)
    b, g, r = (frame[..., c].astype(int) for c in range(3))
    green = (g > r + 25) & (g > b + 25)
    xs = np.nonzero(green)[1]
    assert xs.size > 500 and abs(xs.mean() - (walker.box[0] + walker.box[2]) / 2) < 120


# ---------------------------------------------------------------------------------------- detector, URLs


def test_hog_finds_the_painter_and_the_group() -> None:
    """The real HOG backend, scanning the changed region as its motion crops would (rate printed)."""
    hog = HogBackend()
    street = background(768, 576).astype(int)
    found = total = 0
    for url in ("sim://graffiti?seed=0", "sim://graffiti?seed=1", "sim://group?seed=0", "sim://group?seed=1"):
        scene = scene_from_url(url)
        event = next(e for e in scene.truth_events() if e.kind in ("area_change", "group_loitering"))
        a, b = (
            (event.mark("painting_started"), event.mark("painting_finished"))
            if event.kind == "area_change"
            else (event.start_s + 1, (event.end_s or 0) - 1)
        )
        for t in np.linspace(a, b, 4):
            frame, truth = scene.render(float(t), int(t * 5))
            x, y, w, h = cv2.boundingRect(
                (np.abs(frame.astype(int) - street).max(axis=2) > 40).astype(np.uint8)
            )
            boxes = hog.detect_batch([frame], [[(x, y, x + w, y + h)]])[0].boxes
            for person in truth:
                total += 1
                found += max((iou(person.box, tuple(box)) for box in boxes), default=0.0) > 0.4
    print(f"HOG finds the painter / the group members: {found}/{total} = {found / total:.2f}")
    assert total == 2 * 4 + 2 * 4 * 3 and found / total >= 0.75


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sim://group?people=9", "people must be 2..6"),
        ("sim://group?people=two", "bad sim parameter value"),
        ("sim://occluded?gaps=0", "gaps must be 1..4"),
        ("sim://occluded?gaps=4&dwell=30", "too short for 4 gaps"),
        ("sim://tamper?kind=paint", "kind must be one of cover, defocus, spray, knock"),
        ("sim://tamper?duration=0", "duration must be >= 1"),
        ("sim://tamper?at=-5", "at must be >= 0"),
        ("sim://lights?every=1", "every must be >= 2"),
        ("sim://trees?walkers=2", "walkers must be 0 or 1"),
        ("sim://graffiti?dwell=2", "dwell must be >= 4"),
        ("sim://group?kind=cover", r"\['kind'\] do not apply to scene 'group'"),
        ("sim://loiterer?people=3", r"\['people'\] do not apply to scene 'loiterer'"),
        ("sim://tamper?colour=red", "unknown sim parameter"),
    ],
)
def test_bad_new_scene_urls_name_the_problem(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        scene_from_url(url)


def test_defaults_give_every_scene_something_to_judge() -> None:
    kinds = {
        scene: [e.kind for e in scene_from_url(f"sim://{scene}?size=320x240").truth_events(400)]
        for scene in NEW_SCENES
    }
    assert sorted(kinds["group"]) == ["group_loitering"] + ["loitering"] * 3
    assert kinds["occluded"] == ["loitering"]
    assert kinds["tamper"] == ["tamper"] and kinds["graffiti"] == ["area_change"]
    assert kinds["removal"] == ["object_removed"]
    assert kinds["lights"] == [] and kinds["trees"] == []
    knock = scene_from_url("sim://tamper?kind=knock").truth_events()
    cover = scene_from_url("sim://tamper").truth_events()
    assert knock[0].end_s is None and cover[0].end_s == 50.0
