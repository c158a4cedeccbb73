"""Image effects and props for the simulated cameras (:mod:`ingest.sim`).

Each effect is built once per scene from the scene's seed (noise fields, masks, sprites: the
costly part) and then applied per frame as a pure function of scene time, so a frame stays a
pure function of (url, t, index). Effects work on uint8 BGR frames *before* sensor noise is
added, as in a camera, where the noise comes after the optics and the lens.

Full-frame blends go through ``cv2.blendLinear`` (about 1.5 ms at 768x576) rather than numpy
float arithmetic (about 5 ms): every scene must render in well under 15 ms a frame.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
# Spray-can colours (BGR): red, black, pink, green, yellow, white, purple, orange.
PALETTE = (
    (40, 40, 210), (30, 30, 30), (180, 80, 230), (60, 190, 60),
    (40, 215, 240), (235, 235, 235), (150, 50, 120), (30, 130, 245),
)  # fmt: skip


def smooth_noise(gen: np.random.Generator, shape: tuple[int, int], cell: float) -> F32:
    """Zero-mean, unit-std noise varying over about ``cell`` pixels (a coarse grid, cubic-upsampled)."""
    h, w = shape
    coarse = gen.standard_normal((max(2, round(h / cell)) + 1, max(2, round(w / cell)) + 1))
    field = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return ((field - field.mean()) / (field.std() + 1e-6)).astype(np.float32)


def ramp(t: float, start: float, end: float | None, rise: float) -> float:
    """0 before ``start``, up to 1 over ``rise`` s, and back to 0 over ``rise`` s from ``end``."""
    if t < start:
        return 0.0
    up = min(1.0, (t - start) / rise)
    return up if end is None or t < end else max(0.0, min(up, 1.0 - (t - end) / rise))


def blend(frame: np.ndarray, colour: U8, alpha: F32, box: tuple[int, int, int, int]) -> None:
    """Composite ``colour`` with opacity ``alpha`` (both box-sized) into ``frame[box]``, in place."""
    x1, y1, x2, y2 = box
    roi = frame[y1:y2, x1:x2]
    src = roi if roi.dtype == np.uint8 else roi.astype(np.uint8)
    roi[:] = cv2.blendLinear(src, colour, 1.0 - alpha, alpha)


class ViewEffect:
    """Something that happens to the whole picture (light, wind, tamper), on uint8 frames before noise."""

    def apply(self, frame: U8, t: float) -> U8:
        raise NotImplementedError

    def noise_gain(self, t: float) -> int:
        """Extra multiples of the sensor noise at ``t`` (an amplified dark picture is noisier)."""
        return 0

    def occlusion(self, t: float) -> F32 | None:
        """Frame-sized opacity of what is on the lens at ``t`` (people under it are hidden)."""
        return None

    def geometry(self, t: float) -> npt.NDArray[np.float64] | None:
        """Forward transform of the view at ``t`` (where people's boxes move to), None when steady."""
        return None


# ---------------------------------------------------------------------------------------- paint


@dataclass(frozen=True)
class Paint:
    """Paint that lands pixel by pixel inside ``box``: pixel (y, x) gets it at ``start + arrival[y, x]``."""

    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in the frame
    arrival: F32  # seconds after ``start``; inf where no paint ever lands
    alpha: F32  # final opacity 0..1
    colour: U8  # (h, w, 3)
    start: float
    end: float | None = None  # wiped off here (paint on a lens); graffiti stays
    fade_s: float = 0.15  # from the first mist to full paint on one pixel

    @functools.cached_property
    def done_s(self) -> float:
        finite = self.arrival[np.isfinite(self.arrival)]
        return float(finite.max()) + self.fade_s if finite.size else 0.0

    def alpha_at(self, t: float) -> F32 | None:
        dt = t - self.start
        if dt < 0 or (self.end is not None and t >= self.end):
            return None
        if dt >= self.done_s:
            return self.alpha
        return self.alpha * np.clip((dt - self.arrival) * (1.0 / self.fade_s), 0.0, 1.0).astype(np.float32)

    def apply(self, frame: np.ndarray, t: float) -> None:
        alpha = self.alpha_at(t)
        if alpha is not None:
            blend(frame, self.colour, alpha, self.box)


def _soften(core: F32, arrival: F32, sharp: float, mist: float, opacity: float) -> tuple[F32, F32]:
    """Spray-can edges: a slightly blurred core plus a faint wide mist, arriving with the nearest stroke."""
    alpha = opacity * cv2.GaussianBlur(core, (0, 0), sharp) + 0.2 * cv2.GaussianBlur(core, (0, 0), mist)
    reach = 2 * math.ceil(2.5 * mist) + 1
    near = cv2.erode(arrival, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach)))
    alpha = np.where(np.isfinite(near) & (alpha >= 0.03), np.minimum(alpha, 0.95), 0.0).astype(np.float32)
    return alpha, np.where(alpha > 0, near, np.inf).astype(np.float32)


