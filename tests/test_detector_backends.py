"""Detector backends on real images: HOG on a real photo and on simulated frames with exact ground truth,
YOLO's code path without weights (its on-device letterbox/NMS path against ultralytics' predict()),
weights checks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from ultralytics.data.augment import LetterBox

from cctv.config import DetectorSettings
from detector.backends import BACKENDS, DetectorConfigError, HogBackend, YoloBackend, make_backend
from detector.backends.hog import PERSON_IN_WINDOW, crop_regions, hog_confidence, person_extent
from detector.backends.yolo import load_manifest
from detector.backends.yolo_tensor import Letterbox, TensorDetector
from detector.detections import RawBoxes
from ingest.sim import scene_from_url
from ingest.sim_assets import asset_photo

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
BUS_PEOPLE = [(48, 398, 245, 903), (221, 405, 345, 857), (670, 380, 810, 875)]  # hand-labelled in bus.jpg
# A person standing still in the bench area, ~190 px tall in 768x576 (HOG finds this figure reliably).
STANDING = "sim://loiterer?dwell=30&start=0&seed=3"
STANDING_T = 8.0


def iou(a: np.ndarray | tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    image = cv2.imread(str(asset_photo("bus.jpg")))
    assert image is not None
    return image


@pytest.fixture(scope="module")
def standing() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A simulated frame and the ground-truth box of the one person in it."""
    image, truth = scene_from_url(STANDING).render(STANDING_T, int(STANDING_T * 5))
    (person,) = truth
    return image, tuple(float(v) for v in person.box)  # type: ignore[return-value]


def test_registry_lists_backends_and_refuses_unknown_names() -> None:
    assert set(BACKENDS) == {"hog", "yolo"}
    with pytest.raises(DetectorConfigError, match=r"unknown detector backend 'ssd'.*hog, yolo"):
        make_backend(DetectorSettings(backend="ssd"))


def test_hog_finds_a_person_in_a_real_photo(bus: np.ndarray) -> None:
    backend = make_backend(DetectorSettings(backend="hog"))
    assert isinstance(backend, HogBackend)
    assert backend.info.weights_sha256 is None and backend.info.model_name == "opencv-hog-default-people"
    (found,) = backend.detect_batch([bus])
    assert len(found) >= 1
    assert ((found.confidences >= 0.4) & (found.confidences <= 1)).all()
    assert max(iou(box, person) for box in found.boxes for person in BUS_PEOPLE) > 0.4


