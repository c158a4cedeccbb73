"""Real-photo material for the simulated cameras: person cut-outs and a clean street background.

Why real photos: the detectors downstream (OpenCV HOG, YOLO) are trained on
real pedestrians; flat synthetic shapes would test nothing. ultralytics ships
``bus.jpg`` (810x1080) with two fully visible standing pedestrians; their
silhouettes below were measured by hand on that photo and refined with
``cv2.grabCut``. The background is the lower part of the same photo with every
person replaced by the street a few metres along (a shifted copy of the same
rows, feathered), because inpainting person-sized holes leaves smears that look
like ghosts to a detector.

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


def _street_without_people(photo: np.ndarray) -> npt.NDArray[np.uint8]:
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
    top, bottom = _BACKGROUND_ROWS
    return np.clip(out[top:bottom], 0, 255).astype(np.uint8)


_lock = threading.Lock()


@functools.cache
def _build() -> SimAssets:
    photo = _read(asset_photo("bus.jpg"))
    return SimAssets(
        background=_street_without_people(photo),
        people=tuple(_cut_out(photo, outline) for outline in _PERSON_OUTLINES),
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