def _chaikin(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    for _ in range(rounds):
        a, b = points[:-1], points[1:]
        points = np.concatenate(
            [points[:1], np.stack([0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b], 1).reshape(-1, 2), points[-1:]]
        )
    return points


def graffiti(rng: random.Random, box: tuple[int, int, int, int], start: float, end: float) -> Paint:
    """A tag of 3-5 thick curves in one or two colours, drawn stroke by stroke from ``start`` to ``end``.

    Retries (deterministically, with the same ``rng``) until the paint covers 7-16 % of ``box``.
    """
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    main, second = rng.sample(PALETTE, 2)
    thickness = max(2.0, rng.uniform(0.06, 0.09) * bh)
    for _ in range(12):
        strokes: list[npt.NDArray[np.float64]] = []
        count = rng.randint(3, 5)
        for slot in range(count):  # letters left to right, each a wobbly curve inside its slot
            pts = [
                (bw * (slot + rng.uniform(0.0, 1.0)) / count, bh * rng.uniform(0.15, 0.85))
                for _ in range(rng.randint(4, 6))
            ]
            strokes.append(_chaikin(np.array(pts)))
        lengths = [float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) for p in strokes]
        total = sum(lengths) * 1.15  # pen lifts between strokes take time too
        arrival = np.full((bh, bw), np.inf, np.float32)
        colour = np.empty((bh, bw, 3), np.uint8)
        colour[:] = main
        done, segments = 0.0, list[tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]]()
        for index, curve in enumerate(strokes):
            steps = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
            for a, b, at in zip(curve[:-1], curve[1:], steps[:-1], strict=True):
                segments.append((done + at, a, b))
            if index % 2:  # alternate strokes in the second colour, drawn wide enough for the mist
                cv2.polylines(colour, [curve.round().astype(np.int32)], False, second, round(thickness * 3))
            done += lengths[index] + 0.15 * sum(lengths) / count
        th = round(thickness)
        for at, a, b in sorted(segments, key=lambda s: -s[0]):  # earliest drawn last: it wins overlaps
            p, q = (round(a[0]), round(a[1])), (round(b[0]), round(b[1]))
            cv2.line(arrival, p, q, (end - start) * at / total, th, cv2.LINE_8)
        core = np.isfinite(arrival).astype(np.float32)
        alpha, arrival = _soften(core, arrival, max(0.7, thickness * 0.12), thickness * 0.5, 0.93)
        coverage = float((alpha > 0.01).mean())  # mist included: what the paint visibly changes
        if 0.07 <= coverage <= 0.16:
            break
        thickness *= 0.11 / max(coverage, 1e-3)
    return Paint(box, arrival, alpha, _textured(colour, rng), start)


def _textured(colour: U8, rng: random.Random, amount: float = 0.06) -> U8:
    gen = np.random.default_rng(rng.getrandbits(32))
    grain = 1.0 + amount * smooth_noise(gen, colour.shape[:2], 6.0)[..., None]
    return np.clip(colour * grain, 0, 255).astype(np.uint8)


