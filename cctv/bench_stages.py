"""The benchmark sections that drive the pipeline's own stages (see cctv/bench.py).

Kept apart from cctv/bench.py because importing the detector pulls in torch,
which the broker section does not need.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from cctv.bench import Result, Section, percentile
from cctv.config import CameraRegistry, DetectorSettings, Settings

BENCH_ZONE = [[0.30, 0.60], [0.70, 0.60], [0.70, 0.98], [0.30, 0.98]]


def _camera(camera_id: str, source: str, fps: float, dwell_s: float = 30.0) -> dict[str, Any]:
    return {
        "id": camera_id,
        "name": f"bench {camera_id}",
        "source": source,
        "fps": fps,
        "zones": [{"id": "bench", "polygon": BENCH_ZONE, "rules": {"loitering": {"dwell_s": dwell_s}}}],
    }


# --------------------------------------------------------------------------- ingest


def bench_ingest(settings: Settings, quick: bool) -> list[Result]:
    from ingest.bench import measure_encode_fps

    result = measure_encode_fps(2.0 if quick else 6.0)
    return [
        Result("ingest", "render+JPEG q90+SHA-256, sim 768x576", result.fps, "frames/s", "one core"),
        Result("ingest", "JPEG q90+SHA-256 only", result.encode_fps, "frames/s", "one core"),
        Result("ingest", "mean frame size", result.mean_jpeg_bytes / 1000, "KB"),
    ]


# --------------------------------------------------------------------------- detector


def bench_detector(settings: Settings, quick: bool) -> list[Result]:
    from detector.backends.hog import HogBackend
    from detector.backends.yolo import YoloBackend
    from detector.pipeline import DetectorPipeline, FrameInput
    from ingest.sim import scripted_frames

    seconds = 15.0 if quick else 40.0
    registry = CameraRegistry.model_validate(
        {
            "cameras": [
                _camera("loiter", "sim://loiterer?seed=3&dwell=20&start=2", fps=4),
                _camera("walk", "sim://walkers?seed=4", fps=4),
                _camera("empty", "sim://empty?seed=5", fps=4),
            ]
        }
    )
    frames = [f for camera in registry.cameras for f in scripted_frames(camera, seconds)]
    inputs = [FrameInput(frame, partition=0, offset=i) for i, frame in enumerate(frames)]
    results: list[Result] = []

    def run(label: str, detector: DetectorSettings, backend: Any) -> float:
        pipeline = DetectorPipeline(registry, backend, detector, pre_roll_s=5.0)
        start = time.perf_counter()
        for i in range(0, len(inputs), detector.batch_size):
            pipeline.process(inputs[i : i + detector.batch_size])
        elapsed = time.perf_counter() - start
        fps = len(inputs) / elapsed
        stats = pipeline.stats
        results.append(Result("detector", f"{label}: frames/s", fps, "frames/s", f"{len(inputs)} frames"))
        if stats.inferences:
            results.append(
                Result(
                    "detector", f"{label}: ms per inference", stats.detect_s / stats.inferences * 1000, "ms"
                )
            )
        if detector.motion_gate:
            results.append(Result("detector", f"{label}: motion-gate skip ratio", stats.gate.skip_ratio, ""))
        return fps

    gated = settings.detector.model_copy(update={"backend": "hog", "hog_motion_crops": True})
    baseline = gated.model_copy(update={"motion_gate": False, "hog_motion_crops": False})
    fast = run("hog, motion gate + crops", gated, HogBackend.from_settings(gated))
    slow = run("hog, every frame, full frame (baseline)", baseline, HogBackend.from_settings(baseline))
    results.append(Result("detector", "hog gated / baseline speed", fast / slow, "x"))

    for batch in (1, 8):
        yolo = settings.detector.model_copy(
            update={"backend": "yolo", "batch_size": batch, "motion_gate": False}
        )
        backend = YoloBackend.from_architecture("yolo11n.yaml", device="cpu", confidence=yolo.confidence)
        run(f"yolo11n random weights, CPU, batch {batch}", yolo, backend)
    return results


# --------------------------------------------------------------------------- evidence


def bench_seal(settings: Settings, quick: bool) -> list[Result]:
    from evidence_store.bench import bench_evidence

    figures = bench_evidence(settings, frame_count=50 if quick else 100)
    return [Result("evidence", f.metric, f.value, f.unit, f.note) for f in figures]


# --------------------------------------------------------------------------- end to end


def bench_end_to_end(settings: Settings, quick: bool) -> list[Result]:
    """Alert latency: threshold crossing (capture time) to the incident persisted by the API."""
    from cctv.harness import running_pipeline

    cameras = 2 if quick else 4
    registry = CameraRegistry.model_validate(
        {
            "cameras": [
                _camera(
                    f"loiter-{i}", f"sim://loiterer?seed={10 + i}&dwell=14&start={1 + i}", fps=4, dwell_s=5
                )
                for i in range(cameras)
            ]
        }
    )
    run_settings = settings.model_copy(
        update={
            "api": settings.api.model_copy(
                update={"database_url": f"sqlite:///{settings.data_dir / 'bench.db'}"}
            ),
            "evidence": settings.evidence.model_copy(
                update={
                    "pre_roll_s": 3.0,
                    "post_roll_s": 2.0,
                    "read_timeout_s": 10.0,
                    "signing_key_path": settings.data_dir / "bench.key",
                }
            ),
        }
    )
    with running_pipeline(run_settings, registry) as pipeline:
        pipeline.wait_for(
            "every loiterer's evidence",
            lambda: (
                len([i for i in pipeline.incidents(status="closed") if _evidence(pipeline, i["incident_id"])])
                >= cameras
            ),
            timeout_s=300,
        )
        incidents = pipeline.incidents()
        seal_s = [
            (datetime.fromisoformat(e["sealed_at"]) - datetime.fromisoformat(i["ended_at"])).total_seconds()
            for i in incidents
            for e in _evidence(pipeline, i["incident_id"])
        ]
    latencies = sorted(i["alert_latency_s"] for i in incidents if i["alert_latency_s"] is not None)
    return [
        Result("end to end", "alert latency p50", percentile(latencies, 50), "s", f"{cameras} sim cameras"),
        Result("end to end", "alert latency p95", percentile(latencies, 95), "s", "threshold -> API"),
        Result(
            "end to end", "evidence sealed after close, p50", percentile(seal_s, 50), "s", "incl. post-roll"
        ),
    ]


def _evidence(pipeline: Any, incident_id: str) -> list[dict[str, Any]]:
    response = pipeline.client.get(f"/api/v1/incidents/{incident_id}/evidence")
    body: list[dict[str, Any]] = response.json() if response.status_code == 200 else []
    return body


def bench_api(settings: Settings, quick: bool) -> list[Result]:
    from api.bench import bench_api as run

    return run(settings, quick)


SECTIONS: list[tuple[str, Section]] = [
    ("ingest", bench_ingest),
    ("detector", bench_detector),
    ("evidence", bench_seal),
    ("e2e", bench_end_to_end),
    ("api", bench_api),
]
