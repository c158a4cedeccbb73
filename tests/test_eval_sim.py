"""Rule accuracy on simulated scenes: the matcher on hand-made cases, then floors on real pipeline runs.

The floors are what `cctv eval` measured (eval/results.md), so a regression in any rule, the tracker,
the motion gate or the scenes fails here. Negative scenes are shortened (60 s) to keep CI quick; the
results table runs them for 10 minutes each.
"""

from __future__ import annotations

import pytest

from detector.evaluation_sim import (
    Due,
    Scenario,
    ScenarioResult,
    due_events,
    eval_camera,
    negative_hours,
    run_scenario,
    scenarios,
    score,
)
from ingest.sim import SceneEvent


def test_matching_is_one_to_one_within_the_window_and_per_rule() -> None:
    due = [Due("loitering", 40.0, ""), Due("loitering", 100.0, ""), Due("tamper", 30.0, "cover")]
    alerts = [
        ("loitering", 38.0),  # 2 s early: inside the 3 s tolerance
        ("loitering", 39.0),  # a second alert for the same event: a false alert
        ("tamper", 55.0),  # 25 s late: outside the 20 s window, so a false alert and a miss
        ("area_change", 10.0),  # nothing due
    ]
    scores = score(alerts, due)
    assert (scores["loitering"].tp, scores["loitering"].fp, scores["loitering"].fn) == (1, 1, 1)
    assert scores["loitering"].delays == [-2.0]
    assert (scores["tamper"].tp, scores["tamper"].fp, scores["tamper"].fn) == (0, 1, 1)
    assert (scores["area_change"].fp, scores["area_change"].precision) == (1, 0.0)
    assert scores["object_removed"].precision is None and scores["object_removed"].recall is None


def test_due_times_follow_each_rules_threshold() -> None:
    camera = eval_camera("sim://empty", 5.0)
    events = [
        SceneEvent("loitering", 5.0, 80.0, None, (1,), ""),
        SceneEvent("loitering", 5.0, 20.0, None, (2,), ""),  # 15 s: under the 30 s dwell, never due
        SceneEvent("group_loitering", 10.0, 70.0, None, (1, 2), ""),  # 2 people: under the group size
        SceneEvent("group_loitering", 10.0, 70.0, None, (1, 2, 3), ""),
        SceneEvent("tamper", 20.0, None, None, (), "knock"),
        SceneEvent("tamper", 20.0, 25.0, None, (), "cover"),  # 5 s: under the 10 s hold
        SceneEvent("area_change", 50.0, None, None, (4,), ""),
        SceneEvent("object_removed", 200.0, None, None, (5,), ""),  # due after the scene ends
    ]
    due = due_events(events, camera, seconds=120.0)
    assert [(d.rule, d.due_s) for d in due] == [
        ("loitering", 35.0),
        ("group_loitering", 40.0),
        ("tamper", 30.0),
        ("area_change", 53.0),
    ]


# Measured with `cctv eval` (HOG, 5 fps): every positive scene's events found, none of the negatives
# alerted, except in the group scene: its leftmost person stands 4 px inside the bench area, and HOG's box
# for them is centred 9 px further left than the drawn figure, so their feet fall just outside the zone and
# neither their own alert nor the group's (which needs all three) fires. 2 of 3 is its measured floor.
EXPECTED: dict[str, tuple[dict[str, int], str | None]] = {
    "loiterer": ({"loitering": 1}, None),
    "short stay": ({}, None),
    "occluded": ({"loitering": 1}, None),
    "group": ({"loitering": 2}, None),
    "cover": ({"tamper": 1}, "lens covered"),
    "defocus": ({"tamper": 1}, "out of focus"),
    "spray": ({"tamper": 1}, "sprayed"),
    "knock": ({"tamper": 1}, "camera moved"),
    "graffiti": ({"area_change": 1}, None),
    "removal": ({"object_removed": 1}, None),
    "walkers": ({}, None),
    "lights": ({}, None),
    "trees": ({}, None),
}
NEGATIVE_S = 60.0


def _scenario(name: str) -> Scenario:
    scenario = next(s for s in scenarios(quick=True) if s.name == name)
    if name in ("walkers", "lights", "trees"):
        scenario = Scenario(scenario.name, scenario.url, NEGATIVE_S, scenario.what)
    return scenario


@pytest.fixture(scope="module")
def results() -> dict[str, ScenarioResult]:
    return {name: run_scenario(_scenario(name)) for name in EXPECTED}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_scene_alerts_meet_the_measured_floor(results: dict[str, ScenarioResult], name: str) -> None:
    result = results[name]
    found, kind = EXPECTED[name]
    for rule, true_positives in found.items():
        assert result.scores[rule].tp >= true_positives, (name, rule, result.alerts)
    false_alerts = sum(s.fp for s in result.scores.values())
    assert false_alerts == 0, (name, result.alerts, result.summaries)
    if kind is not None:
        assert any(kind in summary for summary in result.summaries), result.summaries


def test_rules_alert_soon_after_they_are_due(results: dict[str, ScenarioResult]) -> None:
    delays = {
        rule: [d for r in results.values() for d in r.scores[rule].delays]
        for rule in ("loitering", "tamper", "area_change", "object_removed")
    }
    # Measured: loitering 0.1-6.7 s (the occluded loiterer is re-found late), tamper 0.2-1.6 s,
    # area change 2.6 s and object removed 3.0 s after the settle time.
    assert max(delays["tamper"]) <= 3.0, delays
    assert max(delays["area_change"] + delays["object_removed"]) <= 6.0, delays
    assert max(delays["loitering"]) <= 12.0, delays


def test_the_motion_gate_saves_inference_where_little_moves(results: dict[str, ScenarioResult]) -> None:
    # Measured: 75-86 % of frames skipped where one person stands still, ~15 % with walkers always there.
    assert results["loiterer"].saved >= 0.6
    assert results["removal"].saved >= 0.6
    assert results["walkers"].saved < results["loiterer"].saved
    hours, false_alerts = negative_hours(list(results.values()))
    quiet = ("short stay", "walkers", "lights", "trees")  # scenes where no rule is due to fire
    assert hours == pytest.approx(sum(results[n].scenario.seconds for n in quiet) / 3600)
    assert false_alerts == 0
