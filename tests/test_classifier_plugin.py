"""A trained classifier plugs in as another detector backend through the same registry (issue 5).

No trained graffiti or fight weights exist here, so the plug-in path is driven by
a backend written in this test: :class:`PaintBackend` is a real
:class:`DetectorBackend` that "recognises" the spray paints of the simulated
street (the saturated colours of ``ingest.sim_effects.PALETTE``, which the clean
street never shows) and reports them as ``graffiti``. It is registered like any
backend (one entry in ``BACKENDS``) and runs inside the production
:class:`DetectorPipeline` over rendered ``sim://`` scenes with HOG as the person
detector, the motion gate on, every frame JPEG-encoded as ingest does.

The YOLO side is exercised with a real custom-trained-style weights file: a yolo11n
network with two classes (``graffiti``, ``fight``) and random weights, saved the way
Ultralytics saves a trained model and listed with its SHA-256 in a manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import yaml
from pydantic import ValidationError

from cctv.config import Camera, CameraRegistry, ClassifierModelSettings, DetectorSettings, Settings
from cctv.contracts import DetectorInfo, IncidentEvent, IncidentMessage
from cctv.rule_config import ClassifierRuleConfig
from detector.backends import (
    BACKENDS,
    DetectorBackend,
    DetectorConfigError,
    HogBackend,
    YoloBackend,
    classifier_settings,
    make_backend,
    make_classifier,
)
from detector.classifier import MIN_SIGHTINGS, ClassifierRule, LabelledBox, Sightings
from detector.detections import RawBoxes, Region
from detector.events import FramePosition, RuleEvent
from detector.pipeline import DetectorPipeline, FrameInput
from ingest.frames import build_frame_message
from ingest.sim import scene_from_url
from ingest.sim_assets import asset_photo
from ingest.sim_effects import PALETTE

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
# The paints a viewer would call coloured: the palette without its black, white and greys.
PAINTS = tuple(c for c in PALETTE if max(c) - min(c) >= 100)
PAINT_TOLERANCE = 40  # per channel: the paint's grain is +-6 %, its mist blends into the wall
PAINT_MIN_AREA = 60  # pixels of one blob: a few stray pixels of a sprite are not a tag


# --------------------------------------------------------------------------- the test-defined backend


class PaintBackend(DetectorBackend):
    """Finds blobs of spray paint; one class, ``graffiti``. Confidence grows with the blob's size."""

    def __init__(self, confidence: float = 0.25) -> None:
        self.confidence = confidence
        self.labels = {0: "graffiti"}
        self.info = DetectorInfo(
            backend="paint-test", model_name="paint-colour-test", weights_sha256=None,
            thresholds={"confidence": confidence},
        )  # fmt: skip

    @classmethod
    def from_settings(cls, settings: DetectorSettings) -> PaintBackend:
        assert settings.detect_classes is None  # built as a classifier: every class of the model
        return cls(settings.confidence)

    def detect_batch(
        self, images: Sequence[np.ndarray], regions: Sequence[Sequence[Region] | None] | None = None
    ) -> list[RawBoxes]:
        return [self._detect(image) for image in images]

    def _detect(self, image: np.ndarray) -> RawBoxes:
        pixels = image.astype(np.int16)
        near = [
            np.abs(pixels - np.asarray(colour, np.int16)).max(axis=2) < PAINT_TOLERANCE for colour in PAINTS
        ]
        paint = np.logical_or.reduce(near).astype(np.uint8)
        paint = cv2.morphologyEx(paint, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, _, stats, _ = cv2.connectedComponentsWithStats(paint)
        boxes, confidences = [], []
        for x, y, w, h, area in stats[1:count]:
            confidence = min(0.99, 0.4 + area / 2000)
            if area >= PAINT_MIN_AREA and confidence >= self.confidence:
                boxes.append([x, y, x + w, y + h])
                confidences.append(confidence)
        if not boxes:
            return RawBoxes.empty()
        return RawBoxes(
            np.asarray(boxes, np.float32), np.asarray(confidences, np.float32), np.zeros(len(boxes), np.int32)
        )


@pytest.fixture
def paint_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "paint-test", PaintBackend)


def paint_settings(every_s: float = 1.0) -> DetectorSettings:
    return DetectorSettings(classifier=ClassifierModelSettings(backend="paint-test", every_s=every_s))