def spray(
    rng: random.Random, size: tuple[int, int], start: float, end: float | None, grow_s: float = 2.0
) -> Paint:
    """Paint sprayed on the lens: blotches of one colour growing over ``grow_s`` to cover 60-90 %, drips."""
    w, h = size
    gen = np.random.default_rng(rng.getrandbits(32))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    arrival = np.full((h, w), np.inf, np.float32)
    wobble = smooth_noise(gen, (h, w), 0.08 * w)
    for _ in range(rng.randint(2, 4)):  # each blotch spreads from where the can pointed
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.15, 0.7) * h
        reach = (np.hypot(xx - cx, yy - cy) + 0.12 * w * wobble) / rng.uniform(0.8, 1.2)
        arrival = np.minimum(arrival, rng.uniform(0.0, 0.3) * w + reach)
    target = rng.uniform(0.62, 0.86)
    arrival *= 0.8 * grow_s / float(np.quantile(arrival, target))
    arrival[arrival > 0.8 * grow_s] = np.inf
    core = np.isfinite(arrival)
    for _ in range(rng.randint(8, 16)):  # drips run down from the lower edge of the paint
        x = rng.randrange(w)
        rows = np.flatnonzero(core[:, x])
        if not rows.size or rows[-1] > 0.92 * h:
            continue
        y0, width = int(rows[-1]), max(2, round(rng.uniform(0.004, 0.009) * w))
        length = round(rng.uniform(0.05, 0.2) * h)
        t0 = float(arrival[y0, x])
        for dy in range(1, min(length, h - y0 - 1)):
            sl = (y0 + dy, slice(max(0, x - width // 2), min(w, x + width - width // 2)))
            arrival[sl] = np.minimum(arrival[sl], t0 + 0.2 * grow_s * dy / length)
        cv2.circle(arrival, (x, min(h - 1, y0 + length)), width, t0 + 0.2 * grow_s, -1)
    core = np.isfinite(arrival).astype(np.float32)
    alpha, arrival = _soften(core, arrival, 0.004 * w, 0.01 * w, rng.uniform(0.78, 0.9))
    alpha *= (1.0 + 0.04 * smooth_noise(gen, (h, w), 0.02 * w)).clip(0.9, 1.05)
    colour = np.empty((h, w, 3), np.uint8)
    colour[:] = rng.choice(PALETTE)
    return Paint(
        (0, 0, w, h), arrival, np.clip(alpha, 0, 0.95).astype(np.float32), _textured(colour, rng), start, end
    )


# ---------------------------------------------------------------------------------------- tamper


class Cover:
    """A hand or a cloth over the lens: a dark, faintly textured blob that slides in from one side."""

    def __init__(self, rng: random.Random, size: tuple[int, int]) -> None:
        w, h = size
        gen = np.random.default_rng(rng.getrandbits(32))
        base = np.array(rng.choice(((28, 32, 40), (22, 22, 26), (36, 30, 44))), np.float32)
        shade = 1.0 + 0.12 * smooth_noise(gen, (h, w), 0.15 * w) + 0.03 * smooth_noise(gen, (h, w), 3.0)
        self.texture = np.clip(base * shade[..., None], 0, 255).astype(np.uint8)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = rng.choice((0, w)), rng.choice((0, h))  # light leaks round the fingers at one corner
        leak = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.12 * math.hypot(w, h)) ** 2))
        self.alpha = (1.0 - 0.3 * leak).astype(np.float32)
        self._xx, self._yy = (xx - w / 2) / w, (yy - h / 2) / h
        angle = rng.uniform(0, 2 * math.pi)
        self._from = (math.cos(angle) * 1.6, math.sin(angle) * 1.6)  # centre offset when just arriving

    def alpha_at(self, progress: float) -> F32 | None:
        if progress <= 0:
            return None
        if progress >= 1:
            return self.alpha
        # an ellipse (the hand) moving in: a soft leading edge, not a wipe
        ox, oy = (1 - progress) * self._from[0], (1 - progress) * self._from[1]
        r = np.sqrt((self._xx - ox) ** 2 + (self._yy - oy) ** 2) / 0.9
        return (self.alpha * np.clip((1.0 - r) / 0.08, 0.0, 1.0)).astype(np.float32)

    def apply(self, frame: U8, progress: float) -> U8:
        alpha = self.alpha_at(progress)
        return frame if alpha is None else cv2.blendLinear(frame, self.texture, 1.0 - alpha, alpha)  # type: ignore[return-value]


