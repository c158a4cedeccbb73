"""Simulated cameras: real pedestrians from a real photo, scripted, deterministic per seed.

URL grammar::

    sim://<scene>[?param=value&...]

    scene   loiterer | walkers | empty
    seed    int, default 0       same seed -> same script and same pixels frame for frame
    size    WxH, default 768x576 frame size (the street photo is stretched to fit)
    start   seconds, default 3   loiterer: when the person starts walking in
    dwell   seconds, default 90  loiterer: time the person's bottom-centre point spends in the bench
                                 area (entering, standing with a slight sway, leaving)

- ``loiterer``: one person walks in from the left or right edge, stays in the bench area
  (:data:`BENCH`: normalized x 0.40-0.60, y 0.70-0.90) for ``dwell`` seconds, walks out the
  far side; the scene then stays empty.
- ``walkers``: people cross the frame at walking speed without stopping, forever, with gaps
  of 3-9 s; those crossing at bench height pass through the bench area in under 2 s.
- ``empty``: the background only.

Every frame gets mild sensor noise from a pre-generated pool. People are the two full-body
pedestrians of ultralytics' ``bus.jpg`` (and their mirror images), 150-225 px tall in a 576 px
frame depending on how far down the frame they stand; the OpenCV HOG people detector finds them.

Ground truth: :meth:`SimScene.people_at` gives ``(person_id, box)`` for scene time ``t``, and
:meth:`SimScene.bench_intervals` gives when each person's bottom-centre point entered and left the
bench area, in seconds from scene start. :class:`SimSource` attaches the boxes to every frame it
delivers and records the wall-clock time of scene start (:attr:`SimSource.scene_started_at`).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from cctv.config import Camera
from cctv.contracts import FrameMessage
from ingest.frames import build_frame_message
from ingest.sim_assets import background, load_assets, scaled_sprite
from ingest.sources import CapturedFrame, PersonBox

BENCH = (0.40, 0.70, 0.60, 0.90)  # x1, y1, x2, y2 as fractions of the frame
PERSON_HEIGHT_M = 1.75
NOISE_SIGMA = 2.5
NOISE_POOL = 6
SCENES = ("loiterer", "walkers", "empty")
SCRIPT_START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class BenchInterval:
    person_id: int
    entered_bench_at: float  # seconds from scene start
    left_bench_at: float


@dataclass(frozen=True)
class Actor:
    """A person following a piecewise-linear path of (t, x, y) keyframes; x, y = bottom-centre."""

    person_id: int
    sprite: int
    keyframes: tuple[tuple[float, float, float], ...]
    height: int
    phase: float  # desynchronises sway and gait between people

    @property
    def t_start(self) -> float:
        return self.keyframes[0][0]

    @property
    def t_end(self) -> float:
        return self.keyframes[-1][0]

    def position(self, t: float) -> tuple[float, float, bool, bool] | None:
        """(x, y, standing, facing_left) at ``t``, or None when not in the scene."""
        if not self.t_start <= t <= self.t_end:
            return None
        for (t0, x0, y0), (t1, x1, y1) in zip(self.keyframes, self.keyframes[1:], strict=False):
            if t0 <= t <= t1:
                f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                standing = x0 == x1 and y0 == y1
                return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, standing, x1 < x0
        t0, x0, y0 = self.keyframes[-1]
        return x0, y0, True, False


def person_height(foot_y: float, frame_h: int) -> int:
    """Perspective: people lower in the frame are nearer and taller (0.28 to 0.39 of frame height)."""
    return round(frame_h * (0.28 + 0.30 * (foot_y / frame_h - 0.6)))


def walking_speed(height: int, rng: random.Random) -> float:
    """Pixels per second for 1.1-1.6 m/s at this person's scale."""
    return rng.uniform(1.1, 1.6) * height / PERSON_HEIGHT_M


