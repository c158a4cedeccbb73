"""Scripts of the simulated scenes: who walks where, what happens to the picture, and the truth.

A script is built once per scene from its seed (:func:`build_script`); :class:`ingest.sim.SimScene`
draws it. Positions are fractions of the frame, so any frame size works (the photo is stretched).
The constants below are the zones a camera on each scene should configure (see :mod:`ingest.sim`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import numpy as np
import numpy.typing as npt

from ingest.sim_assets import Sprite, background, bin_sprite, clean_photo, scaled_sprite, van_sprite
from ingest.sim_effects import Foliage, Lights, Paint, Tamper, ViewEffect, graffiti

BENCH = (0.40, 0.70, 0.60, 0.90)  # x1, y1, x2, y2 as fractions of the frame: where loiterers stand
WALL = (0.60, 0.08, 0.84, 0.30)  # the bus side the graffiti scene paints on
OBJECT_AREA = (0.655, 0.46, 0.765, 0.67)  # around the wheelie bin of the removal scene
FOLIAGE = (0.48, 0.0, 1.0, 0.36)  # where the trees scene's leaves hang into the view
PAINTER_SPOT = (0.62, 0.47)  # bottom-centre of the graffiti painter while painting
BIN_SPOT = (0.71, 0.64)  # bottom-centre of the wheelie bin
HIDDEN = 0.6  # a person with more than this fraction of their silhouette covered is not visible
TAMPER_KINDS = ("cover", "defocus", "spray", "knock")
PERSON_HEIGHT_M = 1.75
RISE_S = 0.5  # tamper effects arrive (and go) within this time
EventKind = Literal["loitering", "group_loitering", "tamper", "area_change", "object_removed"]
Box = tuple[int, int, int, int]
Ids = Iterator[int]
Keyframes = tuple[tuple[float, float, float], ...]  # (t, x, y) of a bottom-centre point


@dataclass(frozen=True)
class BenchInterval:
    person_id: int
    entered_bench_at: float  # seconds from scene start
    left_bench_at: float


@dataclass(frozen=True)
class SceneEvent:
    """One incident of the scene's ground truth (definitions in :mod:`ingest.sim`)."""

    kind: EventKind
    start_s: float
    end_s: float | None  # None: lasts for ever (a knocked camera, graffiti, a missing object)
    region: Box | None  # pixels, x2 and y2 exclusive
    person_ids: tuple[int, ...]
    detail: str
    marks: tuple[tuple[str, float], ...] = ()  # named times (and knock geometry) behind start/end

    def mark(self, name: str) -> float:
        return next(value for key, value in self.marks if key == name)


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


@dataclass(frozen=True)
class Prop:
    """A rigid thing (a bin, a van) on a keyframed bottom-centre path, drawn in depth order with people."""

    sprite: Sprite
    keyframes: tuple[tuple[float, float, float], ...]
    there_from_start: bool = False  # stands at its first keyframe from the scene start (an object in place)

    def position(self, t: float) -> tuple[float, float] | None:
        first, last = self.keyframes[0], self.keyframes[-1]
        if t > last[0] or (t < first[0] and not self.there_from_start):
            return None
        if t <= first[0]:
            return first[1], first[2]
        for (t0, x0, y0), (t1, x1, y1) in pairwise(self.keyframes):
            if t0 <= t <= t1:
                f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f
        return last[1], last[2]

    def box(self, t: float) -> Box | None:
        where = self.position(t)
        if where is None:
            return None
        sh, sw = self.sprite.alpha.shape[:2]
        left, top = round(where[0] - sw / 2), round(where[1] - sh)
        return left, top, left + sw, top + sh


@dataclass(frozen=True)
class SceneOptions:
    """Parameters of the newer scenes; None means the scene's own default (see :mod:`ingest.sim`)."""

    people: int = 3
    gaps: int = 2
    kind: str = "cover"
    at: float | None = None
    duration: float | None = None
    every: float = 20.0
    walkers: bool | None = None

    def __post_init__(self) -> None:
        checks = (
            (2 <= self.people <= 6, f"people must be 2..6, not {self.people}"),
            (1 <= self.gaps <= 4, f"gaps must be 1..4, not {self.gaps}"),
            (self.kind in TAMPER_KINDS, f"kind must be one of {', '.join(TAMPER_KINDS)}, not {self.kind!r}"),
            (self.at is None or self.at >= 0, f"at must be >= 0, not {self.at}"),
            (self.duration is None or self.duration >= 1, f"duration must be >= 1 s, not {self.duration}"),
            (self.every >= 2, f"every must be >= 2 s, not {self.every}"),
        )
        if problems := [message for ok, message in checks if not ok]:
            raise ValueError("; ".join(problems))


