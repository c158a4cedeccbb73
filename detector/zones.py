"""Zone geometry: which analytics zone a person stands in.

Zones are polygons in normalised coordinates (fractions of frame width and
height) so the registry survives a change of stream resolution. A person is in
a zone when their bottom-centre point (the feet: where they stand on the
ground) is inside the polygon; the box centre would put a tall person standing
next to a low zone inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from cctv.rule_config import ActiveHours

LONDON = ZoneInfo("Europe/London")


def points_in_polygon(points: np.ndarray, polygon: Sequence[tuple[float, float]]) -> np.ndarray:
    """(N,) bool: even-odd ray casting of (N, 2) points against a polygon (same coordinate space)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at_y = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside = crosses & (x < x_at_y)
    return np.asarray(np.count_nonzero(inside, axis=1) % 2 == 1)


def point_in_polygon(point: tuple[float, float], polygon: Sequence[tuple[float, float]]) -> bool:
    return bool(points_in_polygon(np.asarray([point]), polygon)[0])


def in_active_hours(at: datetime, hours: ActiveHours | None) -> bool:
    """Whether ``at`` (aware) falls in the daily window, in Europe/London local time (GMT/BST).

    A window with start > end wraps past midnight (22:00-06:00); start == end means all day.
    """
    if hours is None:
        return True
    local = at.astimezone(LONDON).time()
    if hours.start == hours.end:
        return True
    if hours.start < hours.end:
        return hours.start <= local < hours.end
    return local >= hours.start or local < hours.end


def polygon_pixels(polygon: Sequence[tuple[float, float]], width: int, height: int) -> np.ndarray:
    """(K, 1, 2) int32 vertices in pixels, the shape cv2.polylines wants."""
    return (np.asarray(polygon, np.float64) * [width, height]).round().astype(np.int32).reshape(-1, 1, 2)