def defocus(frame: U8, sigma: float) -> U8:
    """The lens turned out of focus: a Gaussian blur of the whole view (a wide one at half size: it
    leaves no detail that the smaller image could lose, at a quarter of the work)."""
    if sigma < 0.3:
        return frame
    if sigma < 3:
        return cv2.GaussianBlur(frame, (0, 0), sigma)  # type: ignore[return-value]
    h, w = frame.shape[:2]
    small = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(small, (0, 0), math.sqrt(sigma**2 - 1.0) / 2)  # the halving blurs ~1 px
    return cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR)  # type: ignore[return-value]


class Knock:
    """The camera knocked: the view shifts and turns; what comes into view is the photo around the frame.

    The frame is pasted into the whole street photo at the frame's scale (reflected beyond the
    photo's own edges), and that canvas is warped, so a knocked camera sees the bus windows above
    the usual view rather than black borders.
    """

    def __init__(self, rng: random.Random, size: tuple[int, int], photo: U8, rows: tuple[int, int]) -> None:
        w, h = size
        shift, heading = rng.uniform(0.08, 0.15), rng.uniform(0, 2 * math.pi)
        self.dx, self.dy = shift * w * math.cos(heading), shift * h * math.sin(heading)
        self.angle = rng.choice((-1, 1)) * rng.uniform(2.0, 6.0)  # degrees, counter-clockwise
        scale_y = h / (rows[1] - rows[0])
        scaled = cv2.resize(photo, (w, round(photo.shape[0] * scale_y)), interpolation=cv2.INTER_AREA)
        top = round(rows[0] * scale_y)  # the frame's first row inside the scaled photo
        self.margin = m = math.ceil(0.3 * max(w, h))
        padded = cv2.copyMakeBorder(scaled, m, m, m, m, cv2.BORDER_REFLECT)
        self._canvas = np.ascontiguousarray(padded[top : top + h + 2 * m])
        self.size = size

    def matrix(self, progress: float) -> npt.NDArray[np.float64]:
        """Forward 2x3 transform from the steady view to the knocked view at ``progress`` (0..1)."""
        w, h = self.size
        progress = 1 - (1 - progress) ** 2  # eases in like a blow
        m = cv2.getRotationMatrix2D((w / 2, h / 2), self.angle * progress, 1.0)
        m[:, 2] += np.array((self.dx * progress, self.dy * progress))
        return np.asarray(m, np.float64)

    def apply(self, frame: U8, progress: float) -> U8:
        if progress <= 0:
            return frame
        w, h = self.size
        m = self.margin
        canvas = self._canvas.copy()
        canvas[m : m + h, m : m + w] = frame
        inverse = cv2.invertAffineTransform(self.matrix(progress))
        inverse[:, 2] += m
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        return cv2.warpAffine(canvas, inverse, (w, h), flags=flags)  # type: ignore[return-value]


def relight(frame: U8, gains: tuple[float, float, float], grey: bool) -> U8:
    """Scale each channel (B, G, R); ``grey`` first mixes them to luma, like an IR night mode."""
    mix = np.tile([[0.114, 0.587, 0.299]], (3, 1)) if grey else np.eye(3)
    return cv2.transform(frame, (mix * np.array(gains)[:, None]).astype(np.float32))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------- wind