def camera(url: str, fps: float, rule: dict[str, Any] | None, camera_id: str = "cam-paint") -> Camera:
    raw: dict[str, Any] = {"id": camera_id, "name": "Simulated street", "source": url, "fps": fps}
    if rule is not None:
        raw["classifier"] = rule
    return Camera.model_validate(raw)


def drive(
    cam: Camera, seconds: float, settings: DetectorSettings
) -> tuple[list[IncidentMessage], DetectorPipeline]:
    """The production pipeline over a rendered scene, as detector.evaluation_sim drives it."""
    scene = scene_from_url(cam.source)
    pipeline = DetectorPipeline(CameraRegistry(cameras=(cam,)), HogBackend(), settings, pre_roll_s=5.0)
    incidents: list[IncidentMessage] = []
    for index in range(int(seconds * cam.fps)):
        t = index / cam.fps
        image, _ = scene.render(t, index)
        at = T0 + timedelta(seconds=t)
        message = build_frame_message(cam, image, stream_id="sim", seq=index, capture_ts=at)
        output = pipeline.process([FrameInput(message.model_copy(update={"ingest_ts": at}), 0, index)])
        assert not output.rejected
        incidents += output.incidents
    return incidents, pipeline


def lifecycle(incidents: list[IncidentMessage]) -> list[IncidentMessage]:
    """OPENED and CLOSED events, after checking that every event is one classifier incident's."""
    assert incidents and {(m.rule, m.incident_id) for m in incidents} == {
        ("classifier", incidents[0].incident_id)
    }
    return [m for m in incidents if m.event is not IncidentEvent.UPDATED]


def scene_s(at: datetime) -> float:
    return (at - T0).total_seconds()


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the area of ``a``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / ((a[2] - a[0]) * (a[3] - a[1]))


# --------------------------------------------------------------------------- pipeline on simulated scenes


def test_graffiti_opens_one_classifier_incident_on_the_tag(paint_registered: None) -> None:
    url = "sim://graffiti?seed=1&dwell=20"
    (truth,) = scene_from_url(url).truth_events()
    painting_started = dict(truth.marks)["painting_started"]
    rule = {"labels": ["graffiti"], "hold_s": 3, "clear_s": 5, "cooldown_s": 0, "max_incident_s": 15}
    incidents, pipeline = drive(camera(url, 5.0, rule), 45, paint_settings())

    opened, closed = lifecycle(incidents)
    assert (opened.event, closed.event) == (IncidentEvent.OPENED, IncidentEvent.CLOSED)
    # Paint first shows after painting starts; the alert needs hold_s of sightings after that.
    assert painting_started < scene_s(opened.started_at)
    assert scene_s(opened.threshold_at) - scene_s(opened.started_at) >= 3.0
    assert scene_s(opened.threshold_at) < truth.start_s  # while the painter is still at the wall
    assert opened.summary.startswith("graffiti seen by model paint-colour-test (confidence 0.")
    assert opened.detector.backend == "paint-test"  # the model that flagged it, not the person detector
    assert opened.change_region is not None and opened.change_region.label == "graffiti"
    region = opened.change_region
    assert truth.region is not None
    assert overlap((region.x1, region.y1, region.x2, region.y2), truth.region) > 0.8
    assert opened.boxes and {b.label for b in opened.boxes} == {"graffiti"}
    assert opened.snapshot_jpeg is not None and opened.frames.start_offset < opened.frames.end_offset
    # The tag stays: it is closed by max_incident_s and, still there, not alerted on again.
    assert "closed: open for 15s" in closed.summary
    assert scene_s(closed.event_at) == pytest.approx(scene_s(opened.threshold_at) + 15, abs=0.25)
    stats = pipeline.stats
    # every_s (1 s) bounds the classifier where the motion gate ran the person detector more often.
    assert 0 < stats.classifier_inferences <= 45 / 1.0 + 1 < stats.inferences
    assert "classifier_inferences=" in stats.line() and "classifier_paint-test_ms_per_frame" in stats.line()


