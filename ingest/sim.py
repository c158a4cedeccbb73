"""Simulated cameras: real pedestrians from a real photo, scripted, deterministic per seed.

URL grammar::

    sim://<scene>[?param=value&...]

    scene     loiterer | walkers | empty | group | occluded | tamper | lights | trees | graffiti | removal
    seed      int, default 0       same seed -> same script and same pixels frame for frame
    size      WxH, default 768x576 frame size (the street photo is stretched to fit)
    start     seconds, default 3   loiterer, group, occluded, graffiti, removal: when the first person
                                   starts walking in
    dwell     seconds              loiterer, occluded (default 90): time the person's bottom-centre point
                                   spends in the bench area; group (90): time all of them are in it
                                   together; graffiti (20), removal (5): time standing at the wall / bin
    people    2..6, default 3      group: how many
    gaps      1..4, default 2      occluded: how many times the loiterer is hidden (2-6 s each)
    kind      cover|defocus|spray|knock, default cover   tamper: what happens to the camera
    at        seconds              tamper (default 20): when it starts; lights (15): first switch
    duration  seconds >= 1         tamper: how long it lasts (default 30; knock: for ever unless given)
    every     seconds >= 2, default 20   lights: time between switches
    walkers   0|1                  passers-by crossing as in ``walkers`` (default 1 for tamper, lights and
                                   trees, 0 for the others)

Scenes (:data:`BENCH`, :data:`WALL`, :data:`OBJECT_AREA` and :data:`FOLIAGE` are x1, y1, x2, y2 fractions
of the frame; a camera's zone polygon for a scene is the rectangle named in brackets):

- ``loiterer`` [BENCH]: one person walks in from the left or right edge, stays in the bench area
  (normalized x 0.40-0.60, y 0.70-0.90) for ``dwell`` seconds, walks out the far side; the scene
  then stays empty.
- ``walkers`` [BENCH]: people cross the frame at walking speed without stopping, forever, with gaps
  of 3-9 s; those crossing at bench height pass through the bench area in under 2 s.
- ``empty``: the background only.
- ``group`` [BENCH]: ``people`` people arrive 2-5 s apart from either side, stand in the bench area
  shoulder to shoulder (the nearer, the further to one side), all together for ``dwell`` s, and
  leave 0.5-2 s apart.
- ``occluded`` [BENCH]: a loiterer as in ``loiterer``, hidden ``gaps`` times for 2-6 s each by a van
  that stops in front of them or a passer-by close to the camera who pauses in front; the loiterer
  shuffles 15-45 px (at 768 px width) while hidden.
- ``tamper`` [whole frame]: at ``at`` the camera is covered (a dark hand or cloth over > 85 % of the
  view), defocused (Gaussian blur, sigma 6 px at 768 px width), sprayed (semi-opaque paint of one
  colour with drips, growing over 2 s to cover 60-90 %) or knocked (the view shifts 8-15 % and turns
  2-6 degrees; what comes into view is the photo around the frame, reflected beyond the photo's
  edges), each within 0.5 s and undone after ``duration``.
- ``lights`` [BENCH, whole frame]: no incident. The light switches abruptly at ``at``, ``at + every``,
  ...: alternately to a changed spell (dimmer with a colour cast, gain 0.35-0.5, or greyscale IR night
  mode with gain 0.55-0.85 and twice the noise) and back to normal. A tamper detector must not alert.
- ``trees`` [BENCH; FOLIAGE is where to expect motion]: no incident. Leaves hang into the top right
  corner (> 10 % of the frame) and move in the wind, with gusts, all the time.
- ``graffiti`` [WALL]: a person walks to the bus side and stands ``dwell`` s, the upper 30 % of
  their box inside WALL (their feet are below it, on the pavement), while a tag of thick spray-paint
  curves appears stroke by stroke inside WALL (5-20 % of its area); they walk away, the paint stays.
- ``removal`` [OBJECT_AREA]: a green wheelie bin stands on the pavement; a person walks up, stands at
  it ``dwell`` s and wheels it away the way they came (walkers, if asked for, may cross the area).

Every frame gets mild sensor noise from a pre-generated pool. People are the two full-body
pedestrians of ultralytics' ``bus.jpg`` (and their mirror images), 140-225 px tall in a 576 px
frame depending on how far down the frame they stand (the passer-by right in front of the camera in
``occluded``: 426 px); the OpenCV HOG people detector finds them.

Ground truth: :meth:`SimScene.people_at` gives ``(person_id, box)`` for scene time ``t``, and
:meth:`SimScene.bench_intervals` gives when each person's bottom-centre point entered and left the
bench area, in seconds from scene start. In the newer scenes ``people_at`` leaves out anyone whose
silhouette is more than 60 % covered by nearer people or things or by a tamper's cover or paint (the
leaves of ``trees`` hang above everyone's head and are not counted), and a knock moves the boxes
with the view. :meth:`SimScene.light_switches` tells when the light changed and
:meth:`SimScene.truth_events` lists the incidents (:class:`SceneEvent`, times in scene seconds,
regions in pixels with x2, y2 exclusive):

- ``loitering``: one per bench visit of at least ``min_stay_s`` (3 s): start = entered the bench
  area, end = left it (the whole stay, however often the person was hidden). An alert is due at
  start + the camera's dwell threshold if that is before end.
- ``group_loitering``: start = when the last of the group entered the bench area (from then all of
  them are in it), end = when the first of them left; ``person_ids`` = the group.
- ``tamper``: start = ``at`` (the effect is complete 0.5 s later, 2 s for spray: mark ``full_at``),
  end = ``at + duration`` or None; ``detail`` = the kind; a knock's marks give ``dx_px``, ``dy_px``
  and ``angle_deg`` (counter-clockwise, about the frame centre).
- ``area_change``: start = when the painter's box stopped overlapping WALL (the change is judgeable
  from then), end None, region = bounding box of the pixels the paint changed (the exact mask:
  :meth:`SimScene.graffiti_mask`); marks ``painting_started``, ``painting_finished``,
  ``person_left_wall``, ``person_left_frame``.
- ``object_removed``: start = when neither the person nor the bin overlaps OBJECT_AREA any more,
  end None, region = the bin's box before it was taken; marks ``taken``, ``area_clear``,
  ``person_left_frame``.

:class:`SimSource` attaches the boxes to every frame it delivers and records the wall-clock time of
scene start (:attr:`SimSource.scene_started_at`).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from cctv.config import Camera
from cctv.contracts import FrameMessage
from ingest.frames import build_frame_message
from ingest.sim_assets import (
    Layer,
    background,
    blend_sprite,
    hidden_fraction,
    load_assets,
    scaled_sprite,
    silhouette_edges,
)
from ingest.sim_scenes import (
    BENCH,
    DEFAULT_DWELL,
    FOLIAGE,
    HIDDEN,
    OBJECT_AREA,
    PERSON_HEIGHT_M,
    SCENE_PARAMS,
    TAMPER_KINDS,
    WALKERS_BY_DEFAULT,
    WALL,
    Actor,
    BenchInterval,
    SceneEvent,
    SceneOptions,
    Script,
    build_script,
    options_from_params,
    person_height,
    visits,
    walking_speed,
)
from ingest.sources import CapturedFrame, PersonBox

__all__ = [
    "BENCH", "FOLIAGE", "OBJECT_AREA", "PERSON_HEIGHT_M", "SCENES", "TAMPER_KINDS", "WALL", "Actor",
    "BenchInterval", "SceneEvent", "SceneOptions", "SimScene", "SimSource", "iter_scripted_frames",
    "person_height", "scene_from_url", "scripted_frames", "walking_speed",
]  # fmt: skip

NOISE_SIGMA = 2.5
NOISE_POOL = 6
ORIGINAL_SCENES = ("loiterer", "walkers", "empty")  # drawn exactly as before the newer scenes came
SCENES = (*ORIGINAL_SCENES, "group", "occluded", "tamper", "lights", "trees", "graffiti", "removal")
SCRIPT_START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


class SimScene:
    """A scripted scene; ``render(t, index)`` is a pure function of (url params, t, index)."""

    def __init__(self, scene: str, *, seed: int = 0, size: tuple[int, int] = (768, 576),
                 dwell: float | None = None, start: float = 3.0,
                 options: SceneOptions | None = None) -> None:  # fmt: skip
        if scene not in SCENES:
            raise ValueError(f"unknown sim scene {scene!r}; known: {', '.join(SCENES)}")
        dwell = DEFAULT_DWELL.get(scene, 90.0) if dwell is None else dwell
        self.scene, self.seed, self.size, self.dwell, self.start = scene, seed, size, dwell, start
        self.options = options = options or SceneOptions()
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
        self._script: Script | None = None
        # Walkers of the newer scenes draw from their own generator, so the scripted people do not
        # depend on how far the walkers have been spawned (queries may come in any order).
        walkers = options.walkers if options.walkers is not None else scene in WALKERS_BY_DEFAULT
        self._walker_rng = self._rng if scene == "walkers" else None
        if scene == "loiterer":
            self._add(self._loiterer())
        elif scene not in ORIGINAL_SCENES:
            if walkers:
                self._walker_rng = random.Random(f"{scene}:{seed}:walkers")  # noqa: S311
            ids = itertools.count(1)
            self._script = build_script(
                scene, self._rng, size, seed=seed, dwell=dwell, start=start, options=options, ids=ids
            )
            self._next_id = next(ids)
            for actor in self._script.actors:
                self._add(actor)
            self._background_u8 = background(width, height)

    # ------------------------------------------------------------------ scripts

    def _bench_px(self) -> tuple[float, float, float, float]:
        w, h = self.size
        return BENCH[0] * w, BENCH[1] * h, BENCH[2] * w, BENCH[3] * h

    def _add(self, actor: Actor) -> None:
        self._actors.append(actor)
        bx1, by1, bx2, by2 = self._bench_px()
        if self._script is not None:  # paths with stops and shuffles: exact segment-by-segment visits
            for entered, left in visits(actor.keyframes, (bx1, by1, bx2, by2)):
                self._intervals.append(BenchInterval(actor.person_id, entered, left))
            return
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
        rng = self._walker_rng
        while rng is not None and self._next_spawn <= t:
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

    def truth_events(self, until: float | None = None, min_stay_s: float = 3.0) -> list[SceneEvent]:
        """The scene's incidents that started by ``until`` (definitions in the module docstring), by start."""
        x1, y1, x2, y2 = (round(v) for v in self._bench_px())
        marks = self._script.marks if self._script is not None else {}
        events = []
        for i in self.bench_intervals(until):
            stay = i.left_bench_at - i.entered_bench_at
            if stay >= min_stay_s:
                detail = f"{stay:.1f} s in the bench area"
                where, who, times = (x1, y1, x2, y2), (i.person_id,), marks.get(i.person_id, ())
                events.append(
                    SceneEvent("loitering", i.entered_bench_at, i.left_bench_at, where, who, detail, times)
                )
        if self._script is not None:
            events += [e for e in self._script.events if until is None or e.start_s <= until]
        return sorted(events, key=lambda e: e.start_s)

    def graffiti_mask(self) -> npt.NDArray[np.bool_] | None:
        """Frame-sized mask of the pixels the finished graffiti changed (noise-free); None: no graffiti."""
        mask = self._script.change_mask if self._script is not None else None
        return None if mask is None else mask.copy()

    def light_switches(self, until: float) -> list[tuple[float, str]]:
        """(time, "dim" | "ir" | "normal") of each lighting switch up to ``until`` (``lights`` scene only)."""
        lights = self._script.lights if self._script is not None else None
        return [] if lights is None else lights.switches(until)

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

    def _layers(self, t: float) -> list[Layer]:
        """People and things at ``t``, far to near (draw order: by the bottom edge, people first on ties)."""
        layers: list[Layer] = [
            (scaled_sprite(actor.sprite % 2, actor.height, mirrored), left, top, actor.person_id)
            for actor, left, top, mirrored in self._placements(t)
        ]
        if self._script is not None and self._script.props:
            for prop in self._script.props:
                box = prop.box(t)
                if box is not None:
                    layers.append((prop.sprite, box[0], box[1], None))
            layers.sort(key=lambda layer: layer[2] + layer[0].alpha.shape[0])
        return layers

    def _people(self, layers: list[Layer], t: float) -> list[PersonBox]:
        w, h = self.size
        views = self._script.view if self._script is not None else []
        lens = next((a for a in (v.occlusion(t) for v in views) if a is not None), None)
        warp = next((m for m in (v.geometry(t) for v in views) if m is not None), None)
        boxes = []
        for index, (sprite, left, top, person_id) in enumerate(layers):
            sh, sw = sprite.alpha.shape[:2]
            x1, y1, x2, y2 = max(0, left), max(0, top), min(w, left + sw), min(h, top + sh)
            if person_id is None or x2 - x1 < 2 or y2 - y1 < 2:
                continue
            if self._script is not None and hidden_fraction(layers, index, (x1, y1, x2, y2), lens) > HIDDEN:
                continue
            if warp is not None:  # a knocked camera: the box of the moved silhouette, clipped again
                edges = silhouette_edges(sprite, left, top)  # only the part the camera saw moves into view
                edges = np.clip(edges[(edges[:, 1] >= 0) & (edges[:, 1] <= h)], 0, (w, h))
                moved = edges @ warp[:, :2].T + warp[:, 2]
                x1, y1 = max(0, math.floor(moved[:, 0].min())), max(0, math.floor(moved[:, 1].min()))
                x2, y2 = min(w, math.ceil(moved[:, 0].max())), min(h, math.ceil(moved[:, 1].max()))
                if x2 - x1 < 2 or y2 - y1 < 2:
                    continue
            boxes.append(PersonBox(person_id, (x1, y1, x2, y2)))
        return boxes

    def people_at(self, t: float) -> list[PersonBox]:
        """Boxes (clipped to the frame) of everyone visible at scene time ``t``."""
        return self._people(self._layers(t), t)

    # ------------------------------------------------------------------ rendering

    def render(self, t: float, index: int) -> tuple[npt.NDArray[np.uint8], list[PersonBox]]:
        """Frame ``index`` at scene time ``t`` and its ground truth."""
        script = self._script
        if script is not None and script.wall is not None:  # paint on the scenery, under the people
            canvas = self._background_u8.copy()
            script.wall.apply(canvas, t)
            frame = canvas.astype(np.int16)
        else:
            frame = self._background.copy()
        layers = self._layers(t)
        for sprite, left, top, _ in layers:
            blend_sprite(frame, sprite, left, top)
        extra_noise = 0
        if script is not None and script.view:  # light, wind and tamper act on the whole view
            view = frame.astype(np.uint8)
            for effect in script.view:
                view = effect.apply(view, t)
                extra_noise = max(extra_noise, effect.noise_gain(t))
            frame = view.astype(np.int16)
        digest = hashlib.blake2b(f"{self.seed}:{index}".encode(), digest_size=2).digest()
        pick = int.from_bytes(digest, "big") % NOISE_POOL
        frame += self._noise[pick]
        if extra_noise:  # a darker, amplified picture: more visible sensor noise
            frame += self._noise[(pick + NOISE_POOL // 2) % NOISE_POOL] * np.int16(extra_noise)
        image = np.clip(frame, 0, 255).astype(np.uint8)
        return image, self._people(layers, t)


def scene_from_url(url: str) -> SimScene:
    """Parse ``sim://<scene>?...`` (grammar in the module docstring); errors name the bad part."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "sim":
        raise ValueError(f"{url}: not a sim:// URL")
    params = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
    known = set().union(*SCENE_PARAMS.values()) | {"seed", "size"}
    if set(params) - known:
        raise ValueError(
            f"{url}: unknown sim parameter(s) {sorted(set(params) - known)}; known: {sorted(known)}"
        )
    scene = parsed.netloc or parsed.path.strip("/")
    takes = SCENE_PARAMS.get(scene, set())
    if scene in SCENE_PARAMS and set(params) - {"seed", "size"} - takes:
        wrong = sorted(set(params) - {"seed", "size"} - takes)
        raise ValueError(
            f"{url}: sim parameter(s) {wrong} do not apply to scene {scene!r}; it takes {sorted(takes)}"
        )
    try:
        seed = int(params.get("seed", "0"))
        width, _, height = params.get("size", "768x576").lower().partition("x")
        size = (int(width), int(height))
        dwell = float(params["dwell"]) if "dwell" in params else None
        start = float(params.get("start", "3"))
        options = options_from_params(params)
    except ValueError as exc:
        raise ValueError(f"{url}: bad sim parameter value: {exc}") from exc
    if not (64 <= size[0] <= 3840 and 64 <= size[1] <= 2160) or (dwell or 0) < 0 or start < 0:
        raise ValueError(f"{url}: size must be 64x64..3840x2160, dwell and start >= 0")
    try:
        return SimScene(scene, seed=seed, size=size, dwell=dwell, start=start, options=options)
    except ValueError as exc:
        raise ValueError(f"{url}: {exc}") from exc


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
    return list(iter_scripted_frames(camera, seconds, start))


def iter_scripted_frames(
    camera: Camera, seconds: float, start: datetime = SCRIPT_START
) -> Iterator[FrameMessage]:
    """:func:`scripted_frames` one at a time: a long scene (minutes of JPEGs) never sits in memory whole."""
    scene = scene_from_url(camera.source)
    stream = str(uuid.uuid4())
    for index in range(int(seconds * camera.fps)):
        t = index / camera.fps
        image, _ = scene.render(t, index)
        at = start + timedelta(seconds=t)
        message = build_frame_message(camera, image, stream_id=stream, seq=index, capture_ts=at)
        yield message.model_copy(update={"ingest_ts": at})  # stamped on the scene's timeline