# Parameters each scene takes besides seed and size; the original scenes keep accepting (and ignoring)
# dwell and start, as they always have.
SCENE_PARAMS = {
    "loiterer": {"dwell", "start"}, "walkers": {"dwell", "start"}, "empty": {"dwell", "start"},
    "group": {"people", "dwell", "start", "walkers"}, "occluded": {"gaps", "dwell", "start", "walkers"},
    "tamper": {"kind", "at", "duration", "walkers"}, "lights": {"at", "every", "walkers"},
    "trees": {"walkers"}, "graffiti": {"dwell", "start", "walkers"}, "removal": {"dwell", "start", "walkers"},
}  # fmt: skip
DEFAULT_DWELL = {"graffiti": 20.0, "removal": 5.0}  # others: 90 s
WALKERS_BY_DEFAULT = {"walkers", "tamper", "lights", "trees"}


def options_from_params(params: dict[str, str]) -> SceneOptions:
    """:class:`SceneOptions` from URL parameters (strings); ValueError names the bad value."""
    walkers = params.get("walkers")
    if walkers not in (None, "0", "1"):
        raise ValueError(f"walkers must be 0 or 1, not {walkers!r}")
    return SceneOptions(
        people=int(params.get("people", "3")),
        gaps=int(params.get("gaps", "2")),
        kind=params.get("kind", "cover"),
        at=float(params["at"]) if "at" in params else None,
        duration=float(params["duration"]) if "duration" in params else None,
        every=float(params.get("every", "20")),
        walkers=None if walkers is None else walkers == "1",
    )


@dataclass
class Script:
    """What a scene adds to walkers on the street: scripted people, props, paint, view effects, truth."""

    actors: list[Actor] = field(default_factory=list)
    props: list[Prop] = field(default_factory=list)
    events: list[SceneEvent] = field(default_factory=list)  # all but single-person loitering
    marks: dict[int, tuple[tuple[str, float], ...]] = field(default_factory=dict)  # per person loitering
    wall: Paint | None = None  # paint on the scenery: drawn under the people
    view: list[ViewEffect] = field(default_factory=list)
    change_mask: npt.NDArray[np.bool_] | None = None  # pixels the graffiti changed, frame-sized
    lights: Lights | None = None


def person_height(foot_y: float, frame_h: int) -> int:
    """Perspective: people lower in the frame are nearer and taller (0.28 to 0.39 of frame height)."""
    return round(frame_h * (0.28 + 0.30 * (foot_y / frame_h - 0.6)))


def walking_speed(height: int, rng: random.Random) -> float:
    """Pixels per second for 1.1-1.6 m/s at this person's scale."""
    return rng.uniform(1.1, 1.6) * height / PERSON_HEIGHT_M