def test_paint_wiped_off_closes_after_clear_s(paint_registered: None) -> None:
    # Paint sprayed on the lens at 20 s (it grows over 2 s) and wiped off at 45 s: the label disappears.
    url = "sim://tamper?seed=3&kind=spray&at=20&duration=25"
    rule = {"labels": ["graffiti"], "hold_s": 3, "clear_s": 5, "cooldown_s": 0}
    incidents, _ = drive(camera(url, 2.5, rule), 60, paint_settings())

    opened, closed = lifecycle(incidents)
    assert (opened.event, closed.event) == (IncidentEvent.OPENED, IncidentEvent.CLOSED)
    assert 20 <= scene_s(opened.started_at) < 23 and 23 <= scene_s(opened.threshold_at) <= 27
    assert closed.ended_at is not None and 45 <= scene_s(closed.ended_at) < 47  # first classified clean frame
    assert scene_s(closed.event_at) - scene_s(closed.ended_at) >= 5.0
    assert scene_s(closed.event_at) < 53
    assert closed.summary.endswith("closed: graffiti no longer seen")


def test_no_classifier_incident_on_people_walking_past(paint_registered: None) -> None:
    rule = {"labels": ["graffiti"], "hold_s": 2, "min_confidence": 0.0}
    incidents, pipeline = drive(camera("sim://walkers?seed=7", 2.5, rule), 40, paint_settings())
    assert incidents == []
    assert pipeline.stats.classifier_inferences >= 10  # it did look at the frames with motion


# --------------------------------------------------------------------------- configuration


def test_camera_rule_without_classifier_model_names_the_camera() -> None:
    cam = camera("sim://walkers", 5.0, {"labels": ["graffiti"]}, camera_id="cam-07")
    with pytest.raises(DetectorConfigError, match=r"cam-07: classifier rule but no classifier model"):
        DetectorPipeline(CameraRegistry(cameras=(cam,)), HogBackend(), DetectorSettings(), pre_roll_s=5.0)


def test_unknown_classifier_backend_lists_the_registry() -> None:
    cam = camera("sim://walkers", 5.0, {"labels": ["graffiti"]})
    settings = DetectorSettings(classifier=ClassifierModelSettings(backend="nope"))
    with pytest.raises(DetectorConfigError, match=r"unknown classifier backend 'nope'.*hog, yolo"):
        DetectorPipeline(CameraRegistry(cameras=(cam,)), HogBackend(), settings, pre_roll_s=5.0)


def test_label_the_model_does_not_output_is_refused(paint_registered: None) -> None:
    cams = (
        camera("sim://walkers", 5.0, {"labels": ["graffiti"]}, camera_id="cam-a"),
        camera("sim://walkers", 5.0, {"labels": ["graffiti", "fihgt"]}, camera_id="cam-b"),
    )
    with pytest.raises(DetectorConfigError, match=r"camera cam-b: fihgt\); its labels: graffiti"):
        DetectorPipeline(CameraRegistry(cameras=cams), HogBackend(), paint_settings(), pre_roll_s=5.0)


def test_no_classifier_is_built_without_a_camera_rule(paint_registered: None) -> None:
    cam = camera("sim://walkers", 5.0, None)
    pipeline = DetectorPipeline(
        CameraRegistry(cameras=(cam,)), HogBackend(), paint_settings(), pre_roll_s=5.0
    )
    assert pipeline.classifier is None and "classifier" not in pipeline.stats.line()


def test_a_classifier_is_refused_as_the_person_detector() -> None:
    cam = camera("sim://walkers", 5.0, None)
    with pytest.raises(DetectorConfigError, match="must output persons only"):
        DetectorPipeline(CameraRegistry(cameras=(cam,)), PaintBackend(), DetectorSettings(), pre_roll_s=5.0)


def test_classifier_config_is_strict_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="labels"):
        ClassifierRuleConfig(labels=())
    with pytest.raises(ValidationError, match="duplicate classifier labels: fight"):
        ClassifierRuleConfig(labels=("fight", "graffiti", "fight"))
    with pytest.raises(ValidationError, match="extra"):
        ClassifierModelSettings.model_validate({"backend": "yolo", "weights": "x.pt"})
    with pytest.raises(ValidationError, match="every_s"):
        ClassifierModelSettings(backend="yolo", every_s=0)
    monkeypatch.setenv("CCTV_DETECTOR__CLASSIFIER__BACKEND", "yolo")
    monkeypatch.setenv("CCTV_DETECTOR__CLASSIFIER__MODEL", "graffiti-yolo11n")
    monkeypatch.setenv("CCTV_DETECTOR__CLASSIFIER__EVERY_S", "2.5")
    classifier = Settings().detector.classifier
    assert classifier == ClassifierModelSettings(backend="yolo", model="graffiti-yolo11n", every_s=2.5)
    derived = classifier_settings(Settings().detector)
    assert (derived.backend, derived.model, derived.detect_classes) == ("yolo", "graffiti-yolo11n", None)
    assert Settings().detector.detect_classes == (0,)  # the person detector keeps persons only