class Foliage(ViewEffect):
    """Leaves hanging into the view from a corner, moving in the wind: a sway with gusts and flutter."""

    def __init__(
        self, rng: random.Random, size: tuple[int, int], box: tuple[float, float, float, float]
    ) -> None:
        w, h = size
        gen = np.random.default_rng(rng.getrandbits(32))
        self.box = x1, y1, x2, y2 = round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)
        self.pad = pad = round(0.03 * w)
        bw, bh = x2 - x1 + 2 * pad, y2 - y1 + 2 * pad
        blobs = np.zeros((bh, bw), np.float32)
        anchor = np.array([bw, 0.0])  # the branch comes in at the top right
        edge = 0.2 * smooth_noise(gen, (bh, bw), 0.02 * bw)
        # A rounded outline that keeps the leaves (and their sway, up to ~15 px) off the box's left and
        # bottom sides, so the box never cuts them straight; the top and right are the frame's edges.
        yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
        reach_x, reach_y = x2 - x1 - 0.025 * w, y2 - y1 - 0.025 * w
        u, v = np.maximum(0, bw - pad - xx) / reach_x, np.maximum(0, yy - pad) / reach_y
        outline = u**4 + v**4 + 0.1 * smooth_noise(gen, (bh, bw), 0.05 * bw) < 0.9
        leafy = outline
        for _ in range(200):  # leaf clusters, denser near the anchor, until they fill 13.5 % of the frame
            cx, cy = bw - pad - rng.random() ** 1.3 * reach_x, pad + rng.random() ** 1.3 * reach_y
            cv2.circle(blobs, (round(cx), round(cy)), round(rng.uniform(0.09, 0.18) * bw), 1.0, -1)
            leafy = (cv2.GaussianBlur(blobs, (0, 0), 0.03 * bw) + edge > 0.5) & outline
            if leafy[pad : bh - pad, pad : bw - pad].sum() >= 0.135 * w * h:
                break
        self.alpha = cv2.GaussianBlur(leafy.astype(np.float32), (0, 0), 1.0)
        leaves = np.empty((bh, bw, 3), np.float32)
        leaves[:] = (25, 65, 30)  # leaves in the shade of other leaves
        for _ in range(bw * bh // 60):  # single leaves: small ellipses in many greens
            c = (rng.randrange(bw), rng.randrange(bh))
            axes = (rng.randint(3, 7), rng.randint(2, 4))
            green = (rng.uniform(20, 70), rng.uniform(80, 170), rng.uniform(30, 90))
            cv2.ellipse(leaves, c, axes, rng.uniform(0, 180), 0, 360, green, -1)
        depth = 0.75 + 0.35 * smooth_noise(gen, (bh, bw), 0.05 * bw)  # clusters in shade and in sun
        self.texture = np.clip(leaves * depth[..., None], 0, 255).astype(np.float32)
        yy, xx = yy[pad : bh - pad, pad : bw - pad] - pad, xx[pad : bh - pad, pad : bw - pad] - pad
        self._grid = (xx + pad, yy + pad)
        reach = np.hypot(xx + pad - anchor[0], yy + pad - anchor[1]) / math.hypot(bw, bh)
        self._reach = (reach / reach.max()).astype(np.float32)  # tips move most, the branch base not at all
        self._xy = (xx * 0.09 + yy * 0.07).astype(np.float32)
        self._phase = rng.uniform(0, 2 * math.pi)
        self._scale = w / 768

    def wind(self, t: float) -> float:
        """Sway amplitude in pixels at 768 px width: a breeze with gusts every 8-20 s."""
        gust = max(0.0, math.sin(2 * math.pi * t / 13.0 + self._phase)) ** 2
        return 3.0 + 9.0 * gust * (0.7 + 0.3 * math.sin(2 * math.pi * t / 3.7 + 2 * self._phase))

    def apply(self, frame: U8, t: float) -> U8:
        amp = self.wind(t) * self._scale
        sway = amp * math.sin(2 * math.pi * 0.6 * t + self._phase)
        flutter = (1.2 * self._scale) * np.sin(self._xy + 2 * math.pi * 2.1 * t)
        map_x = self._grid[0] - self._reach * (sway + flutter)
        map_y = self._grid[1] - self._reach * (0.35 * sway * math.cos(2 * math.pi * 0.3 * t) + flutter)
        alpha = cv2.remap(self.alpha, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT).astype(
            np.float32
        )
        leaves = cv2.remap(self.texture, map_x, map_y, cv2.INTER_LINEAR).astype(np.uint8)
        blend(frame, leaves, alpha, self.box)
        return frame


# ---------------------------------------------------------------------------------------- timelines


class Tamper(ViewEffect):
    """One tamper of ``kind`` from ``at``, arriving within ``rise`` s; gone again at ``end`` (None: stays)."""

    def __init__(self, rng: random.Random, size: tuple[int, int], kind: str, at: float, end: float | None,
                 photo: tuple[U8, tuple[int, int]] | None = None, rise: float = 0.5) -> None:  # fmt: skip
        self.kind, self.at, self.end, self.rise = kind, at, end, rise
        self._sigma = 6.0 * size[0] / 768
        self.cover = Cover(rng, size) if kind == "cover" else None
        self.paint = spray(rng, size, at, end, grow_s=2.0) if kind == "spray" else None
        if kind == "knock" and photo is None:
            raise ValueError("a knock needs the photo around the frame")
        self.knock = Knock(rng, size, *photo) if kind == "knock" and photo is not None else None

    def apply(self, frame: U8, t: float) -> U8:
        progress = ramp(t, self.at, self.end, self.rise)
        if self.cover is not None:
            return self.cover.apply(frame, progress)
        if self.knock is not None:
            return self.knock.apply(frame, progress)
        if self.paint is not None:
            self.paint.apply(frame, t)
            return frame
        return defocus(frame, self._sigma * progress)

    def occlusion(self, t: float) -> F32 | None:
        if self.cover is not None:
            return self.cover.alpha_at(ramp(t, self.at, self.end, self.rise))
        return self.paint.alpha_at(t) if self.paint is not None else None

    def geometry(self, t: float) -> npt.NDArray[np.float64] | None:
        progress = ramp(t, self.at, self.end, self.rise)
        return self.knock.matrix(progress) if self.knock is not None and progress > 0 else None


class Lights(ViewEffect):
    """Lighting switched abruptly at ``at``, ``at + every``, ...: alternately changed and back to normal.

    Each changed spell is, by its own seed, either dimmer light with a colour cast (gain 0.35-0.5)
    or the camera's greyscale IR night mode (gain 0.55-0.85, twice the sensor noise).
    """

    def __init__(self, seed: int, at: float, every: float) -> None:
        self.seed, self.at, self.every = seed, at, every

    def spell(self, t: float) -> tuple[str, tuple[float, float, float]] | None:
        """("dim"|"ir", (B, G, R) gains) in force at ``t``, None for normal light."""
        if t < self.at:
            return None
        index = math.floor((t - self.at) / self.every)
        if index % 2:
            return None
        rng = random.Random(f"lights:{self.seed}:{index // 2}")  # noqa: S311 - a scene script
        if rng.random() < 0.5:
            gain = rng.uniform(0.55, 0.85)
            return "ir", (gain, gain, gain)
        gain = rng.uniform(0.35, 0.5)
        cast = rng.choice(
            ((0.75, 0.95, 1.2), (1.2, 1.0, 0.8), (0.95, 1.15, 0.9))
        )  # sodium, cold, fluorescent
        return "dim", (gain * cast[0], gain * cast[1], gain * cast[2])

    def switches(self, until: float) -> list[tuple[float, str]]:
        times = [
            self.at + k * self.every for k in range(max(0, math.floor((until - self.at) / self.every) + 1))
        ]
        return [(t, "normal" if (spell := self.spell(t)) is None else spell[0]) for t in times]

    def apply(self, frame: U8, t: float) -> U8:
        spell = self.spell(t)
        return frame if spell is None else relight(frame, spell[1], spell[0] == "ir")

    def noise_gain(self, t: float) -> int:
        spell = self.spell(t)
        return 2 if spell is not None and spell[0] == "ir" else 0
