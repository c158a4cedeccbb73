"""What a person looks like, cheaply: colour histograms of four horizontal bands of the body.

Why: the tracker fragments people (occlusions, missed detections), and the
loitering rule must tell whether a new track is the person whose clock it was
keeping or someone else who happens to stand there. Clothing colour is the
cheapest cue that survives a track break: no model, no GPU, about a tenth of a
millisecond per box (run ``python -m detector.appearance``).

The descriptor of one box is one histogram of :data:`PART_BINS` bins for each of
the :data:`PARTS` (upper torso, lower torso, thighs, shins: the box without head
and feet, and without its left and right fifths, which are mostly background),
each L1-normalised, concatenated. Why four bands and not just torso and legs: a
coat that ends at the knees and a jacket that ends at the hips have the same
torso and legs colours, but not in the same bands (on the simulated street's two
pedestrians, beige coat against black jacket, 0.75 with two bands, 0.66 with four,
while PETS09 S2L1 people still match themselves as well; the calibration is
described by the constants in :mod:`detector.loitering`).

A pixel votes by how coloured it is: a saturated, lit pixel into a (hue,
saturation) bin, a grey, black or white one into a brightness bin, with linear
(soft) binning between neighbouring bins so that JPEG noise or a pixel of box
jitter moves weight smoothly instead of flipping whole bins. Brightness counts
only for the colourless pixels: it is what shadows and the time of day change most.

:func:`similarity` is the Bhattacharyya coefficient of each band, averaged over
the bands: 1 for identical colour distributions, 0 for disjoint ones. Averaging
keeps a person whose legs are hidden (behind a bench, a passer-by) closer to
themselves than to someone dressed differently.

A box with no pixels in the frame gets a NaN row: "no evidence", which callers
must treat as such (:func:`usable`), never as "looks different".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

HUE_BINS = 8
SATURATION_BINS = 2
VALUE_BINS = 4  # brightness levels of the colourless pixels: black, dark grey, light grey, white
PART_BINS = HUE_BINS * SATURATION_BINS + VALUE_BINS
# Fractions of the box height: upper torso, lower torso, thighs, shins (no head, no feet).
PARTS = ((0.12, 0.31), (0.31, 0.50), (0.50, 0.69), (0.69, 0.88))
SIDE_MARGIN = 0.2  # fraction of the box width dropped on each side: the gaps by the arms are background
DESCRIPTOR_SIZE = PART_BINS * len(PARTS)
MAX_SAMPLES = 2000  # pixels per box at most: big boxes are subsampled, so the cost per box is bounded
# How coloured a pixel is (OpenCV's 8-bit S and V): below LOW it is grey, above HIGH fully coloured.
CHROMA_LOW, CHROMA_HIGH = 25.0, 70.0
DARK_LOW, DARK_HIGH = 30.0, 60.0  # a very dark pixel's hue is noise whatever its saturation
# Lookup-table resolution: OpenCV hue 0..179 in steps of 2, saturation and value in steps of 8.
_H_SHIFT, _SV_SHIFT = 1, 3
_S_LEVELS = _V_LEVELS = 256 >> _SV_SHIFT


def describe(image: npt.NDArray[np.uint8], boxes: np.ndarray) -> npt.NDArray[np.float32]:
    """(N, DESCRIPTOR_SIZE) descriptors of the xyxy pixel ``boxes`` in the BGR ``image``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.full((len(boxes), DESCRIPTOR_SIZE), np.nan, np.float32)
    for row, box in enumerate(boxes):
        descriptor = _describe_box(image, box)
        if descriptor is not None:
            out[row] = descriptor
    return out


