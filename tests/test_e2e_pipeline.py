"""The whole pipeline on the real local stack: simulated cameras -> incident in the API -> locked evidence.

Every worker runs through its own ``run_*`` entry point (what `cctv ingest`
etc. call) against the real Tansu broker, the real SeaweedFS store with Object
Lock and a real SQLite database; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from minio.error import S3Error

from cctv.config import CameraRegistry, Settings
from cctv.harness import RunningPipeline, running_pipeline
from cctv.objectstore import make_client
from ingest.sim import WALL, scene_from_url

pytestmark = [pytest.mark.service, pytest.mark.e2e]

BENCH = [[0.30, 0.60], [0.70, 0.60], [0.70, 0.98], [0.30, 0.98]]

# Evidence downloads record who, in which role, and why (the custody log).
E2E_REASON = {"reason": "end-to-end test of the evidence path"}


def e2e_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "api": settings.api.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'cctv.db'}"}),
            "evidence": settings.evidence.model_copy(
                update={
                    "pre_roll_s": 3.0,
                    "post_roll_s": 2.0,
                    "read_timeout_s": 15.0,
                    "signing_key_path": tmp_path / "keys" / "signing.key",
                }
            ),
        }
    )


def sim_camera(camera_id: str, source: str, dwell_s: float) -> dict[str, Any]:
    return {
        "id": camera_id,
        "name": f"Simulated {camera_id}",
        "location": "Test Street",
        "source": source,
        "fps": 4,
        "zones": [{"id": "bench", "polygon": BENCH, "rules": {"loitering": {"dwell_s": dwell_s}}}],
    }


def closed_with_evidence(pipeline: RunningPipeline, camera_id: str) -> list[dict[str, Any]]:
    found = []
    for incident in pipeline.incidents(camera_id=camera_id, status="closed"):
        evidence = pipeline.client.get(f"/api/v1/incidents/{incident['incident_id']}/evidence").json()
        if evidence:
            found.append({**incident, "evidence": evidence})
    return found


def test_scripted_loiterer_gives_one_incident_with_verifiable_locked_evidence(
    settings: Settings, tmp_path: Path
) -> None:
    settings = e2e_settings(settings, tmp_path)
    registry = CameraRegistry.model_validate(
        {
            "cameras": [
                sim_camera("loiter-cam", "sim://loiterer?seed=7&dwell=16&start=2", dwell_s=6),
                sim_camera("walk-cam", "sim://walkers?seed=8", dwell_s=6),
            ]
        }
    )
    with running_pipeline(settings, registry) as pipeline:
        sealed = pipeline.wait_for(
            "the loiterer's incident to close with sealed evidence",
            lambda: closed_with_evidence(pipeline, "loiter-cam"),
            timeout_s=240,
        )
        incidents = pipeline.incidents()
        walk_incidents = pipeline.incidents(camera_id="walk-cam")

    # Exactly one incident, on the loiterer's camera, for the bench zone.
    assert [i["camera_id"] for i in incidents] == ["loiter-cam"], incidents
    assert walk_incidents == []
    incident = sealed[0]
    assert incident["rule"] == "loitering"
    assert incident["zone_id"] == "bench"
    assert incident["dwell_s"] >= 6

    (evidence,) = incident["evidence"]
    artifacts = {a["kind"]: a for a in evidence["artifacts"]}
    assert {"master", "working_copy", "manifest", "signature"} <= set(artifacts)

    # The clip served by the API is the stored working copy: its SHA-256 matches the manifest.
    clip = pipeline.client.get(f"/api/v1/evidence/{evidence['evidence_id']}/clip", params=E2E_REASON)
    assert clip.status_code == 200, clip.text
    assert clip.headers["content-type"].startswith("video/mp4")
    manifest = pipeline.client.get(f"/api/v1/evidence/{evidence['evidence_id']}/manifest", params=E2E_REASON)
    assert manifest.status_code == 200
    assert hashlib.sha256(manifest.content).hexdigest() == evidence["manifest_sha256"]
    manifest_doc = json.loads(manifest.content)
    clip_sha = hashlib.sha256(clip.content).hexdigest()
    assert clip_sha == artifacts["working_copy"]["sha256"]
    assert clip_sha in json.dumps(manifest_doc), "manifest does not record the working copy's hash"
    assert manifest_doc["incident"]["incident_id"] == incident["incident_id"]

    # The master is bit-exact frames whose hashes the manifest lists in order.
    master = pipeline.client.get(f"/api/v1/evidence/{evidence['evidence_id']}/master", params=E2E_REASON)
    assert master.status_code == 200
    assert hashlib.sha256(master.content).hexdigest() == artifacts["master"]["sha256"]
    assert evidence["frame_count"] >= 6 * 4  # at least the dwell at 4 fps

    # The store refuses to delete the locked version (Object Lock COMPLIANCE).
    store = make_client(settings.s3)
    with pytest.raises(S3Error):
        store.remove_object(
            settings.s3.evidence_bucket,
            artifacts["working_copy"]["key"],
            version_id=artifacts["working_copy"]["version_id"],
        )
    kept = store.get_object(
        settings.s3.evidence_bucket,
        artifacts["working_copy"]["key"],
        version_id=artifacts["working_copy"]["version_id"],
    )
    try:
        assert hashlib.sha256(kept.read()).hexdigest() == clip_sha
    finally:
        kept.close()
        kept.release_conn()


def test_graffiti_gives_an_area_change_incident_with_before_after_and_the_act_in_its_evidence(
    settings: Settings, tmp_path: Path
) -> None:
    # The wall is a protected area; the camera also has tamper detection on, which must stay quiet.
    x1, y1, x2, y2 = WALL
    wall = [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
    settings = e2e_settings(settings, tmp_path)
    registry = CameraRegistry.model_validate(
        {
            "cameras": [
                {
                    "id": "wall-cam",
                    "name": "Bus stop wall",
                    "source": "sim://graffiti?seed=1&dwell=8&start=1",
                    "fps": 4,
                    "tamper": {},
                    "zones": [
                        {"id": "wall", "name": "Bus side", "polygon": wall, "rules": {"area_change": {}}}
                    ],
                }
            ]
        }
    )
    with running_pipeline(settings, registry) as pipeline:
        (incident,) = pipeline.wait_for(
            "the graffiti incident to close with sealed evidence",
            lambda: closed_with_evidence(pipeline, "wall-cam"),
            timeout_s=240,
        )
        incidents = pipeline.incidents(camera_id="wall-cam")
        before = pipeline.client.get(f"/api/v1/incidents/{incident['incident_id']}/snapshot?view=before")
        after = pipeline.client.get(f"/api/v1/incidents/{incident['incident_id']}/snapshot")
        (evidence,) = incident["evidence"]
        manifest = pipeline.client.get(
            f"/api/v1/evidence/{evidence['evidence_id']}/manifest", params=E2E_REASON
        )

    assert [i["rule"] for i in incidents] == ["area_change"], incidents  # and no tamper alert
    assert incident["zone_id"] == "wall" and incident["has_before_snapshot"] is True
    region = incident["change_region"]
    truth = next(e for e in scene_from_url("sim://graffiti?seed=1&dwell=8&start=1").truth_events())
    assert truth.region is not None
    tx1, ty1, tx2, ty2 = truth.region
    overlap_w = min(region["x2"], tx2) - max(region["x1"], tx1)
    overlap_h = min(region["y2"], ty2) - max(region["y1"], ty1)
    assert overlap_w > 0 and overlap_h > 0, (region, truth.region)
    assert before.status_code == after.status_code == 200
    assert before.content != after.content and before.content[:2] == b"\xff\xd8"
    assert manifest.status_code == 200
    recorded = json.loads(manifest.content)["incident"]
    assert recorded["rule"] == "area_change" and recorded["change_region"]["x1"] == region["x1"]
    # The evidence runs from before the visit to the judgement: the act itself is in the clip.
    assert evidence["frame_count"] >= 8 * 4
