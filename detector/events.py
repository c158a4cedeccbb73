"""What every rule stage shares: where a frame lies in Kafka, the pre-roll ring, and the event it emits.

Loitering and the vandalism signals (camera tamper, protected-area change,
object removed) all turn one camera's frames into incident lifecycle events;
one event type lets the pipeline turn any of them into an ``IncidentMessage``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import numpy as np

from cctv.contracts import FrameSpan, IncidentEvent
from detector.detections import Region


@dataclass(frozen=True)
class FramePosition:
    """Where a frame came from: its stream position (for replay-stable ids) and its Kafka offset."""

    stream_id: str
    seq: int
    partition: int
    offset: int


@dataclass(frozen=True)
class RuleEvent:
    """One lifecycle event of an incident of any rule; the worker turns it into an IncidentMessage."""

    incident_id: UUID
    event: IncidentEvent
    rule: str  # one of IncidentMessage.rule
    zone_id: str | None  # None for camera-wide rules (tamper)
    track_ids: tuple[int, ...]
    started_at: datetime
    threshold_at: datetime
    event_at: datetime
    ended_at: datetime | None
    dwell_s: float
    frames: FrameSpan
    summary: str
    # Vandalism signals: the pixel rectangle that changed, and the frame from before the change
    # (the "before" snapshot; the event's own frame is the "after").
    change_region: Region | None = None
    before_image: np.ndarray | None = field(default=None, repr=False, compare=False)


class FrameRing:
    """(capture time, offset) of the last ``span_s`` seconds of one camera: the evidence pre-roll.

    Why offsets: the evidence store reads the frames back by offset (Tansu's
    offsets_for_times answers 0 for any time).
    """

    def __init__(self, span_s: float) -> None:
        self.span = timedelta(seconds=span_s)
        self.partition: int | None = None
        self._entries: deque[tuple[datetime, int]] = deque()

    def add(self, at: datetime, position: FramePosition) -> None:
        if position.partition != self.partition:  # offsets of another partition are meaningless here
            self._entries.clear()
            self.partition = position.partition
        self._entries.append((at, position.offset))
        while self._entries and at - self._entries[0][0] > self.span:
            self._entries.popleft()

    def start_for(self, at: datetime) -> int:
        """Offset of the earliest kept frame no more than ``span_s`` before ``at``."""
        for ts, offset in self._entries:
            if at - ts <= self.span:
                return offset
        return self._entries[-1][1]

    def __len__(self) -> int:
        return len(self._entries)


def frame_span(position: FramePosition, start: int) -> FrameSpan:
    """The frames of an event: from the pre-roll start (never past this frame) to this frame."""
    return FrameSpan(
        partition=position.partition, start_offset=min(start, position.offset), end_offset=position.offset
    )