def usable(descriptor: np.ndarray | None) -> bool:
    """A descriptor that carries evidence (not None, not the NaN row of a box outside the frame)."""
    return descriptor is not None and bool(np.isfinite(descriptor).all())


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two descriptors are, in [0, 1]: the mean over body bands of the Bhattacharyya coefficient."""
    products = np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None)).reshape(len(PARTS), PART_BINS)
    return float(np.clip(products.sum(axis=1).mean(), 0.0, 1.0))


@dataclass
class RunningAppearance:
    """One person's appearance over many frames, in constant memory: the mean of the first
    ``1 / weight`` descriptors, then an exponential moving average (recent looks count more, so a
    coat taken off is followed, while one odd frame moves it little)."""

    weight: float = 0.1
    mean: npt.NDArray[np.float32] | None = None
    samples: int = 0

    def add(self, descriptor: np.ndarray) -> None:
        if not usable(descriptor):  # a box outside the frame says nothing about the person
            return
        self.samples += 1
        if self.mean is None:
            self.mean = descriptor.astype(np.float32, copy=True)
            return
        rate = max(1.0 / self.samples, self.weight)
        self.mean = ((1 - rate) * self.mean + rate * descriptor).astype(np.float32)

    def copy(self) -> RunningAppearance:
        return RunningAppearance(self.weight, None if self.mean is None else self.mean.copy(), self.samples)


def _describe_box(image: npt.NDArray[np.uint8], box: np.ndarray) -> npt.NDArray[np.float32] | None:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    if not (np.isfinite(box).all() and bw >= 1 and bh >= 1):
        return None
    left, right = _clip(x1 + SIDE_MARGIN * bw, width), _clip(x2 - SIDE_MARGIN * bw, width)
    top, bottom = _clip(y1 + PARTS[0][0] * bh, height), _clip(y1 + PARTS[-1][1] * bh, height)
    if right <= left or bottom <= top:
        return None
    # One subsampled crop for all bands (one colour conversion), split by rows afterwards.
    step = max(1, int(np.ceil(np.sqrt((right - left) * (bottom - top) / MAX_SAMPLES))))
    crop = np.ascontiguousarray(image[top:bottom:step, left:right:step])
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    code = (hsv[:, 0] >> _H_SHIFT) * (_S_LEVELS * _V_LEVELS) + (hsv[:, 1] >> _SV_SHIFT) * _V_LEVELS
    code += hsv[:, 2] >> _SV_SHIFT
    rows = np.arange(top, bottom, step)[: crop.shape[0]]
    bounds = np.searchsorted(rows, [y1 + part_bottom * bh for _, part_bottom in PARTS[:-1]]) * crop.shape[1]
    hists: dict[int, np.ndarray] = {}
    for part, codes in enumerate(np.split(code, bounds)):
        if len(codes):  # else the band is outside the frame
            hist = np.bincount(_LUT_BINS[codes].ravel(), _LUT_WEIGHTS[codes].ravel(), PART_BINS)
            hists[part] = hist / hist.sum()
    # A band outside the frame borrows the nearest visible one: the similarity rests on what can be seen.
    filled = [hists[_nearest(part, list(hists))] for part in range(len(PARTS))]
    return np.concatenate(filled).astype(np.float32)


def _nearest(index: int, candidates: list[int]) -> int:
    return min(candidates, key=lambda c: (abs(c - index), c))


def _clip(value: float, limit: int) -> int:
    return int(min(max(round(value), 0), limit))


def _soft_bins(position: np.ndarray, bins: int, circular: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Lower bin index and the weight of the upper one, for linear interpolation between bin centres."""
    centred = position - 0.5
    lower = np.floor(centred)
    upper_weight = centred - lower
    if circular:
        return lower.astype(np.int64) % bins, upper_weight
    inside = (lower >= 0) & (lower < bins - 1)  # before the first centre or past the last: the end bin
    return np.clip(lower, 0, bins - 1).astype(np.int64), np.where(inside, upper_weight, 0.0)


def _lookup_tables() -> tuple[np.ndarray, np.ndarray]:
    """For every quantised HSV colour, the 6 bins it votes into and how much (soft binning, summing to 1).

    Why a table: computing the soft votes per pixel takes some 30 array operations; looking them up
    takes two, which is most of what keeps a box at about a tenth of a millisecond.
    """
    h, s, v = np.meshgrid(
        (np.arange(180 >> _H_SHIFT) + 0.5) * (1 << _H_SHIFT),
        (np.arange(_S_LEVELS) + 0.5) * (1 << _SV_SHIFT),
        (np.arange(_V_LEVELS) + 0.5) * (1 << _SV_SHIFT),
        indexing="ij",
    )
    hue, sat, val = h.ravel(), s.ravel(), v.ravel()
    chroma = np.clip((sat - CHROMA_LOW) / (CHROMA_HIGH - CHROMA_LOW), 0, 1)
    chroma *= np.clip((val - DARK_LOW) / (DARK_HIGH - DARK_LOW), 0, 1)
    # hue is circular (OpenCV: 0..180); saturation and value are clamped at their end bins
    h_lo, h_w = _soft_bins(hue / 180.0 * HUE_BINS, HUE_BINS, circular=True)
    s_lo, s_w = _soft_bins((sat - CHROMA_LOW) / (256.0 - CHROMA_LOW) * SATURATION_BINS, SATURATION_BINS)
    v_lo, v_w = _soft_bins(val / 256.0 * VALUE_BINS, VALUE_BINS)
    bins, weights = [], []
    for dh in (0, 1):
        for ds in (0, 1):
            bins.append((h_lo + dh) % HUE_BINS * SATURATION_BINS + np.minimum(s_lo + ds, SATURATION_BINS - 1))
            weights.append(chroma * (h_w if dh else 1 - h_w) * (s_w if ds else 1 - s_w))
    for dv in (0, 1):
        bins.append(HUE_BINS * SATURATION_BINS + np.minimum(v_lo + dv, VALUE_BINS - 1))
        weights.append((1 - chroma) * (v_w if dv else 1 - v_w))
    # 92160 colours x 6 votes: 3.3 MB per process, built once at import (~10 ms)
    return np.stack(bins, axis=1).astype(np.int16), np.stack(weights, axis=1).astype(np.float32)


_LUT_BINS, _LUT_WEIGHTS = _lookup_tables()


def benchmark(boxes_per_frame: int = 8, frames: int = 200) -> float:
    """Milliseconds per box on a 768x576 frame with person-sized boxes, 80-220 px tall (prints it)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (576, 768, 3), np.uint8)
    x = rng.uniform(0, 700, boxes_per_frame)
    y = rng.uniform(0, 350, boxes_per_frame)
    height = rng.uniform(80, 220, boxes_per_frame)
    boxes = np.stack([x, y, x + height * 0.4, y + height], axis=1).astype(np.float32)
    describe(image, boxes)  # warm-up
    began = time.perf_counter()
    for _ in range(frames):
        describe(image, boxes)
    per_box = (time.perf_counter() - began) / (frames * boxes_per_frame) * 1000
    print(f"appearance descriptor: {per_box:.3f} ms per box ({DESCRIPTOR_SIZE} floats)")
    return per_box


if __name__ == "__main__":
    benchmark()