def test_hog_on_motion_crops_reports_boxes_in_frame_coordinates(
    standing: tuple[np.ndarray, tuple[float, float, float, float]],
) -> None:
    frame, truth = standing
    x1, y1, x2, y2 = (round(v) for v in truth)
    assert 150 <= y2 - y1 <= 225 and (x1, y1) != (0, 0)  # a whole person, well inside the frame
    lower_body = ((x1 + x2) // 2 - 35, (y1 + y2) // 2, (x1 + x2) // 2 + 35, y2 - 1)
    backend = HogBackend(use_regions=True)
    (full,) = backend.detect_batch([frame], [None])
    (cropped,) = backend.detect_batch([frame], [[lower_body]])  # motion at the lower body only
    (elsewhere,) = backend.detect_batch([frame], [[(20, 20, 90, 90)]])
    (nothing,) = backend.detect_batch([frame], [[]])
    assert len(nothing) == 0 and len(elsewhere) == 0  # nothing scanned where nobody is
    assert max(iou(box, truth) for box in full.boxes) > 0.4
    assert max(iou(box, truth) for box in cropped.boxes) > 0.4


def small_person_frame(
    standing: tuple[np.ndarray, tuple[float, float, float, float]], height: int
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The simulated frame as a low-resolution camera sees it: the person ``height`` px tall; their box."""
    frame, truth = standing
    k = height / (truth[3] - truth[1])
    small = cv2.resize(frame, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    return small, (truth[0] * k, truth[1] * k, truth[2] * k, truth[3] * k)


@pytest.mark.parametrize("use_regions", [False, True])
def test_hog_upscale_finds_people_smaller_than_its_window(
    standing: tuple[np.ndarray, tuple[float, float, float, float]], use_regions: bool
) -> None:
    frame, truth = small_person_frame(standing, 75)  # HOG's window holds a ~96 px person: 75 is too small
    feet_x, feet_y = round((truth[0] + truth[2]) / 2), round(truth[3])
    regions = [[(feet_x - 15, feet_y - 43, feet_x + 15, feet_y)]] if use_regions else None  # the legs only
    (native,) = HogBackend(scale=1.0, use_regions=use_regions).detect_batch([frame], regions)
    assert (native.confidences < 0.6).all()  # nothing, or (in a crop) a weak hit with a too-tall window
    for scale in (1.5, 2.0):
        backend = make_backend(DetectorSettings(backend="hog", hog_scale=scale, hog_motion_crops=use_regions))
        assert backend.info.thresholds["scale"] == scale
        (found,) = backend.detect_batch([frame], regions)
        # The street photo's clutter can give HOG a weak window elsewhere in the full frame (measured:
        # one at 0.4-0.5 at scale 2), so "exactly one" is asserted on the person, and overall in crops.
        on_person = [i for i, box in enumerate(found.boxes) if iou(box, truth) > 0]
        assert len(on_person) == 1, (scale, found.boxes)
        if use_regions:
            assert len(found) == 1, (scale, found.boxes)
        best = on_person[0]
        assert found.confidences[best] > 0.8
        assert iou(found.boxes[best], truth) > 0.5  # the person's extent, not the detection window
        assert abs(found.boxes[best][3] - truth[3]) < 8  # the feet, which zone membership is tested on


def test_person_extent_is_the_training_geometry_inside_the_window() -> None:
    windows = np.asarray([[100, 50, 164, 178], [0, 0, 32, 64]], np.float32)
    people = person_extent(windows)
    left, top, right, bottom = PERSON_IN_WINDOW
    assert people[0] == pytest.approx([100 + 64 * left, 50 + 128 * top, 164 - 64 * right, 178 - 128 * bottom])
    assert people[1] == pytest.approx([32 * left, 64 * top, 32 - 32 * right, 64 - 64 * bottom])
    assert windows[0, 0] == 100  # input untouched


@pytest.mark.parametrize(
    ("scale", "ok"), [(0.5, True), (1.0, True), (2.0, True), (4.0, True), (4.5, False), (0, False)]
)
def test_hog_scale_setting_allows_upscaling_within_bounds(scale: float, ok: bool) -> None:
    if ok:
        assert DetectorSettings(hog_scale=scale).hog_scale == scale
    else:
        with pytest.raises(ValueError, match="hog_scale"):
            DetectorSettings(hog_scale=scale)


@pytest.mark.parametrize(("w", "h"), [(10, 10), (40, 300), (700, 700)])
def test_crops_fit_a_detector_window_and_stay_in_the_frame(w: int, h: int) -> None:
    crops = crop_regions([(5, 5, 5 + w, 5 + h), (600, 400, 610, 410)], 768, 576, (80, 144))
    for x1, y1, x2, y2 in crops:
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576
        assert x2 - x1 >= 80 and y2 - y1 >= 144


def test_hog_confidence_is_monotonic_in_zero_one() -> None:
    conf = hog_confidence(np.asarray([-5.0, 0.0, 0.5, 1.0, 5.0]))
    assert (np.diff(conf) > 0).all() and conf[0] > 0 and conf[-1] < 1
    assert conf[2] == pytest.approx(0.5)


def test_yolo_architecture_batch_returns_one_result_per_image(bus: np.ndarray) -> None:
    backend = YoloBackend.from_architecture("yolo11n.yaml", device="cpu")
    results = backend.detect_batch([bus, bus[:400, :600], np.zeros((576, 768, 3), np.uint8)])
    assert len(results) == 3
    for raw in results:
        assert raw.boxes.shape[1:] == (4,) and len(raw.confidences) == len(raw.class_ids) == len(raw)
        assert (raw.class_ids == 0).all()
    assert backend.info.backend == "yolo" and backend.info.weights_sha256 is None
    assert os.environ.get("YOLO_OFFLINE") == "1"  # set by the detector package: no network probes


def test_manifest_lists_published_hashes() -> None:
    manifest = load_manifest(MODELS_DIR)
    names = {entry.name: entry for entry in manifest.models}
    assert {"yolo11n", "yolov8n"} <= set(names)
    assert all(entry.sha256 is None or len(entry.sha256) == 64 for entry in manifest.models)


def copy_manifest(tmp_path: Path, sha: str | None) -> Path:
    text = (MODELS_DIR / "manifest.yaml").read_text()
    entry = load_manifest(MODELS_DIR).entry("yolo11n")
    assert entry.sha256 is not None
    (tmp_path / "manifest.yaml").write_text(text.replace(f'"{entry.sha256}"', f'"{sha}"' if sha else "null"))
    return tmp_path


def test_missing_weights_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DetectorConfigError, match=r"yolo11n.pt is missing.*models/README.md"):
        make_backend(
            DetectorSettings(backend="yolo", model="yolo11n", models_dir=copy_manifest(tmp_path, None))
        )


def test_weights_sha_mismatch_is_refused(tmp_path: Path) -> None:
    models = copy_manifest(tmp_path, "a" * 64)
    (models / "yolo11n.pt").write_bytes(b"not the published weights")
    actual = hashlib.sha256(b"not the published weights").hexdigest()
    with pytest.raises(DetectorConfigError, match=f"sha256 {actual}, the manifest expects a{{64}}"):
        make_backend(DetectorSettings(backend="yolo", model="yolo11n", models_dir=models))


def test_null_hash_needs_explicit_permission(tmp_path: Path) -> None:
    models = copy_manifest(tmp_path, None)
    (models / "yolo11n.pt").write_bytes(b"whatever")
    with pytest.raises(DetectorConfigError, match="refusing unverified weights"):
        make_backend(DetectorSettings(backend="yolo", model="yolo11n", models_dir=models))


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(DetectorConfigError, match=r"'yolo99' is not in the models manifest.*yolo11n"):
        make_backend(DetectorSettings(backend="yolo", model="yolo99", models_dir=MODELS_DIR))


def test_pretrained_yolo_finds_the_bus_passengers(bus: np.ndarray) -> None:
    weights = MODELS_DIR / "yolo11n.pt"
    if not weights.is_file():
        pytest.skip(f"pretrained weights {weights} absent (no download here; see models/README.md)")
    backend = make_backend(
        DetectorSettings(backend="yolo", model="yolo11n", models_dir=MODELS_DIR, device="cpu")
    )
    (found,) = backend.detect_batch([bus])
    matched = [p for p in BUS_PEOPLE if max((iou(b, p) for b in found.boxes), default=0) > 0.5]
    assert len(matched) == 3
    assert backend.info.weights_sha256 == load_manifest(MODELS_DIR).entry("yolo11n").sha256


# --- YOLO on-device path (yolo_tensor) against ultralytics' own predict() -------------------------------


def scene(width: int, height: int) -> np.ndarray:
    """The simulated street scene at a camera resolution (content everywhere, unlike a flat test card)."""
    frame, _ = scene_from_url(STANDING).render(STANDING_T, int(STANDING_T * 5))
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def matched(reference: RawBoxes, candidate: RawBoxes, min_iou: float = 0.9) -> int:
    """How many reference boxes have a candidate box of IoU > min_iou (each candidate used once)."""
    free = list(range(len(candidate)))
    count = 0
    for box in reference.boxes:
        best = max(free, key=lambda j: iou(candidate.boxes[j], tuple(box)), default=None)
        if best is not None and iou(candidate.boxes[best], tuple(box)) > min_iou:
            free.remove(best)
            count += 1
    return count


def both_paths(backend: YoloBackend, frames: list[np.ndarray]) -> tuple[list[RawBoxes], list[RawBoxes]]:
    """(predict() per frame shape, tensor path on the whole batch). predict() pads a batch of mixed shapes
    to a full square, the tensor path letterboxes each shape alone, so the reference runs per shape."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, frame in enumerate(frames):
        groups.setdefault(frame.shape, []).append(i)
    reference: list[RawBoxes] = [RawBoxes.empty()] * len(frames)
    for indices in groups.values():
        for i, raw in zip(indices, backend.predict_batch([frames[i] for i in indices]), strict=True):
            reference[i] = raw
    assert backend.tensor_preprocess
    return reference, backend.detect_batch(frames)


@pytest.fixture(scope="module")
def random_yolo() -> YoloBackend:
    torch.manual_seed(0)
    return YoloBackend.from_architecture("yolo11n.yaml", device="cpu", confidence=1e-4)


@pytest.fixture(scope="module")
def content_yolo() -> YoloBackend:
    """A random yolo11n whose boxes depend on the picture.

    Freshly initialised, the network's activations vanish layer by layer: its output depends on the input
    *shape* only (anchor-grid boxes, all of score sigmoid(bias)), so it cannot tell a colour swap or a
    shifted letterbox from the right input. Setting every BatchNorm's statistics from one real frame (a
    data-dependent init) keeps activations at unit scale; lowering the other classes' bias lets persons win
    the best-class choice NMS makes. The result is chaotic: a one-level change at one pixel moves its boxes,
    so it is compared only on frames that need no resize (see the letterbox test for interpolation)."""
    torch.manual_seed(0)
    backend = YoloBackend.from_architecture("yolo11n.yaml", device="cpu", confidence=0.1)
    net = backend._model.model
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # running stats := this batch's
    net.train()
    with torch.no_grad():
        rgb = scene(640, 480)[..., ::-1].copy()
        net(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)
        for branch in net.model[-1].cv3:
            branch[-1].bias[1:] -= 10.0
    net.eval()
    return backend


@pytest.mark.parametrize(
    ("height", "width"), [(576, 768), (1080, 810), (333, 501), (577, 769), (1, 3000), (3000, 1), (640, 640)]
)
def test_letterbox_geometry_is_ultralytics(height: int, width: int) -> None:
    ours = Letterbox.fit((height, width), (640, 640), 32)
    theirs = LetterBox((640, 640), auto=True, stride=32).get_params({"img": np.zeros((height, width, 3))})
    assert ours.resized == theirs["new_unpad"][::-1]
    assert (ours.top, ours.left) == (theirs["top"], theirs["left"])
    assert ours.padded == (
        ours.resized[0] + theirs["top"] + theirs["bottom"],
        ours.resized[1] + theirs["left"] + theirs["right"],
    )
    assert ours.padded[0] % 32 == 0 and ours.padded[1] % 32 == 0


@pytest.mark.parametrize("integer_resize", [True, False], ids=["uint8-resize-cpu", "float-resize-cuda"])
def test_tensor_input_equals_ultralytics_preprocess(
    random_yolo: YoloBackend, bus: np.ndarray, integer_resize: bool
) -> None:
    odd = np.ascontiguousarray(bus[101:434, 37:538])  # 333x501: odd sides, upscaled, padded top and bottom
    frames = [scene(768, 576), bus, scene(768, 576)[::-1], odd, scene(640, 360), bus[::-1]]
    random_yolo.predict_batch(frames[:1])  # builds ultralytics' predictor, whose preprocess is the reference
    predictor = random_yolo._model.predictor
    detector = TensorDetector(random_yolo.tensor_detector().net, torch.device("cpu"), False, 640)
    detector.integer_resize = integer_resize  # the GPU's float resize, exercised here on the CPU
    groups = detector.preprocess(frames)
    assert [g.indices for g in groups] == [(0, 2), (1, 5), (3,), (4,)]
    for group in groups:
        theirs = predictor.preprocess([frames[i] for i in group.indices])
        assert group.tensor.dtype == theirs.dtype == torch.float32
        assert group.tensor.shape == theirs.shape
        diff = (group.tensor - theirs).abs() * 255
        if group.letterbox.resized == group.letterbox.source:  # 640x360: no resize, only the padding
            assert diff.max() == 0
        else:  # cv2 and torch round differently: some pixels one level apart (measured mean 0.1-0.3)
            assert float(diff.mean()) < 0.5 and float(diff.max()) <= 1.0 + 1e-4
    assert groups[3].letterbox.top == 12 and groups[3].tensor.shape[2:] == (384, 640)
    assert torch.all(groups[3].tensor[:, :, :12] == 114 / 255)  # the padding level


def synthetic_output(candidates: list[tuple[float, float, float, float, int, float]]) -> torch.Tensor:
    """A network output (1, 84, anchors): (cx, cy, w, h) in network-input pixels and 80 class scores."""
    out = torch.zeros(1, 84, len(candidates))
    for j, (cx, cy, w, h, cls, score) in enumerate(candidates):
        out[0, :4, j] = torch.tensor([cx, cy, w, h])
        out[0, 4 + cls, j] = score
    return out


def test_postprocess_maps_network_boxes_back_to_the_frame(random_yolo: YoloBackend) -> None:
    letterbox = Letterbox.fit((500, 700), (640, 640), 32)  # resized 457x640 in a 480x640 input, 11 px on top
    assert (letterbox.resized, letterbox.padded) == ((457, 640), (480, 640))
    assert (letterbox.top, letterbox.left) == (11, 0)
    gy, gx = 457 / 500, 640 / 700
    output = synthetic_output(
        [
            (150, 211, 100, 200, 0, 0.9),  # a person: xyxy (100, 111, 200, 311)
            (152, 213, 100, 200, 0, 0.8),  # the same person again (IoU 0.94): NMS drops it
            (400, 100, 50, 50, 2, 0.95),  # a car: not a person
            (630, 439.5, 60, 79, 0, 0.7),  # a person cut by the right edge and into the bottom padding
            (300, 300, 40, 80, 0, 0.05),  # below the confidence
        ]
    )
    (found,) = random_yolo.tensor_detector().postprocess(output, letterbox, 0.4)
    assert found.boxes.dtype == found.confidences.dtype == np.float32 and found.class_ids.dtype == np.int32
    np.testing.assert_allclose(found.confidences, [0.9, 0.7], rtol=1e-6)
    assert (found.class_ids == 0).all()
    expected = [[100 / gx, 100 / gy, 200 / gx, 300 / gy], [600 / gx, 389 / gy, 700, 500]]  # clipped: 700x500
    np.testing.assert_allclose(found.boxes, expected, rtol=1e-5)


def test_postprocess_splits_a_batch_per_frame(random_yolo: YoloBackend) -> None:
    one = synthetic_output([(320, 240, 64, 128, 0, 0.9), (100, 100, 20, 40, 0, 0.6)])
    output = torch.cat([one, torch.zeros_like(one), one.flip(2)])
    letterbox = Letterbox.fit((480, 640), (640, 640), 32)  # no resize, no padding: identity
    first, empty, last = random_yolo.tensor_detector().postprocess(output, letterbox, 0.5)
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)
    for found in (first, last):
        np.testing.assert_allclose(found.boxes, [[288, 176, 352, 304], [90, 80, 110, 120]])
        np.testing.assert_allclose(found.confidences, [0.9, 0.6], rtol=1e-6)


def test_both_paths_agree_where_boxes_depend_on_the_picture(
    content_yolo: YoloBackend, bus: np.ndarray
) -> None:
    # Long side 640: no resize, so both paths feed the network bit-identical input (padded differently per
    # shape). Mixed shapes in one batch, a flipped copy, a portrait and a landscape frame.
    landscape = np.ascontiguousarray(bus[300:660, 100:740])
    portrait = np.ascontiguousarray(bus[200:840, 0:400])
    frames = [landscape, portrait, np.ascontiguousarray(landscape[:, ::-1]), scene(640, 480)]
    reference, tensor = both_paths(content_yolo, frames)
    assert sum(len(r) for r in reference) >= 10  # the comparison has something to compare
    for ref, got in zip(reference, tensor, strict=True):
        assert len(got) == len(ref) and matched(ref, got) == len(ref)
        np.testing.assert_allclose(np.sort(got.confidences), np.sort(ref.confidences), atol=1e-4)
    assert matched(reference[0], reference[2]) < len(reference[0])  # same shape, other picture: other boxes


def test_both_paths_agree_on_resized_frames(random_yolo: YoloBackend, bus: np.ndarray) -> None:
    # The stock random network is blind to content but not to geometry: boxes of every shape, resized up and
    # down, must come back to the same frame pixels on both paths.
    frames = [bus, scene(768, 576), np.ascontiguousarray(bus[101:434, 37:538]), scene(768, 576)[::-1]]
    reference, tensor = both_paths(random_yolo, frames)
    for ref, got, frame in zip(reference, tensor, frames, strict=True):
        assert len(ref) > 10 and len(got) == len(ref) and matched(ref, got, 0.99) == len(ref)
        assert (got.boxes[:, 2] <= frame.shape[1]).all() and (got.boxes[:, 3] <= frame.shape[0]).all()


def test_tensor_path_handles_empty_and_single_batches(random_yolo: YoloBackend, bus: np.ndarray) -> None:
    assert random_yolo.detect_batch([]) == [] and random_yolo.predict_batch([]) == []
    (found,) = random_yolo.detect_batch([bus])
    (reference,) = random_yolo.predict_batch([bus])
    assert found.boxes.shape == (len(found), 4) and found.boxes.dtype == np.float32
    assert found.class_ids.dtype == np.int32 and len(found) == len(reference) > 0
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        random_yolo.detect_batch([bus.astype(np.float32)])


def test_tensor_path_is_a_setting() -> None:
    assert DetectorSettings().tensor_preprocess is True
    assert YoloBackend.from_architecture(tensor_preprocess=False).tensor_preprocess is False
