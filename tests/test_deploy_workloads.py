"""Structural checks of the workloads under deploy/: limits, non-root, probes, secrets, scaling, jobs.

See test_deploy_manifests.py for why these parse files instead of applying them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from cctv.config import DetectorSettings, KafkaSettings
from tests.deploy_support import (
    BASE,
    DEPLOY,
    K8S,
    ROOT,
    by_kind_name,
    check_workload,
    container_env,
    containers,
    frames_topic,
    load_docs,
    manifest_docs,
    pod_template,
    read_env_file,
    walk,
    workloads,
)

# --------------------------------------------------------------------------- workloads


def test_base_workloads_have_limits_nonroot_and_pdbs() -> None:
    docs = [doc for _, doc in manifest_docs()]
    found = workloads(manifest_docs())
    assert {w["metadata"]["name"] for w in found} == {
        "cctv-ingest",
        "cctv-detector",
        "cctv-evidence",
        "cctv-api",
        "cctv-fixity",
    }
    for workload in found:
        check_workload(workload, docs)


def test_images_run_the_cctv_entry_point_as_the_manifests_uid() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "cctv" in scripts
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    gpu = (DEPLOY / "Dockerfile.gpu").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M)
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:", gpu, re.M)
    for text in (dockerfile, gpu):
        assert 'ENTRYPOINT ["cctv"]' in text
        (uid,) = set(re.findall(r"^USER (\d+):\d+$", text, re.M))
        assert int(uid) != 0
        assert "ARG TORCH_INDEX_URL" in text
    for workload in workloads(manifest_docs()):
        assert pod_template(workload)["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_api_probes_port_and_bind_address() -> None:
    docs = [doc for _, doc in manifest_docs()]
    api = by_kind_name(docs, "Deployment", "cctv-api")
    (container,) = containers(api)
    assert container["args"] == ["api"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    env = container_env(container)
    assert env["CCTV_API__HOST"] == "0.0.0.0" and env["CCTV_API__PORT"] == "8000"
    service = by_kind_name(docs, "Service", "cctv-api")
    assert service["spec"]["selector"].items() <= pod_template(api)["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_worker_subcommands_and_secret_references() -> None:
    docs = [doc for _, doc in manifest_docs()]
    secret_keys = {
        d["metadata"]["name"]: set(d["stringData"]) for d in load_docs(BASE / "secrets.example.yaml")
    }
    assert containers(by_kind_name(docs, "Deployment", "cctv-detector"))[0]["args"] == ["detect"]
    assert containers(by_kind_name(docs, "Deployment", "cctv-evidence"))[0]["args"] == ["evidence"]
    for workload in workloads(manifest_docs()):
        for key, value in walk(workload):
            if key == "secretKeyRef":
                assert value["key"] in secret_keys[value["name"]], value
    # Whoever signs (evidence worker: manifests; API: custody checkpoints) or verifies checkpoints
    # (fixity) mounts the signing-key Secret where CCTV_EVIDENCE__SIGNING_KEY_PATH points.
    key_path = Path(read_env_file(BASE / "settings.env")["CCTV_EVIDENCE__SIGNING_KEY_PATH"])
    for kind, name in [
        ("Deployment", "cctv-evidence"),
        ("Deployment", "cctv-api"),
        ("CronJob", "cctv-fixity"),
    ]:
        workload = by_kind_name(docs, kind, name)
        volumes = {v["name"]: v for v in pod_template(workload)["spec"]["volumes"]}
        (mount,) = [
            m for m in containers(workload)[0]["volumeMounts"] if m["mountPath"] == str(key_path.parent)
        ]
        secret = volumes[mount["name"]]["secret"]
        assert key_path.name in secret_keys[secret["secretName"]], name
        assert secret["defaultMode"] == 0o440, f"{name}: group-readable for fsGroup; 0400 would be root-only"


def test_fixity_cronjob_fails_loudly_and_never_overlaps() -> None:
    """A failed fixity Job IS the alert: it must not be retried away, and runs must not pile up."""
    docs = [doc for _, doc in manifest_docs()]
    cron = by_kind_name(docs, "CronJob", "cctv-fixity")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["failedJobsHistoryLimit"] >= 3
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = pod_template(cron)["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = containers(cron)
    assert container["args"] == ["fixity"]
    secrets = {e["name"] for e in container["env"] if "valueFrom" in e}
    assert {"CCTV_API__DATABASE_URL", "CCTV_S3__ACCESS_KEY", "CCTV_S3__SECRET_KEY"} <= secrets


# --------------------------------------------------------------------------- scaling


def test_detector_autoscalers_stop_at_partition_count() -> None:
    partitions = frames_topic()["spec"]["partitions"]
    hpa = load_docs(BASE / "detector-hpa.yaml")[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "cctv-detector"
    assert hpa["spec"]["maxReplicas"] <= partitions
    detector = by_kind_name([d for _, d in manifest_docs()], "Deployment", "cctv-detector")
    assert "replicas" not in detector["spec"], "the autoscaler owns the replica count"
    spread = pod_template(detector)["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
    bootstrap = read_env_file(BASE / "settings.env")["CCTV_KAFKA__BOOTSTRAP_SERVERS"]
    for path in [
        K8S / "components/keda/detector-scaledobject.yaml",
        K8S / "overlays/gpu/scaledobject-gpu.yaml",
    ]:
        (scaled,) = load_docs(path)
        assert scaled["spec"]["maxReplicaCount"] <= partitions, path
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == DetectorSettings().group_id
        assert meta["topic"] == KafkaSettings().frames_topic
        assert meta["bootstrapServers"] == bootstrap
        assert meta["allowIdleConsumers"] == "false"


def test_gpu_overlay_requests_a_gpu_and_yolo() -> None:
    (patch,) = load_docs(K8S / "overlays/gpu/detector-gpu.yaml")
    assert patch["kind"] == "Deployment" and patch["metadata"]["name"] == "cctv-detector"
    (container,) = containers(patch)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 1
    env = container_env(container)
    assert env["CCTV_DETECTOR__BACKEND"] == "yolo" and env["CCTV_DETECTOR__DEVICE"].startswith("cuda")
    assert env["CCTV_DETECTOR__HALF"] == "true"
    assert int(env["CCTV_DETECTOR__BATCH_SIZE"]) > DetectorSettings().batch_size
    pod = pod_template(patch)["spec"]
    assert any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"]) and pod["nodeSelector"]
