"""Real-photo material for the simulated cameras: person cut-outs and a clean street background.

Why real photos: the detectors downstream (OpenCV HOG, YOLO) are trained on
real pedestrians; flat synthetic shapes would test nothing. ultralytics ships
``bus.jpg`` (810x1080) with two fully visible standing pedestrians; their
silhouettes below were measured by hand on that photo and refined with
``cv2.grabCut``. The background is the lower part of the same photo with every
person replaced by the street a few metres along (a shifted copy of the same
rows, feathered), because inpainting person-sized holes leaves smears that look
like ghosts to a detector.

The props of the newer scenes (a wheelie bin, a van whose side is cut from the
bus) and the compositing helpers (draw order, how much of a person is hidden)
are here too.

Everything is computed once per process (about 1 s) and cached.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

# Hand-measured outlines (bus.jpg pixel coordinates) of the two full-body pedestrians.
_PERSON_OUTLINES: tuple[tuple[tuple[int, int], ...], ...] = (
    (  # man in the beige coat
        (127, 400), (150, 403), (160, 420), (160, 440), (175, 478), (195, 535), (202, 572), (196, 595),
        (185, 610), (182, 650), (184, 693), (168, 697), (166, 735), (185, 828), (206, 856), (243, 885),
        (240, 896), (177, 897), (172, 862), (134, 766), (118, 712), (99, 765), (90, 846), (104, 872),
        (106, 893), (65, 897), (55, 872), (68, 846), (76, 697), (60, 692), (59, 650), (62, 572),
        (68, 497), (99, 454), (103, 420), (110, 405),
    ),
    (  # man in the black coat
        (279, 406), (297, 410), (305, 420), (308, 452), (300, 472), (319, 489), (338, 520), (342, 570),
        (338, 640), (338, 690), (334, 712), (318, 742), (298, 790), (298, 818), (285, 822), (292, 835),
        (293, 856), (256, 857), (253, 826), (257, 811), (256, 755), (247, 711), (240, 700), (239, 640),
        (238, 560), (230, 539), (236, 520), (251, 489), (275, 476), (266, 452), (264, 420),
    ),
)  # fmt: skip
# Rough outlines of the two people cut off by the photo's edges: only removed from the background.
_EDGE_PEOPLE: tuple[tuple[tuple[int, int], ...], ...] = (
    ((725, 395), (810, 395), (810, 760), (790, 800), (748, 885), (664, 885), (664, 820), (715, 780),
     (722, 700), (715, 560)),
    ((0, 540), (60, 560), (70, 700), (80, 800), (60, 830), (35, 880), (0, 880)),
)  # fmt: skip
# Background = rows 472..1080 (the street below the bus windows), 4:3 like a 768x576 camera.
_BACKGROUND_ROWS = (472, 1080)
# The kerb and the bus sill slope upwards to the right by this many pixels per pixel; a copy
# taken dx pixels along the street is shifted by slope*dx so the lines continue.
_STREET_SLOPE = -0.15


@dataclass(frozen=True)
class Sprite:
    """A person cut-out cropped to its silhouette: the box of the sprite is the person's box."""

    bgr: npt.NDArray[np.float32]
    alpha: npt.NDArray[np.float32]  # (h, w, 1) in 0..1


@dataclass(frozen=True)
class SimAssets:
    background: npt.NDArray[np.uint8]  # full-resolution clean street
    people: tuple[Sprite, ...]
    photo: npt.NDArray[np.uint8] | None = None  # the whole photo without people (what a knocked camera sees)


def asset_photo(name: str) -> Path:
    # find_spec, not import: importing ultralytics pulls torch (seconds) for a file path.
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("ultralytics is not installed; the simulated cameras need its photos")
    path = Path(spec.origin).parent / "assets" / name
    if not path.exists():
        raise FileNotFoundError(f"ultralytics asset {path} is missing; the simulated cameras need it")
    return path


def _read(path: Path) -> npt.NDArray[np.uint8]:
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot decode {path}")
    return image  # type: ignore[return-value]