# --------------------------------------------------------------------------- YOLO with custom weights


def custom_weights(models: Path, names: dict[int, str], manifest_names: dict[int, str]) -> Path:
    """A two-class yolo11n saved as Ultralytics saves a trained model, and a manifest entry with its hash.

    Random weights, one bias lowered so that class 1 wins NMS's best-class choice: the test can tell
    "every class" from "class 0 only"."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    net = DetectionModel("yolo11n.yaml", nc=len(names), verbose=False)
    net.names = names
    with torch.no_grad():
        head: Any = net.model[-1]  # type: ignore[index]
        for branch in head.cv3:
            branch[-1].bias[0] -= 4.0
    path = models / "graffiti-yolo11n.pt"
    torch.save({"model": net, "train_args": {}}, path)
    entry = {
        "name": "graffiti-yolo11n", "file": path.name, "classes": manifest_names, "source": "test",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "architecture": "yolo11n.yaml",
    }  # fmt: skip
    (models / "manifest.yaml").write_text(yaml.safe_dump({"models": [entry]}))
    return path


def bus_photo() -> np.ndarray:
    image = cv2.imread(str(asset_photo("bus.jpg")))
    assert image is not None
    return image


def yolo_classifier_settings(models: Path) -> DetectorSettings:
    model = ClassifierModelSettings(backend="yolo", model="graffiti-yolo11n", confidence=1e-3)
    return DetectorSettings(models_dir=models, device="cpu", classifier=model)


def test_yolo_classifier_with_custom_weights_returns_every_class(tmp_path: Path) -> None:
    names = {0: "graffiti", 1: "fight"}
    custom_weights(tmp_path, names, names)
    settings = yolo_classifier_settings(tmp_path)
    classifier = make_classifier(settings)
    assert isinstance(classifier, YoloBackend) and classifier.classes is None
    assert classifier.labels == names and classifier.info.model_name == "graffiti-yolo11n"
    frame = cv2.resize(bus_photo(), (640, 480))
    (everything,) = classifier.detect_batch([frame])
    assert set(everything.class_ids.tolist()) == {1}  # the class the lowered bias lets win
    classifier.tensor_preprocess = False
    (reference,) = classifier.detect_batch([frame])  # ultralytics' predict(): the same classes
    assert set(reference.class_ids.tolist()) == {1} and len(reference) == len(everything)
    person_path = make_backend(settings.model_copy(update={"backend": "yolo", "model": "graffiti-yolo11n"}))
    assert person_path.labels == {0: "graffiti"}  # class 0 only, and not a person: the pipeline refuses it
    (only_zero,) = person_path.detect_batch([frame])
    assert set(only_zero.class_ids.tolist()) <= {0}
    cam = camera("sim://walkers", 5.0, None)
    with pytest.raises(DetectorConfigError, match="must output persons only"):
        DetectorPipeline(CameraRegistry(cameras=(cam,)), person_path, settings, pre_roll_s=5.0)


def test_yolo_weights_with_other_class_names_than_the_manifest_are_refused(tmp_path: Path) -> None:
    custom_weights(tmp_path, {0: "fight", 1: "graffiti"}, {0: "graffiti", 1: "fight"})
    with pytest.raises(DetectorConfigError, match=r"class names differ.*0: 'fight' \(manifest: 'graffiti'\)"):
        make_classifier(yolo_classifier_settings(tmp_path))


def test_yolo_classifier_without_its_weights_says_which_file(tmp_path: Path) -> None:
    custom_weights(tmp_path, {0: "graffiti"}, {0: "graffiti"}).unlink()
    cam = camera("sim://walkers", 5.0, {"labels": ["graffiti"]})
    with pytest.raises(DetectorConfigError, match=r"graffiti-yolo11n.pt is missing"):
        DetectorPipeline(
            CameraRegistry(cameras=(cam,)), HogBackend(), yolo_classifier_settings(tmp_path), 5.0
        )


def test_pretrained_yolo_as_a_classifier_sees_the_bus() -> None:
    weights = MODELS_DIR / "yolo11n.pt"
    if not weights.is_file():
        pytest.skip(f"pretrained weights {weights} absent (no download here; see models/README.md)")
    model = ClassifierModelSettings(backend="yolo", model="yolo11n", confidence=0.4)
    classifier = make_classifier(DetectorSettings(models_dir=MODELS_DIR, device="cpu", classifier=model))
    assert classifier.labels[5] == "bus" and len(classifier.labels) == 80
    (found,) = classifier.detect_batch([bus_photo()])
    sightings = Sightings.from_raw(found, classifier.labels, 810, 1080)
    assert sightings.of("bus", 0.5) and sightings.of("person", 0.5)


# --------------------------------------------------------------------------- ClassifierRule, unit by unit

CONFIG = ClassifierRuleConfig(
    labels=("graffiti", "fight"), min_confidence=0.5, hold_s=3, clear_s=5, cooldown_s=20, max_incident_s=60
)
TAG: Region = (100, 50, 200, 120)


def seen(*labels: str, confidence: float = 0.8) -> Sightings:
    return Sightings(tuple(LabelledBox(label, confidence, TAG) for label in labels))


NOTHING = Sightings()


class Run:
    """Feeds one ClassifierRule frame by frame at 1 fps (stream positions = seconds)."""

    def __init__(self, config: ClassifierRuleConfig = CONFIG, update_interval_s: float = 10.0) -> None:
        self.rule = ClassifierRule("cam-1", config, "graffiti-yolo11n", 2.0, update_interval_s)
        self.t = 0
        self.events: list[tuple[int, RuleEvent]] = []

    def feed(self, *frames: Sightings | None) -> list[RuleEvent]:
        out = []
        for found in frames:
            events = self.rule.process(
                found, T0 + timedelta(seconds=self.t), FramePosition("s", self.t, 0, self.t)
            )
            out += events
            self.events += [(self.t, e) for e in events]
            self.t += 1
        return out

    def kinds(self) -> list[tuple[int, IncidentEvent, str]]:
        return [(t, e.event, e.summary.split(" ")[0]) for t, e in self.events]


def test_opens_after_hold_s_when_seen_in_two_thirds_of_the_classified_frames() -> None:
    run = Run()
    run.feed(seen("graffiti"), seen("graffiti"), NOTHING, seen("graffiti"))
    assert run.kinds() == [(3, IncidentEvent.OPENED, "graffiti")]  # 3 of the 4 frames of the window
    (_, opened) = run.events[0]
    assert opened.rule == "classifier" and opened.zone_id is None and opened.track_ids == ()
    assert opened.started_at == T0 and opened.threshold_at == T0 + timedelta(seconds=3)
    assert opened.change_region == TAG
    assert opened.summary == "graffiti seen by model graffiti-yolo11n (confidence 0.80) for 3s"
    assert opened.frames.start_offset == 0 and opened.frames.end_offset == 3  # pre-roll from the episode

    flicker = Run()  # seen in every other frame: half, not two thirds
    assert flicker.feed(*[seen("graffiti") if i % 2 == 0 else NOTHING for i in range(12)]) == []


def test_unclassified_frames_carry_the_last_classification() -> None:
    run = Run()
    run.feed(seen("graffiti"), seen("graffiti"), None, None)  # nothing moved: the tag is still there
    assert run.kinds() == [(3, IncidentEvent.OPENED, "graffiti")]
    lone = Run()  # one box, then no motion for a minute: never an alert on a single sighting
    assert MIN_SIGHTINGS == 2 and lone.feed(seen("graffiti"), *[None] * 60) == []


def test_below_min_confidence_and_unknown_labels_are_ignored() -> None:
    run = Run()
    assert run.feed(*[seen("graffiti", confidence=0.49)] * 10) == []
    assert run.feed(*[seen("skateboard", "person")] * 10) == []  # labels the camera does not alert on
    assert run.rule.open_labels == ()


def test_closes_after_clear_s_and_cools_down() -> None:
    run = Run()
    run.feed(*[seen("graffiti")] * 4)  # opens at 3
    run.feed(NOTHING, None, None, None, None, None)  # absent from 4: closed at 9
    assert run.kinds() == [(3, IncidentEvent.OPENED, "graffiti"), (9, IncidentEvent.CLOSED, "graffiti")]
    closed = run.events[-1][1]
    assert closed.ended_at == T0 + timedelta(seconds=4) and closed.summary.endswith(
        "closed: graffiti no longer seen"
    )
    run.feed(*[seen("graffiti")] * 20)  # 10..29: the cooldown (20 s from 9) ends at 29
    assert run.kinds()[-1] == (29, IncidentEvent.OPENED, "graffiti")


def test_updates_while_seen_and_one_incident_per_label() -> None:
    run = Run(update_interval_s=5)
    run.feed(*[seen("graffiti", "fight")] * 14)
    assert run.kinds() == [
        (3, IncidentEvent.OPENED, "graffiti"), (3, IncidentEvent.OPENED, "fight"),
        (8, IncidentEvent.UPDATED, "graffiti"), (8, IncidentEvent.UPDATED, "fight"),
        (13, IncidentEvent.UPDATED, "graffiti"), (13, IncidentEvent.UPDATED, "fight"),
    ]  # fmt: skip
    graffiti = {e.incident_id for _, e in run.events if e.summary.startswith("graffiti")}
    fight = {e.incident_id for _, e in run.events if e.summary.startswith("fight")}
    assert len(graffiti) == len(fight) == 1 and graffiti != fight
    closing = run.rule.close_all(T0 + timedelta(seconds=14), FramePosition("s", 14, 0, 14), "worker stopping")
    assert [e.event for e in closing] == [IncidentEvent.CLOSED] * 2
    assert all(e.summary.endswith("closed: worker stopping") for e in closing)


def test_max_incident_closes_and_the_label_waits_until_it_was_gone() -> None:
    config = CONFIG.model_copy(update={"max_incident_s": 10, "cooldown_s": 0})
    run = Run(config, update_interval_s=100)
    run.feed(*[seen("graffiti")] * 30)  # opens at 3, closed at 13; still seen: no second alert
    assert run.kinds() == [(3, IncidentEvent.OPENED, "graffiti"), (13, IncidentEvent.CLOSED, "graffiti")]
    assert run.events[-1][1].summary.endswith("closed: open for 10s")
    run.feed(*[NOTHING] * 5, seen("graffiti"))  # cleaned at 30, painted again at 35: not absent clear_s
    run.feed(*[seen("graffiti")] * 10)
    assert run.kinds()[-1] == (13, IncidentEvent.CLOSED, "graffiti")
    run.feed(*[NOTHING] * 6)  # absent 46..51: clear_s reached at 51
    run.feed(*[seen("graffiti")] * 4)  # painted again from 52
    assert run.kinds()[-1] == (55, IncidentEvent.OPENED, "graffiti")


def test_incident_ids_are_deterministic_and_time_going_back_restarts() -> None:
    frames = [seen("graffiti")] * 5 + [NOTHING] * 6 + [seen("fight")] * 4
    first, second = Run(), Run()
    first.feed(*frames)
    second.feed(*frames)
    assert [e.incident_id for _, e in first.events] == [e.incident_id for _, e in second.events]
    assert len({e.incident_id for _, e in first.events}) == 2
    run = Run()
    run.feed(*[seen("graffiti")] * 5)
    run.t = 0  # a restart replaying from the start
    assert [e.event for e in run.feed(seen("graffiti"))] == [IncidentEvent.CLOSED]


def test_sightings_from_a_backends_raw_boxes() -> None:
    raw = RawBoxes(
        np.asarray([[-5.2, 10.4, 50.5, 60.0], [700, 500, 900, 700], [800, 10, 900, 50]], np.float32),
        np.asarray([0.9, 1.2, 0.7], np.float32),
        np.asarray([1, 7, 0], np.int32),
    )
    found = Sightings.from_raw(raw, {0: "graffiti", 1: "fight"}, 768, 576)
    assert found.boxes == (
        LabelledBox("fight", float(np.float32(0.9)), (0, 10, 51, 60)),
        LabelledBox("7", 1.0, (700, 500, 768, 576)),  # an undeclared id keeps its number
    )  # the third box lies wholly outside the frame
    assert found.of("fight", 0.95) == () and len(found.of("fight", 0.5)) == 1
