"""Reads an incident's frames back from the frames topic: the evidence window.

Why offsets and not times: the incident names the partition and the offset of
its first pre-roll frame (``FrameSpan``), and Tansu answers ``offset 0`` to any
``offsets_for_times`` lookup, so the reader seeks to that offset and reads
forward. Frames of other cameras share the partition and are skipped by key
without being decoded.

When the window ends:
- normally at the first frame of the camera captured after
  ``ended_at + post_roll_s`` (the window is *complete*);
- if the camera stopped sending, the post-roll never comes: once the reader
  has caught up with the end of the partition it waits ``read_timeout_s`` and
  then seals what exists, saying so in the manifest (``complete`` false and the
  reason). The wait counts from the first catch-up, so it is bounded.

Nothing is silently dropped: a frame of the camera whose bytes do not match its
ingest SHA-256 (or whose metadata is unreadable) is recorded as an integrity
problem; missing sequence numbers are reported as gaps.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from cctv.config import EvidenceSettings
from cctv.contracts import META_HEADER, ContractError, FrameMessage, IncidentMessage, decode

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500


class WindowReadInterrupted(RuntimeError):
    """The stop event was set while reading; nothing may be sealed from a partial read."""


@dataclass(frozen=True)
class WindowFrame:
    """A verified frame of the window and where it was read from."""

    frame: FrameMessage
    offset: int


@dataclass(frozen=True)
class IntegrityProblem:
    """A record of the camera that is not a verifiable frame; kept in the manifest, never hidden."""

    offset: int
    reason: str
    stream_id: str | None = None
    seq: int | None = None
    capture_ts: str | None = None
    claimed_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "reason": self.reason,
            "stream_id": self.stream_id,
            "seq": self.seq,
            "capture_ts": self.capture_ts,
            "claimed_sha256": self.claimed_sha256,
        }


@dataclass(frozen=True)
class SeqGap:
    """Frames lost between two frames of the same capture stream."""

    stream_id: str
    after_seq: int
    next_seq: int
    after_capture_ts: datetime
    next_capture_ts: datetime

    @property
    def missing(self) -> int:
        return self.next_seq - self.after_seq - 1

    def to_json(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "after_seq": self.after_seq,
            "next_seq": self.next_seq,
            "missing": self.missing,
            "after_capture_ts": self.after_capture_ts.astimezone(UTC).isoformat(),
            "next_capture_ts": self.next_capture_ts.astimezone(UTC).isoformat(),
        }


@dataclass(frozen=True)
class FrameWindow:
    """The frames of one incident's evidence window, in the order they were ingested."""

    camera_id: str
    topic: str
    partition: int
    start_offset: int
    window_start: datetime
    window_end: datetime
    frames: tuple[WindowFrame, ...]
    integrity_problems: tuple[IntegrityProblem, ...]
    gaps: tuple[SeqGap, ...]
    complete: bool
    end_reason: str
    last_offset_read: int | None
    duplicates_skipped: int = 0


def find_gaps(frames: tuple[WindowFrame, ...]) -> tuple[SeqGap, ...]:
    """Missing sequence numbers within each capture stream (seq restarts with a new stream id)."""
    last: dict[str, WindowFrame] = {}
    gaps: list[SeqGap] = []
    for item in frames:
        previous = last.get(item.frame.stream_id)
        if previous is not None and item.frame.seq > previous.frame.seq + 1:
            gaps.append(
                SeqGap(
                    item.frame.stream_id,
                    previous.frame.seq,
                    item.frame.seq,
                    previous.frame.capture_ts,
                    item.frame.capture_ts,
                )
            )
        if previous is None or item.frame.seq > previous.frame.seq:
            last[item.frame.stream_id] = item
    return tuple(gaps)


