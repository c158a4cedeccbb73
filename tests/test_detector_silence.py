"""A camera that goes silent mid-incident: the pipeline closes it on its last frame, by an injected clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cctv.config import Camera, CameraRegistry, DetectorSettings
from cctv.contracts import FrameMessage, IncidentEvent, IncidentMessage
from cctv.rule_config import LoiteringRuleConfig, Zone, ZoneRules
from detector.backends.hog import HogBackend
from detector.pipeline import DetectorPipeline, FrameInput
from ingest.sim import scripted_frames

ZONE = Zone(
    id="bench",
    name="Bench",
    polygon=((0.30, 0.60), (0.70, 0.60), (0.70, 0.98), (0.30, 0.98)),
    rules=ZoneRules(loitering=LoiteringRuleConfig(dwell_s=4.0, reentry_grace_s=1.0)),
)
DYING = Camera(id="dying", name="Dies", source="sim://loiterer?dwell=30&start=0&seed=1", zones=(ZONE,))
ALIVE = Camera(id="alive", name="Alive", source="sim://empty", zones=(ZONE,))
SILENCE_S = 30.0


@dataclass
class Clock:
    """The pipeline's monotonic clock, advanced by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def frames() -> dict[str, list[FrameMessage]]:
    # The loiterer is past the 4 s dwell at ~6.4 s and stays 30 s, but the stream ends after 8 s.
    return {"dying": scripted_frames(DYING, 8.0), "alive": scripted_frames(ALIVE, 2.0)}


def make_pipeline(clock: Clock) -> DetectorPipeline:
    registry = CameraRegistry(cameras=(DYING, ALIVE))
    return DetectorPipeline(registry, HogBackend(), DetectorSettings(), pre_roll_s=2.0, clock=clock)


def feed(pipeline: DetectorPipeline, frames: list[FrameMessage], partition: int) -> list[IncidentMessage]:
    return pipeline.process([FrameInput(f, partition, 500 + f.seq) for f in frames]).incidents


def test_silent_camera_closes_on_its_last_frame_and_is_forgotten(
    frames: dict[str, list[FrameMessage]],
) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock)
    opened = feed(pipeline, frames["dying"], partition=0)
    assert [i.event for i in opened] == [IncidentEvent.OPENED]
    feed(pipeline, frames["alive"][:1], partition=1)

    clock.now += SILENCE_S - 0.5  # not yet
    assert pipeline.close_silent(SILENCE_S) == []
    feed(pipeline, frames["alive"][1:2], partition=1)  # the other camera is still talking

    clock.now += 0.5
    closed = pipeline.close_silent(SILENCE_S)
    assert [(i.event, i.camera_id) for i in closed] == [(IncidentEvent.CLOSED, "dying")]
    (close,) = closed
    last = frames["dying"][-1]
    assert close.incident_id == opened[0].incident_id
    assert close.summary.endswith("camera silent for 30s")
    assert close.event_at == last.capture_ts  # the camera's time, not the detector's
    assert close.ended_at is not None and close.ended_at <= last.capture_ts
    assert close.frames.partition == 0 and close.frames.end_offset == 500 + last.seq
    assert close.frames.start_offset == opened[0].frames.start_offset
    assert close.snapshot_jpeg is None  # no frame to draw on; the OPENED event has the snapshot
    assert pipeline.camera_partitions() == {"alive": 1}  # state dropped: bounded
    assert pipeline.close_silent(SILENCE_S) == []  # closed once

    clock.now += SILENCE_S  # the empty camera falls silent too: nothing open, just forgotten
    assert pipeline.close_silent(SILENCE_S) == []
    assert pipeline.camera_partitions() == {}
    assert pipeline.stats.incidents == 2


def test_camera_on_a_lagging_partition_is_not_silent(frames: dict[str, list[FrameMessage]]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock)
    assert [i.event for i in feed(pipeline, frames["dying"], partition=3)] == [IncidentEvent.OPENED]
    clock.now += 10 * SILENCE_S
    assert pipeline.close_silent(SILENCE_S, lagging={3}) == []  # its frames may be waiting unread
    assert [i.event for i in pipeline.close_silent(SILENCE_S, lagging={0, 1})] == [IncidentEvent.CLOSED]


def test_camera_that_comes_back_starts_afresh(frames: dict[str, list[FrameMessage]]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock)
    first = feed(pipeline, frames["dying"], partition=0)
    clock.now += SILENCE_S
    closed = pipeline.close_silent(SILENCE_S)
    assert [i.event for i in first + closed] == [IncidentEvent.OPENED, IncidentEvent.CLOSED]
    again = feed(pipeline, frames["dying"], partition=0)  # replayed from the start: a new dwell clock
    assert [i.event for i in again] == [IncidentEvent.OPENED]
    assert again[0].incident_id == first[0].incident_id  # same frames, same replay-stable id