class SimScene:
    """A scripted scene; ``render(t, index)`` is a pure function of (url params, t, index)."""

    def __init__(self, scene: str, *, seed: int = 0, size: tuple[int, int] = (768, 576),
                 dwell: float = 90.0, start: float = 3.0) -> None:  # fmt: skip
        if scene not in SCENES:
            raise ValueError(f"unknown sim scene {scene!r}; known: {', '.join(SCENES)}")
        self.scene, self.seed, self.size, self.dwell, self.start = scene, seed, size, dwell, start
        width, height = size
        self._rng = random.Random(f"{scene}:{seed}")  # noqa: S311 - a scene script, not a secret
        self._actors: list[Actor] = []
        self._intervals: deque[BenchInterval] = deque(maxlen=10_000)
        self._next_spawn = 1.0
        self._next_id = 1
        self._background = background(width, height).astype(np.int16)
        noise_rng = np.random.default_rng(seed)
        self._noise = [
            noise_rng.normal(0, NOISE_SIGMA, (height, width, 3)).round().astype(np.int16)
            for _ in range(NOISE_POOL)
        ]
        load_assets()
        if scene == "loiterer":
            self._add(self._loiterer())

    # ------------------------------------------------------------------ scripts

    def _bench_px(self) -> tuple[float, float, float, float]:
        w, h = self.size
        return BENCH[0] * w, BENCH[1] * h, BENCH[2] * w, BENCH[3] * h

    def _add(self, actor: Actor) -> None:
        self._actors.append(actor)
        bx1, by1, bx2, by2 = self._bench_px()
        # Paths are horizontal lines, so the bench interval is where x crosses bx1 and bx2.
        (_, x0, y), (_, x1, _) = actor.keyframes[0], actor.keyframes[-1]
        if by1 <= y <= by2:
            enter_x, leave_x = (bx1, bx2) if x1 > x0 else (bx2, bx1)
            self._intervals.append(
                BenchInterval(
                    actor.person_id, self._time_at_x(actor, enter_x), self._time_at_x(actor, leave_x)
                )
            )

    @staticmethod
    def _time_at_x(actor: Actor, x: float) -> float:
        for (t0, x0, _), (t1, x1, _) in zip(actor.keyframes, actor.keyframes[1:], strict=False):
            if x0 != x1 and min(x0, x1) <= x <= max(x0, x1):
                return t0 + (t1 - t0) * (x - x0) / (x1 - x0)
        raise ValueError("path does not cross x")

    def _loiterer(self) -> Actor:
        w, h = self.size
        rng = self._rng
        foot_y = rng.uniform(0.76, 0.84) * h
        height = person_height(foot_y, h)
        speed = walking_speed(height, rng)
        bx1, _, bx2, _ = self._bench_px()
        from_left = rng.random() < 0.5
        stand_x = rng.uniform(0.46, 0.54) * w
        margin = height * 0.4  # start and end fully outside the frame
        x_in, x_out = (-margin, w + margin) if from_left else (w + margin, -margin)
        transit = (bx2 - bx1) / speed  # seconds inside the bench area while walking
        stand = max(0.0, self.dwell - transit)
        t_arrive = self.start + abs(stand_x - x_in) / speed
        t_leave = t_arrive + stand
        keyframes = (
            (self.start, x_in, foot_y),
            (t_arrive, stand_x, foot_y),
            (t_leave, stand_x, foot_y),
            (t_leave + abs(x_out - stand_x) / speed, x_out, foot_y),
        )
        # The beige-coat man: HOG finds him in ~95% of frames (the black-coat man far less often).
        actor = Actor(self._next_id, rng.choice((0, 2)), keyframes, height, rng.uniform(0, 6.28))
        self._next_id += 1
        return actor

    def _spawn_walkers_until(self, t: float) -> None:
        w, h = self.size
        rng = self._rng
        while self.scene == "walkers" and self._next_spawn <= t:
            foot_y = rng.uniform(0.62, 0.95) * h
            height = person_height(foot_y, h)
            speed = walking_speed(height, rng)
            margin = height * 0.4
            x0, x1 = (-margin, w + margin) if rng.random() < 0.5 else (w + margin, -margin)
            start = self._next_spawn
            keyframes = ((start, x0, foot_y), (start + abs(x1 - x0) / speed, x1, foot_y))
            sprite = rng.choice((0, 2, 0, 2, 0, 2, 1, 3))  # mostly the figure HOG detects best
            self._add(Actor(self._next_id, sprite, keyframes, height, rng.uniform(0, 6.28)))
            self._next_id += 1
            self._next_spawn = start + rng.uniform(3.0, 9.0)

    # ------------------------------------------------------------------ ground truth

    def bench_intervals(self, until: float | None = None) -> list[BenchInterval]:
        """Bench visits of people who appeared up to scene time ``until`` (all scripted ones if None)."""
        if until is not None:
            self._spawn_walkers_until(until)
        return [i for i in self._intervals if until is None or i.entered_bench_at <= until]

    def _placements(self, t: float) -> list[tuple[Actor, int, int, bool]]:
        """(actor, left, top, mirrored) of everyone visible at ``t``, far to near (draw order)."""
        self._spawn_walkers_until(t)
        if len(self._actors) > 64:  # forget people who left long ago: a 24/7 scene must stay bounded
            self._actors = [a for a in self._actors if a.t_end >= t - 60]
        placed = []
        for actor in self._actors:
            where = actor.position(t)
            if where is None:
                continue
            x, y, standing, facing_left = where
            if standing:  # idle sway of a standing person: a few pixels, a few seconds per cycle
                x += 2.0 * math.sin(2 * math.pi * t / 3.1 + actor.phase)
            else:  # gait bob
                y -= 2.0 * abs(math.sin(2 * math.pi * 1.8 * t + actor.phase))
            sprite_index = actor.sprite % 2
            mirrored = facing_left != bool(actor.sprite // 2)
            sprite = scaled_sprite(sprite_index, actor.height, mirrored)
            sh, sw = sprite.alpha.shape[:2]
            placed.append((actor, round(x - sw / 2), round(y - sh), mirrored))
        placed.sort(key=lambda p: p[2] + p[0].height)
        return placed

    def people_at(self, t: float) -> list[PersonBox]:
        """Boxes (clipped to the frame) of everyone visible at scene time ``t``."""
        w, h = self.size
        boxes = []
        for actor, left, top, mirrored in self._placements(t):
            sprite = scaled_sprite(actor.sprite % 2, actor.height, mirrored)
            sh, sw = sprite.alpha.shape[:2]
            x1, y1, x2, y2 = max(0, left), max(0, top), min(w, left + sw), min(h, top + sh)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                boxes.append(PersonBox(actor.person_id, (x1, y1, x2, y2)))
        return boxes

    # ------------------------------------------------------------------ rendering

    def render(self, t: float, index: int) -> tuple[npt.NDArray[np.uint8], list[PersonBox]]:
        """Frame ``index`` at scene time ``t`` and its ground truth."""
        w, h = self.size
        frame = self._background.copy()
        for actor, left, top, mirrored in self._placements(t):
            sprite = scaled_sprite(actor.sprite % 2, actor.height, mirrored)
            sh, sw = sprite.alpha.shape[:2]
            x1, y1, x2, y2 = max(0, left), max(0, top), min(w, left + sw), min(h, top + sh)
            if x2 <= x1 or y2 <= y1:
                continue
            alpha = sprite.alpha[y1 - top : y2 - top, x1 - left : x2 - left]
            person = sprite.bgr[y1 - top : y2 - top, x1 - left : x2 - left]
            roi = frame[y1:y2, x1:x2]
            roi[:] = (roi * (1 - alpha) + person * alpha).astype(np.int16)
        digest = hashlib.blake2b(f"{self.seed}:{index}".encode(), digest_size=2).digest()
        frame += self._noise[int.from_bytes(digest, "big") % NOISE_POOL]
        image = np.clip(frame, 0, 255).astype(np.uint8)
        return image, self.people_at(t)


def scene_from_url(url: str) -> SimScene:
    """Parse ``sim://<scene>?...`` (grammar in the module docstring); errors name the bad part."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "sim":
        raise ValueError(f"{url}: not a sim:// URL")
    params = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
    known = {"seed", "size", "dwell", "start"}
    if set(params) - known:
        raise ValueError(
            f"{url}: unknown sim parameter(s) {sorted(set(params) - known)}; known: {sorted(known)}"
        )
    try:
        seed = int(params.get("seed", "0"))
        width, _, height = params.get("size", "768x576").lower().partition("x")
        size = (int(width), int(height))
        dwell = float(params.get("dwell", "90"))
        start = float(params.get("start", "3"))
    except ValueError as exc:
        raise ValueError(f"{url}: bad sim parameter value: {exc}") from exc
    if not (64 <= size[0] <= 3840 and 64 <= size[1] <= 2160) or dwell < 0 or start < 0:
        raise ValueError(f"{url}: size must be 64x64..3840x2160, dwell and start >= 0")
    return SimScene(parsed.netloc or parsed.path.strip("/"), seed=seed, size=size, dwell=dwell, start=start)


class SimSource:
    """A :class:`~ingest.sources.FrameSource` rendering a scene in real time at ``fps``.

    Scene time is ``frame index / fps``; when the machine falls behind, frames are skipped so
    scene time keeps up with the wall clock (dwell times must stay true for the detector).
    """

    def __init__(self, scene: SimScene, fps: float) -> None:
        self.scene, self.fps = scene, fps
        self.scene_started_at: datetime | None = None
        self._t0 = 0.0
        self._index = 0

    def open(self) -> None:
        self._t0 = time.monotonic()
        self.scene_started_at = datetime.now(UTC)
        self._index = 0

    def read(self) -> CapturedFrame | None:
        if self.scene_started_at is None:
            raise RuntimeError("read before open")
        now = time.monotonic()
        behind = math.floor((now - self._t0) * self.fps)
        index = max(self._index, behind)
        delay = self._t0 + index / self.fps - now
        if delay > 0:
            time.sleep(delay)
        self._index = index + 1
        image, truth = self.scene.render(index / self.fps, index)
        return CapturedFrame(
            image=image, capture_ts=datetime.now(UTC), native_fps=self.fps, truth=tuple(truth)
        )

    def close(self) -> None:
        self.scene_started_at = None


def scripted_frames(camera: Camera, seconds: float, start: datetime = SCRIPT_START) -> list[FrameMessage]:
    """A sim camera's first ``seconds`` of frames, capture times on the scene's own timeline from ``start``.

    Not paced in real time (unlike :class:`SimSource`): for tests and benchmarks that need the same
    frames, with known capture times, as fast as they can be rendered. Frame ``i`` is scene time
    ``i / camera.fps``, so ``scene_from_url(camera.source).people_at(i / camera.fps)`` is its truth.
    """
    scene = scene_from_url(camera.source)
    stream = str(uuid.uuid4())
    frames = []
    for index in range(int(seconds * camera.fps)):
        t = index / camera.fps
        image, _ = scene.render(t, index)
        at = start + timedelta(seconds=t)
        message = build_frame_message(camera, image, stream_id=stream, seq=index, capture_ts=at)
        frames.append(message.model_copy(update={"ingest_ts": at}))  # stamped on the scene's timeline
    return frames