def _header_fields(record: ConsumerRecord) -> dict[str, Any]:
    """Best-effort metadata of a frame that failed verification, so the manifest can say which one."""
    try:
        meta = dict(record.headers or []).get(META_HEADER)
        fields = json.loads(meta) if meta is not None else {}
    except (ValueError, TypeError):
        return {}
    return fields if isinstance(fields, dict) else {}


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass
class _Collector:
    """Accumulates one camera's records until the window is past its end."""

    camera_id: str
    window_start: datetime
    window_end: datetime
    frames: list[WindowFrame] = field(default_factory=list)
    problems: list[IntegrityProblem] = field(default_factory=list)
    seen: dict[tuple[str, int], str] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, record: ConsumerRecord) -> bool:
        """Take one record of the camera; True once it lies past the window's end."""
        try:
            frame = decode(FrameMessage, record.value, list(record.headers or []))
        except ContractError as exc:
            return self._problem(record, str(exc))
        if frame.camera_id != self.camera_id:
            return self._problem(
                record, f"record keyed {self.camera_id!r} carries camera {frame.camera_id!r}"
            )
        if frame.capture_ts > self.window_end:
            return True
        if frame.capture_ts < self.window_start:
            return False
        key = (frame.stream_id, frame.seq)
        earlier = self.seen.get(key)
        if earlier is not None:
            if earlier == frame.sha256:
                self.duplicates += 1  # a producer retry: the same frame twice
            else:
                self.problems.append(
                    IntegrityProblem(
                        record.offset,
                        "a second, different frame with the same stream and seq (first one kept)",
                        frame.stream_id,
                        frame.seq,
                        frame.capture_ts.astimezone(UTC).isoformat(),
                        frame.sha256,
                    )
                )
            return False
        self.seen[key] = frame.sha256
        self.frames.append(WindowFrame(frame, record.offset))
        return False

    def _problem(self, record: ConsumerRecord, reason: str) -> bool:
        fields = _header_fields(record)
        captured = _parse_ts(fields.get("capture_ts"))
        if captured is not None and captured > self.window_end:
            return True
        if captured is not None and captured < self.window_start:
            return False
        seq = fields.get("seq")
        stream = fields.get("stream_id")
        claimed = fields.get("sha256")
        self.problems.append(
            IntegrityProblem(
                offset=record.offset,
                reason=reason,
                stream_id=stream if isinstance(stream, str) else None,
                seq=seq if isinstance(seq, int) else None,
                capture_ts=captured.astimezone(UTC).isoformat() if captured else None,
                claimed_sha256=claimed if isinstance(claimed, str) else None,
            )
        )
        log.warning(
            "camera %s frame at offset %s failed verification: %s", self.camera_id, record.offset, reason
        )
        return False


class WindowReader:
    """Reads evidence windows with one group-less consumer (``assign``/``seek``, never a group join)."""

    def __init__(self, consumer: KafkaConsumer, frames_topic: str, settings: EvidenceSettings) -> None:
        self.consumer, self.topic, self.settings = consumer, frames_topic, settings

    def window_bounds(self, incident: IncidentMessage) -> tuple[datetime, datetime]:
        ended = incident.ended_at or incident.event_at
        return (
            incident.started_at - timedelta(seconds=self.settings.pre_roll_s),
            ended + timedelta(seconds=self.settings.post_roll_s),
        )

    def read(self, incident: IncidentMessage, stop: threading.Event | None = None) -> FrameWindow:
        span = incident.frames
        tp = TopicPartition(self.topic, span.partition)
        window_start, window_end = self.window_bounds(incident)
        collector = _Collector(incident.camera_id, window_start, window_end)
        camera_key = incident.camera_id.encode()
        self.consumer.assign([tp])
        self.consumer.seek(tp, span.start_offset)
        caught_up_at: float | None = None
        last_offset: int | None = None
        newest = -1  # the highest offset read: what counts as progress
        complete, reason = False, ""
        while not complete:
            if stop is not None and stop.is_set():
                raise WindowReadInterrupted(f"stopped while reading the window of {incident.incident_id}")
            records = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS).get(tp, [])
            progressed = False
            for record in records:
                # Tansu may answer a fetch with a whole batch that starts before the offset asked for.
                if record.offset < span.start_offset:
                    continue
                progressed = progressed or record.offset > newest
                newest = max(newest, record.offset)
                last_offset = record.offset
                if record.key == camera_key and collector.add(record):
                    complete, reason = True, f"post-roll reached at offset {record.offset}"
                    break
            if complete:
                continue
            if progressed:
                # Still arriving: read_timeout_s counts from the last new record, so a camera whose frames
                # trickle in (or a broker whose end offset lags, as Tansu's does) is read to its post-roll
                # instead of being cut short. Records handed back again are not progress.
                caught_up_at = None
                continue
            if self.consumer.position(tp) >= self.consumer.end_offsets([tp])[tp]:
                now = time.monotonic()
                caught_up_at = caught_up_at if caught_up_at is not None else now
                if now - caught_up_at >= self.settings.read_timeout_s:
                    reason = (
                        f"end of partition reached and no frame of the camera after the post-roll "
                        f"({window_end.astimezone(UTC).isoformat()}) arrived within "
                        f"{self.settings.read_timeout_s:g}s: sealed with the frames that exist"
                    )
                    log.warning("incident %s: %s", incident.incident_id, reason)
                    break
        frames = tuple(collector.frames)
        return FrameWindow(
            camera_id=incident.camera_id,
            topic=self.topic,
            partition=span.partition,
            start_offset=span.start_offset,
            window_start=window_start,
            window_end=window_end,
            frames=frames,
            integrity_problems=tuple(collector.problems),
            gaps=find_gaps(frames),
            complete=complete,
            end_reason=reason,
            last_offset_read=last_offset,
            duplicates_skipped=collector.duplicates,
        )
