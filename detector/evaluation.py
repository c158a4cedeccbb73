"""Detection and tracking accuracy against human ground truth: pure metric functions.

Why here and not in a test helper: ``cctv eval`` reports these numbers for every
backend, and the tests hold the pipeline to floors set from them, so both must
compute them the same way. Nothing here reads files or runs a detector; the
runner (:mod:`detector.evaluation_pets`) feeds it.

Definitions (as in the MOT benchmarks, so numbers compare with published ones):

- A hypothesis (a tracked box) matches a ground-truth box when IoU >= 0.5.
- CLEAR-MOT (Bernardin & Stiefelhagen 2008): per frame, a ground-truth object
  keeps the track it was matched to in the previous frame while they still
  overlap; the rest are paired by an optimal assignment (max total IoU). An
  identity switch is a ground-truth object matched to a different track than
  the last one it was matched to (the ``motmetrics`` convention).
  MOTA = 1 - (FN + FP + IDSW) / GT; precision and recall come from the same matches.
- IDF1 (Ristani et al. 2016): one optimal assignment between ground-truth ids
  and track ids over the whole sequence, maximising the frames in which each
  pair overlaps; IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN).
- Ground-truth rows with confidence 0 (MOT's "ignore" flag) are not objects to
  find; a hypothesis that only covers such a box is dropped rather than counted
  as a false positive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import lap
import numpy as np

IOU_THRESHOLD = 0.5

Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in pixels."""


@dataclass(frozen=True)
class FrameObjects:
    """The identified boxes of one frame (ground truth or tracker output)."""

    ids: tuple[int, ...] = ()
    boxes: tuple[Box, ...] = ()
    ignored: tuple[Box, ...] = ()  # ground truth only: annotated but not to be scored

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.boxes):
            raise ValueError(f"{len(self.ids)} ids for {len(self.boxes)} boxes")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"an id appears twice in one frame: {sorted(self.ids)}")


FrameMap = Mapping[int, FrameObjects]
"""Frame number -> objects; a frame missing from the mapping has none."""


# --------------------------------------------------------------------------- ground truth


def parse_mot(text: str) -> dict[int, FrameObjects]:
    """MOT-format rows ``frame,id,x,y,w,h,conf,...`` -> per-frame objects (x, y = top-left corner).

    Rows with conf 0 become ``ignored`` boxes of their frame.
    """
    kept: dict[int, list[tuple[int, Box]]] = defaultdict(list)
    ignored: dict[int, list[Box]] = defaultdict(list)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < 7:
            raise ValueError(f"line {number}: expected at least 7 comma-separated fields, got {len(fields)}")
        frame, identity = int(float(fields[0])), int(float(fields[1]))
        x, y, w, h, conf = (float(v) for v in fields[2:7])
        box = (x, y, x + w, y + h)
        if conf == 0:
            ignored[frame].append(box)
        else:
            kept[frame].append((identity, box))
    out = {}
    for frame in sorted(set(kept) | set(ignored)):
        rows = kept.get(frame, [])
        out[frame] = FrameObjects(
            tuple(i for i, _ in rows), tuple(b for _, b in rows), tuple(ignored.get(frame, []))
        )
    return out


# --------------------------------------------------------------------------- matching