def _cut_out(photo: np.ndarray, outline: tuple[tuple[int, int], ...]) -> Sprite:
    """Refine a hand-drawn outline with grabCut in a thin band around it; keep the largest blob."""
    points = np.array(outline, np.int32)
    x, y, w, h = cv2.boundingRect(points)
    margin = 20
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(photo.shape[1], x + w + margin), min(photo.shape[0], y + h + margin)
    crop = np.ascontiguousarray(photo[y0:y1, x0:x1])
    inside = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(inside, [points - (x0, y0)], 255)
    band = np.ones((9, 9), np.uint8)
    labels = np.full(crop.shape[:2], cv2.GC_BGD, np.uint8)
    labels[cv2.dilate(inside, band) > 0] = cv2.GC_PR_BGD
    labels[inside > 0] = cv2.GC_PR_FGD
    labels[cv2.erode(inside, band) > 0] = cv2.GC_FGD
    cv2.setRNGSeed(0)  # grabCut's GMM init uses OpenCV's RNG: keep the cut-out identical run to run
    bg_model, fg_model = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(crop, labels, None, bg_model, fg_model, 4, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
    mask = np.where((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    count, components, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count > 1:
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        mask = np.where(components == largest, 255, 0).astype(np.uint8)
    bx, by, bw, bh = cv2.boundingRect(mask)
    soft = cv2.GaussianBlur(mask, (3, 3), 0)[by : by + bh, bx : bx + bw]
    return Sprite(
        bgr=crop[by : by + bh, bx : bx + bw].astype(np.float32),
        alpha=(soft.astype(np.float32) / 255.0)[..., None],
    )


def _photo_without_people(photo: np.ndarray) -> npt.NDArray[np.uint8]:
    out = photo.astype(np.float32)
    fills = ((_PERSON_OUTLINES, 330), ((_EDGE_PEOPLE[1],), 350), ((_EDGE_PEOPLE[0],), -300))
    for outlines, dx in fills:
        mask: np.ndarray = np.zeros(photo.shape[:2], np.uint8)
        for outline in outlines:
            cv2.fillPoly(mask, [np.array(outline, np.int32)], 255)
        mask = cv2.dilate(mask, np.ones((21, 21), np.uint8))
        weight = (cv2.GaussianBlur(mask, (0, 0), 5).astype(np.float32) / 255.0)[..., None]
        # pixel (x, y) takes the photo at (x + dx, y + slope*dx): the same street further along.
        shift = np.array([[1, 0, -dx], [0, 1, -_STREET_SLOPE * dx]], dtype=np.float32)
        along = cv2.warpAffine(photo, shift, (photo.shape[1], photo.shape[0]), borderMode=cv2.BORDER_REFLECT)
        out = out * (1 - weight) + along.astype(np.float32) * weight
    return np.clip(out, 0, 255).astype(np.uint8)


_lock = threading.Lock()


@functools.cache
def _build() -> SimAssets:
    photo = _read(asset_photo("bus.jpg"))
    clean = _photo_without_people(photo)
    top, bottom = _BACKGROUND_ROWS
    return SimAssets(
        background=np.ascontiguousarray(clean[top:bottom]),
        people=tuple(_cut_out(photo, outline) for outline in _PERSON_OUTLINES),
        photo=clean,
    )


def load_assets() -> SimAssets:
    """The cached assets; the lock makes concurrent first calls (one per camera thread) build once."""
    with _lock:
        return _build()


@functools.lru_cache(maxsize=256)
def scaled_sprite(index: int, height: int, mirrored: bool) -> Sprite:
    """Sprite ``index`` resized to ``height`` pixels (cached: walkers keep one size while crossing)."""
    sprite = load_assets().people[index]
    h, w = sprite.alpha.shape[:2]
    width = max(1, round(w * height / h))
    bgr = cv2.resize(sprite.bgr, (width, height), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(sprite.alpha, (width, height), interpolation=cv2.INTER_AREA)[..., None]
    if mirrored:
        bgr, alpha = bgr[:, ::-1], alpha[:, ::-1]
    return Sprite(bgr=np.ascontiguousarray(bgr), alpha=np.ascontiguousarray(alpha))


@functools.lru_cache(maxsize=8)
def background(width: int, height: int) -> npt.NDArray[np.uint8]:
    """The clean street resized to the camera size (other aspect ratios are stretched)."""
    return cv2.resize(load_assets().background, (width, height), interpolation=cv2.INTER_AREA)  # type: ignore[return-value]


def clean_photo() -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """The whole photo without people, and the rows of it that :func:`background` shows."""
    photo = load_assets().photo
    assert photo is not None  # always built by _build
    return photo, _BACKGROUND_ROWS


# Props of the newer scenes (drawn, not cut out: the photo has no bin, and no van in front of the bus).


def bin_sprite(height: int, seed: int = 0) -> Sprite:
    """A green wheelie bin with lid, wheels and a contact shadow, lit from the left."""
    h = height
    w = round(0.62 * h)
    pad = round(0.25 * w)  # room for the shadow on the left
    bgr = np.zeros((h, w + pad, 3), np.float32)
    alpha = np.zeros((h, w + pad), np.float32)
    cv2.ellipse(
        alpha, (pad + w // 2 - pad // 2, h - 1 - h // 30), (w // 2 + pad // 2, h // 22), 0, 0, 360, 0.45, -1
    )
    body = np.array(
        [
            [pad + 0.03 * w, 0.12 * h],
            [pad + 0.97 * w, 0.12 * h],
            [pad + 0.9 * w, 0.93 * h],
            [pad + 0.1 * w, 0.93 * h],
        ]
    )
    solid = np.zeros_like(alpha)
    cv2.fillPoly(solid, [body.round().astype(np.int32)], 1.0)
    cv2.rectangle(solid, (pad, round(0.04 * h)), (pad + w - 1, round(0.13 * h)), 1.0, -1)  # lid
    for x in (0.16, 0.84):
        cv2.circle(solid, (pad + round(x * w), round(0.93 * h)), max(2, round(0.06 * h)), 1.0, -1)
    xs = (np.arange(w + pad, dtype=np.float32) - pad) / w
    light = 0.6 + 0.55 * np.clip(np.sin(np.pi * np.clip(xs, 0, 1)), 0, 1) ** 0.6 * (1.1 - 0.35 * xs)
    green = np.array((40, 95, 38), np.float32)
    bgr[:] = green * light[None, :, None]
    bgr[round(0.04 * h) : round(0.13 * h)] *= 1.15  # the lid catches more light
    for rib in (0.35, 0.65):
        bgr[
            round(0.15 * h) : round(0.9 * h), pad + round(rib * w) : pad + round(rib * w) + max(1, w // 30)
        ] *= 0.6
    wheels = np.zeros_like(alpha)
    for x in (0.16, 0.84):
        cv2.circle(wheels, (pad + round(x * w), round(0.93 * h)), max(2, round(0.06 * h)), 1.0, -1)
    bgr[wheels > 0] = (25, 25, 25)
    grime = np.random.default_rng(seed).normal(1.0, 0.05, (max(2, h // 4), max(2, (w + pad) // 4)))
    bgr *= cv2.resize(grime.astype(np.float32), (w + pad, h), interpolation=cv2.INTER_CUBIC)[..., None]
    alpha = np.maximum(alpha, cv2.GaussianBlur(solid, (3, 3), 0))
    return Sprite(bgr=np.clip(bgr, 0, 255).astype(np.float32), alpha=alpha[..., None])


def van_sprite(background: npt.NDArray[np.uint8], width: int, height: int) -> Sprite:
    """A van close to the camera, its side cut from the bus in the photo, with wheels and a shadow."""
    fh, fw = background.shape[:2]
    side = background[round(0.02 * fh) : round(0.32 * fh), round(0.43 * fw) : round(0.88 * fw)]
    body_h = round(0.8 * height)
    bgr = np.zeros((height, width, 3), np.float32)
    bgr[:body_h] = cv2.resize(side, (width, body_h), interpolation=cv2.INTER_AREA)
    bgr[body_h:] = (35, 35, 38)  # sill and the dark underside
    alpha = np.zeros((height, width), np.float32)
    radius = round(0.03 * width)
    cv2.rectangle(alpha, (radius, 0), (width - 1 - radius, round(0.9 * height)), 1.0, -1)
    cv2.rectangle(alpha, (0, radius), (width - 1, round(0.9 * height)), 1.0, -1)
    wheel = round(0.1 * height)
    for x in (0.2, 0.8):
        centre = (round(x * width), height - 1 - wheel)
        cv2.circle(alpha, centre, wheel, 1.0, -1)
        cv2.circle(bgr, centre, wheel, (20, 20, 20), -1)
        cv2.circle(bgr, centre, wheel // 2, (140, 140, 145), -1)
    return Sprite(bgr=bgr, alpha=cv2.GaussianBlur(alpha, (3, 3), 0)[..., None].astype(np.float32))


# Compositing: people and props are drawn far to near; what is drawn later covers what is behind.
Layer = tuple[Sprite, int, int, int | None]  # sprite, left, top, person id (None for a thing)


def blend_sprite(frame: npt.NDArray[np.int16], sprite: Sprite, left: int, top: int) -> None:
    """Composite a cut-out into the frame in place, clipped to the frame."""
    h, w = frame.shape[:2]
    sh, sw = sprite.alpha.shape[:2]
    x1, y1, x2, y2 = max(0, left), max(0, top), min(w, left + sw), min(h, top + sh)
    if x2 <= x1 or y2 <= y1:
        return
    alpha = sprite.alpha[y1 - top : y2 - top, x1 - left : x2 - left]
    person = sprite.bgr[y1 - top : y2 - top, x1 - left : x2 - left]
    roi = frame[y1:y2, x1:x2]
    roi[:] = (roi * (1 - alpha) + person * alpha).astype(np.int16)


def hidden_fraction(
    layers: list[Layer],
    index: int,
    frame_box: tuple[int, int, int, int],
    lens: npt.NDArray[np.float32] | None,
) -> float:
    """How much of layer ``index``'s in-frame silhouette is covered (alpha-weighted) by the layers drawn
    after it and by what is on the lens (``lens``: frame-sized opacity)."""
    sprite, left, top, _ = layers[index]
    x1, y1, x2, y2 = frame_box
    own = sprite.alpha[y1 - top : y2 - top, x1 - left : x2 - left, 0]
    clear = np.ones_like(own) if lens is None else 1.0 - lens[y1:y2, x1:x2]
    for other, o_left, o_top, _ in layers[index + 1 :]:
        oh, ow = other.alpha.shape[:2]
        ix1, iy1 = max(x1, o_left), max(y1, o_top)
        ix2, iy2 = min(x2, o_left + ow), min(y2, o_top + oh)
        if ix2 > ix1 and iy2 > iy1:
            cover = other.alpha[iy1 - o_top : iy2 - o_top, ix1 - o_left : ix2 - o_left, 0]
            clear[iy1 - y1 : iy2 - y1, ix1 - x1 : ix2 - x1] *= 1.0 - cover
    total = float(own.sum())
    return 1.0 - float((own * clear).sum()) / total if total > 0 else 1.0


def silhouette_edges(sprite: Sprite, left: int, top: int) -> npt.NDArray[np.float64]:
    """Frame points on the outline of a placed sprite: each row's first and last opaque pixel."""
    solid = sprite.alpha[..., 0] > 0.5
    rows = np.flatnonzero(solid.any(axis=1))
    first = solid[rows].argmax(axis=1)
    last = solid.shape[1] - solid[rows, ::-1].argmax(axis=1)
    ys = np.concatenate([rows, rows + 1]) + top
    return np.stack([np.concatenate([first, last]) + left, ys], axis=1).astype(np.float64)