def rect_px(
    rect: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[float, float, float, float]:
    w, h = size
    return rect[0] * w, rect[1] * h, rect[2] * w, rect[3] * h


def visits(
    keyframes: Sequence[tuple[float, float, float]], rect: tuple[float, ...]
) -> list[tuple[float, float]]:
    """When a keyframed bottom-centre path is inside ``rect`` (pixels): exact, segment by segment."""
    spans: list[tuple[float, float]] = []
    for (t0, x0, y0), (t1, x1, y1) in pairwise(keyframes):
        lo, hi = 0.0, 1.0
        for p0, p1, a, b in ((x0, x1, rect[0], rect[2]), (y0, y1, rect[1], rect[3])):
            if p0 == p1:
                lo, hi = (lo, hi) if a <= p0 <= b else (1.0, 0.0)
            else:
                sa, sb = (a - p0) / (p1 - p0), (b - p0) / (p1 - p0)
                lo, hi = max(lo, min(sa, sb)), min(hi, max(sa, sb))
        if lo <= hi:
            span = (t0 + lo * (t1 - t0), t0 + hi * (t1 - t0))
            if spans and abs(spans[-1][1] - span[0]) < 1e-9:
                span = (spans.pop()[0], span[1])
            spans.append(span)
    return spans


def _sprite_width(sprite: int, height: int) -> int:
    return int(scaled_sprite(sprite % 2, height, False).alpha.shape[1])


def _actor_box(actor: Actor) -> Callable[[float], tuple[float, ...] | None]:
    half = _sprite_width(actor.sprite, actor.height) / 2

    def box(t: float) -> tuple[float, ...] | None:
        where = actor.position(t)
        return (
            None if where is None else (where[0] - half, where[1] - actor.height, where[0] + half, where[1])
        )

    return box


def _clear_of(
    box_at: Callable[[float], tuple[float, ...] | None], area: tuple[float, ...], after: float
) -> float:
    """First time from ``after`` (to 0.01 s) at which the box no longer overlaps ``area`` (or is gone)."""
    t = after
    while (
        (b := box_at(t)) is not None
        and b[0] < area[2]
        and area[0] < b[2]
        and b[1] < area[3]
        and area[1] < b[3]
    ):
        t += 0.01
    return round(t, 2)


def _walk(
    t0: float, foot_y: float, speed: float, x_in: float, stops: Sequence[tuple[float, float]], x_out: float
) -> tuple[tuple[float, float, float], ...]:
    """Keyframes: walk in from ``x_in``, stand at each ``(x, until)`` stop in turn, walk out to ``x_out``."""
    keyframes = [(t0, x_in, foot_y)]
    for x, until in stops:
        arrive = keyframes[-1][0] + abs(x - keyframes[-1][1]) / speed
        keyframes += [(arrive, x, foot_y), (max(arrive, until), x, foot_y)]
    keyframes.append((keyframes[-1][0] + abs(x_out - keyframes[-1][1]) / speed, x_out, foot_y))
    return tuple(keyframes)


# ---------------------------------------------------------------------------------------- scripts


def _group(rng: random.Random, size: tuple[int, int], dwell: float, start: float, n: int, ids: Ids) -> Script:
    """``n`` people come 2-5 s apart, stand in the bench area together ``dwell`` s, leave 0.5-2 s apart."""
    w, h = size
    bench = rect_px(BENCH, size)
    # Nearer people stand further to one side: shoulder to shoulder, each still mostly visible (HOG
    # finds ~90 % of them; with depths shuffled, one hides behind another and it finds ~70 %).
    depths = [0.73 + 0.14 * i / (n - 1) for i in range(n)]
    if rng.random() < 0.5:
        depths.reverse()
    plans, t = [], start
    for i in range(n):
        foot_y = depths[i] * h
        height = person_height(foot_y, h)
        speed = walking_speed(height, rng)
        x_in = -0.4 * height if rng.random() < 0.5 else w + 0.4 * height
        entered = t + abs((bench[0] if x_in < 0 else bench[2]) - x_in) / speed
        plans.append((foot_y, height, speed, x_in, (0.405 + 0.19 * i / (n - 1)) * w, t, entered))
        t += rng.uniform(2.0, 5.0)
    leave_at = {i: 0.0 for i in range(n)}
    leave = (
        max(p[6] for p in plans) + dwell
    )  # the first one leaves the bench exactly dwell s after the last came
    for i in rng.sample(range(n), n):
        leave_at[i] = leave
        leave += rng.uniform(0.5, 2.0)
    script = Script()
    for i, (foot_y, height, speed, x_in, x, t0, _) in enumerate(plans):
        x_out = -0.4 * height if rng.random() < 0.5 else w + 0.4 * height
        until = leave_at[i] - abs((bench[0] if x_out < 0 else bench[2]) - x) / speed
        path = _walk(t0, foot_y, speed, x_in, [(x, until)], x_out)
        script.actors.append(Actor(next(ids), rng.choice((0, 2)), path, height, rng.uniform(0, 6.28)))
    stays = [visits(a.keyframes, bench)[0] for a in script.actors]
    together, first_left = max(s[0] for s in stays), min(s[1] for s in stays)
    if first_left > together:
        who = tuple(a.person_id for a in script.actors)
        detail = f"{n} people in the bench area together for {first_left - together:.1f} s"
        script.events.append(SceneEvent("group_loitering", together, first_left, _px(bench), who, detail))
    return script


def _occluded(
    rng: random.Random, size: tuple[int, int], dwell: float, start: float, gaps: int, ids: Ids
) -> Script:
    """A loiterer hidden ``gaps`` times for 2-6 s, by a van stopping or a passer-by pausing in front."""
    w, h = size
    bench = rect_px(BENCH, size)
    foot_y = rng.uniform(0.76, 0.84) * h
    height = person_height(foot_y, h)
    speed = walking_speed(height, rng)
    x_in = -0.4 * height if rng.random() < 0.5 else w + 0.4 * height
    x_out = -0.4 * height if rng.random() < 0.5 else w + 0.4 * height
    x = rng.uniform(0.47, 0.53) * w
    left_bench = start + abs((bench[0] if x_in < 0 else bench[2]) - x_in) / speed + dwell
    arrive = start + abs(x - x_in) / speed
    standing = left_bench - abs(bench[2] - bench[0]) / speed - arrive  # less a margin for the shifts
    slot = (standing - 4.0) / gaps
    if slot < 12.0:
        need = dwell + (12.0 * gaps + 4.0 - standing)
        raise ValueError(
            f"occluded: dwell {dwell:g} s is too short for {gaps} gaps; use dwell >= {math.ceil(need)}"
        )
    script, stops, hidden = Script(), [], []
    person_id = next(ids)
    van = van_sprite(background(*size), round(0.5 * w), round(0.48 * h))
    for k in range(gaps):
        gap = rng.uniform(2.0, 6.0)
        g0 = arrive + 2.0 + k * slot + 2.0 + rng.uniform(0.0, slot - gap - 4.0)
        g1 = g0 + gap
        new_x = min(0.55 * w, max(0.45 * w, x + rng.choice((-1, 1)) * rng.uniform(15, 45) * w / 768))
        stops.append((x, g0 + 0.25 * gap))  # shuffles to new_x while hidden
        mid = (x + new_x) / 2
        side = rng.random() < 0.5
        if rng.random() < 0.5:  # a van drives in, stops in front, drives on
            xa, xb = (-0.26 * w, 1.26 * w) if side else (1.26 * w, -0.26 * w)
            bottom, fast = 0.99 * h, 0.9 * w
            path: Keyframes = ((g0 - abs(mid - xa) / fast, xa, bottom), (g0, mid, bottom), (g1, mid, bottom),
                               (g1 + abs(xb - mid) / fast, xb, bottom))  # fmt: skip
            script.props.append(Prop(van, path))
        else:  # a passer-by close to the camera stops right in front (reading a phone), walks on
            near = round(0.74 * h)
            pace = walking_speed(near, rng)
            xa, xb = (-0.4 * near, w + 0.4 * near) if side else (w + 0.4 * near, -0.4 * near)
            path = _walk(g0 - abs(mid - xa) / pace, 1.12 * h, pace, xa, [(mid, g1)], xb)
            script.actors.append(Actor(next(ids), rng.choice((1, 3)), path, near, rng.uniform(0, 6.28)))
        hidden += [("hidden_from", g0), ("hidden_until", g1)]
        x = new_x
    stops.append((x, left_bench - abs((bench[0] if x_out < 0 else bench[2]) - x) / speed))
    path = _walk(start, foot_y, speed, x_in, stops, x_out)
    script.actors.insert(0, Actor(person_id, rng.choice((0, 2)), path, height, rng.uniform(0, 6.28)))
    script.marks[person_id] = tuple(hidden)
    return script


def _graffiti(rng: random.Random, size: tuple[int, int], dwell: float, start: float, ids: Ids) -> Script:
    """A person stands at the wall for ``dwell`` s painting a tag (from 15 % to 85 % of the stay), leaves."""
    if dwell < 4:
        raise ValueError(f"graffiti: dwell must be >= 4 s to paint anything, not {dwell:g}")
    w, h = size
    foot_y, x = PAINTER_SPOT[1] * h, PAINTER_SPOT[0] * w
    height = person_height(foot_y, h)
    speed = walking_speed(height, rng)
    x_in = -0.4 * height if rng.random() < 0.5 else w + 0.4 * height
    x_out = -0.4 * height if rng.random() < 0.5 else w + 0.4 * height
    arrive = start + abs(x - x_in) / speed
    path = _walk(start, foot_y, speed, x_in, [(x, arrive + dwell)], x_out)
    actor = Actor(next(ids), rng.choice((0, 2)), path, height, rng.uniform(0, 6.28))
    wall = rect_px(WALL, size)
    paint = graffiti(rng, _px(wall), arrive + 0.15 * dwell, arrive + 0.85 * dwell)
    clean = background(*size)
    painted = clean.copy()
    paint.apply(painted, math.inf)
    mask = (painted != clean).any(axis=2)
    ys, xs = np.nonzero(mask)
    region = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    gone = _clear_of(_actor_box(actor), wall, arrive + dwell)
    out = _clear_of(_actor_box(actor), (0, 0, w, h), gone)
    marks = (("painting_started", paint.start), ("painting_finished", paint.start + paint.done_s),
             ("person_left_wall", gone), ("person_left_frame", out))  # fmt: skip
    event = SceneEvent("area_change", gone, None, region, (actor.person_id,), "graffiti on the wall", marks)
    return Script(actors=[actor], events=[event], wall=paint, change_mask=mask)


def _removal(rng: random.Random, size: tuple[int, int], dwell: float, start: float, ids: Ids) -> Script:
    """A person walks up to the wheelie bin, stands at it ``dwell`` s and wheels it away the way they came."""
    w, h = size
    ox, oy = BIN_SPOT[0] * w, BIN_SPOT[1] * h
    height = person_height(oy, h)
    bin_ = bin_sprite(round(0.52 * height), rng.getrandbits(32))
    sw = bin_.alpha.shape[1]
    sprite = rng.choice((0, 2))
    side = -1 if rng.random() < 0.5 else 1
    x = ox + side * (sw / 2 + _sprite_width(sprite, height) / 2 + 2)
    x_in = side * (0.4 * height + sw + abs(ox - x)) + (w if side > 0 else 0)
    speed = walking_speed(height, rng)
    taken = start + abs(x - x_in) / speed + dwell
    actor = Actor(
        next(ids), sprite, _walk(start, oy, speed, x_in, [(x, taken)], x_in), height, rng.uniform(0, 6.28)
    )
    prop = Prop(bin_, ((taken, ox, oy), (actor.t_end, x_in + ox - x, oy)), there_from_start=True)
    left, top, _, _ = prop.box(0.0) or (0, 0, 0, 0)
    ys, xs = np.nonzero(bin_.alpha[..., 0] > 0.004)  # what the blend visibly changes (1/255)
    region = (left + int(xs.min()), top + int(ys.min()), left + int(xs.max()) + 1, top + int(ys.max()) + 1)
    area = rect_px(OBJECT_AREA, size)
    clear = max(_clear_of(_actor_box(actor), area, taken), _clear_of(prop.box, area, taken))
    out = _clear_of(_actor_box(actor), (0, 0, w, h), taken)
    marks = (("taken", taken), ("area_clear", clear), ("person_left_frame", out))
    event = SceneEvent(
        "object_removed", clear, None, region, (actor.person_id,), "wheelie bin taken away", marks
    )
    return Script(actors=[actor], props=[prop], events=[event])


def _px(rect: tuple[float, float, float, float]) -> Box:
    return round(rect[0]), round(rect[1]), round(rect[2]), round(rect[3])


def build_script(
    scene: str, rng: random.Random, size: tuple[int, int], *, seed: int, dwell: float, start: float,
    options: SceneOptions, ids: Ids,
) -> Script:  # fmt: skip
    """The script of one of the newer scenes (the original three need none)."""
    if scene == "group":
        return _group(rng, size, dwell, start, options.people, ids)
    if scene == "occluded":
        return _occluded(rng, size, dwell, start, options.gaps, ids)
    if scene == "graffiti":
        return _graffiti(rng, size, dwell, start, ids)
    if scene == "removal":
        return _removal(rng, size, dwell, start, ids)
    if scene == "tamper":
        at = 20.0 if options.at is None else options.at
        duration = options.duration if options.duration is not None or options.kind == "knock" else 30.0
        end = None if duration is None else at + duration
        photo = clean_photo() if options.kind == "knock" else None
        tamper = Tamper(rng, size, options.kind, at, end, photo, RISE_S)
        marks: tuple[tuple[str, float], ...] = (
            ("full_at", at + (2.0 if options.kind == "spray" else RISE_S)),
        )
        if tamper.knock is not None:
            knock = tamper.knock
            marks += (("dx_px", knock.dx), ("dy_px", knock.dy), ("angle_deg", knock.angle))
        return Script(events=[SceneEvent("tamper", at, end, None, (), options.kind, marks)], view=[tamper])
    if scene == "lights":
        lights = Lights(seed, 15.0 if options.at is None else options.at, options.every)
        return Script(view=[lights], lights=lights)
    if scene == "trees":
        return Script(view=[Foliage(rng, size, FOLIAGE)])
    raise ValueError(f"no script for scene {scene!r}")