def iou_matrix(a: Iterable[Box], b: Iterable[Box]) -> np.ndarray:
    """(len(a), len(b)) intersection over union of xyxy boxes."""
    first = np.asarray(list(a), np.float64).reshape(-1, 4)
    second = np.asarray(list(b), np.float64).reshape(-1, 4)
    x1 = np.maximum(first[:, None, 0], second[None, :, 0])
    y1 = np.maximum(first[:, None, 1], second[None, :, 1])
    x2 = np.minimum(first[:, None, 2], second[None, :, 2])
    y2 = np.minimum(first[:, None, 3], second[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (first[:, 2] - first[:, 0]) * (first[:, 3] - first[:, 1])
    area_b = (second[:, 2] - second[:, 0]) * (second[:, 3] - second[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def assign(score: np.ndarray, minimum: float) -> list[tuple[int, int]]:
    """Row/column pairs maximising the total ``score`` among pairs scoring >= ``minimum``.

    Why ``lap.lapjv`` with a cost limit: it is the optimal (Jonker-Volgenant) solver ByteTrack
    already ships with; pairs below ``minimum`` cost more than leaving both sides unmatched.
    """
    rows, cols = score.shape
    if rows == 0 or cols == 0:
        return []
    valid = score >= minimum
    if not valid.any():
        return []
    # cost in [0, 1] for valid pairs, never chosen otherwise; leaving a row and a column unmatched
    # costs exactly the limit, so any valid pair is preferred to none.
    top = float(score[valid].max())
    cost = np.where(valid, top - score, top - minimum + 2.0)
    _, x, _ = lap.lapjv(cost, extend_cost=True, cost_limit=top - minimum + 1.0)
    return [(int(r), int(c)) for r, c in enumerate(x) if c >= 0 and valid[r, c]]


def scored_hypotheses(truth: FrameObjects, hypotheses: FrameObjects) -> FrameObjects:
    """The hypotheses minus those that cover only ignored ground truth (not false positives)."""
    if not truth.ignored or not hypotheses.ids:
        return hypotheses
    on_ignored = np.asarray(iou_matrix(hypotheses.boxes, truth.ignored) >= IOU_THRESHOLD).any(axis=1)
    on_real = np.asarray(iou_matrix(hypotheses.boxes, truth.boxes) >= IOU_THRESHOLD).any(axis=1)
    keep = np.flatnonzero(on_real | ~on_ignored).tolist()
    return FrameObjects(tuple(hypotheses.ids[i] for i in keep), tuple(hypotheses.boxes[i] for i in keep))


# --------------------------------------------------------------------------- scores


@dataclass
class TrackingScores:
    """Counts over a sequence; the rates are derived so they cannot disagree with the counts."""

    frames: int = 0
    gt: int = 0  # ground-truth boxes scored
    hypotheses: int = 0  # tracker boxes scored
    tp: int = 0
    fp: int = 0
    fn: int = 0
    idsw: int = 0
    idtp: int = 0
    idfp: int = 0
    idfn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.gt if self.gt else 0.0

    @property
    def mota(self) -> float:
        return 1.0 - (self.fn + self.fp + self.idsw) / self.gt if self.gt else 0.0

    @property
    def idf1(self) -> float:
        denominator = 2 * self.idtp + self.idfp + self.idfn
        return 2 * self.idtp / denominator if denominator else 0.0


@dataclass
class _ClearState:
    previous: dict[int, int] = field(default_factory=dict)  # gt id -> track id matched last frame
    last_seen: dict[int, int] = field(default_factory=dict)  # gt id -> track id matched most recently


def _clear_frame(truth: FrameObjects, hyp: FrameObjects, state: _ClearState, scores: TrackingScores) -> None:
    iou = iou_matrix(truth.boxes, hyp.boxes)
    gt_index = {g: i for i, g in enumerate(truth.ids)}
    hyp_index = {h: j for j, h in enumerate(hyp.ids)}
    matches: dict[int, int] = {}
    for g, h in state.previous.items():  # continuity: keep last frame's pairs that still overlap
        i, j = gt_index.get(g), hyp_index.get(h)
        if i is not None and j is not None and iou[i, j] >= IOU_THRESHOLD:
            matches[g] = h
    free_gt = [i for i, g in enumerate(truth.ids) if g not in matches]
    taken = set(matches.values())
    free_hyp = [j for j, h in enumerate(hyp.ids) if h not in taken]
    for r, c in assign(iou[np.ix_(free_gt, free_hyp)], IOU_THRESHOLD):
        matches[truth.ids[free_gt[r]]] = hyp.ids[free_hyp[c]]
    for g, h in matches.items():
        if g in state.last_seen and state.last_seen[g] != h:
            scores.idsw += 1
        state.last_seen[g] = h
    state.previous = matches
    scores.tp += len(matches)
    scores.fp += len(hyp.ids) - len(matches)
    scores.fn += len(truth.ids) - len(matches)


def _identity_scores(
    overlaps: Mapping[tuple[int, int], int], gt_total: int, hyp_total: int, scores: TrackingScores
) -> None:
    """IDTP of the one-to-one gt-id/track-id assignment with the most overlapping frames."""
    gt_ids = sorted({g for g, _ in overlaps})
    hyp_ids = sorted({h for _, h in overlaps})
    counts = np.zeros((len(gt_ids), len(hyp_ids)))
    for (g, h), n in overlaps.items():
        counts[gt_ids.index(g), hyp_ids.index(h)] = n
    idtp = sum(int(counts[r, c]) for r, c in assign(counts, 1.0))
    scores.idtp = idtp
    scores.idfn = gt_total - idtp
    scores.idfp = hyp_total - idtp


def evaluate(truth: FrameMap, hypotheses: FrameMap, frames: Iterable[int]) -> TrackingScores:
    """CLEAR-MOT and identity scores of ``hypotheses`` over the given frame numbers, in order.

    Only ``frames`` are scored (e.g. the frames an analytics rate sampled); a frame
    either side has no entry in is a frame with nobody in it.
    """
    scores = TrackingScores()
    state = _ClearState()
    overlaps: dict[tuple[int, int], int] = defaultdict(int)
    empty = FrameObjects()
    for frame in frames:
        gt = truth.get(frame, empty)
        hyp = scored_hypotheses(gt, hypotheses.get(frame, empty))
        scores.frames += 1
        scores.gt += len(gt.ids)
        scores.hypotheses += len(hyp.ids)
        _clear_frame(gt, hyp, state, scores)
        iou = iou_matrix(gt.boxes, hyp.boxes)
        for i, j in zip(*np.nonzero(iou >= IOU_THRESHOLD), strict=True):
            overlaps[(gt.ids[i], hyp.ids[j])] += 1
    _identity_scores(overlaps, scores.gt, scores.hypotheses, scores)
    return scores
