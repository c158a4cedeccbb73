"""Structural checks of the Kubernetes manifests under deploy/: files, settings names, topics, renders.

No cluster and no container engine here, so these parse the real files and
assert what would break a rollout or silently misconfigure it: settings names
that Settings does not have (a typo in a top-level CCTV_ name is silently
ignored by pydantic-settings), a camera registry that fails validation, ingest
shards that miss or duplicate cameras, topics that disagree with the settings.
Where `kubectl` is installed the kustomizations are also rendered (kubectl
kustomize runs offline) and the merged output is checked the same way.
Workloads (pods, probes, scaling, jobs) are checked in test_deploy_workloads.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from cctv.config import CameraRegistry, KafkaSettings, Settings
from tests.deploy_support import (
    BASE,
    K8S,
    KUBECTL,
    RENDER_TARGETS,
    ROOT,
    TEMPLATE_ONLY,
    WORKLOAD_KINDS,
    Doc,
    by_kind_name,
    cctv_env_names,
    check_workload,
    container_env,
    containers,
    kustomization,
    kustomization_files,
    load_docs,
    manifest_docs,
    read_env_file,
    referenced_files,
    settings_field_exists,
    workloads,
)

# --------------------------------------------------------------------------- files and kustomizations


def test_every_yaml_file_parses_and_has_kind() -> None:
    data_files = {p for k in kustomization_files() for p in referenced_files(k)["generators"]}
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 10, "expected the base, components, overlays and strimzi manifests"
    for path in files:
        if path in data_files:  # ConfigMap payloads (cameras.yaml), not manifests
            assert load_docs(path), f"{path} is empty"
            continue
        docs = load_docs(path)
        assert docs, f"{path} has no documents"
        for doc in docs:
            assert "kind" in doc and "apiVersion" in doc, f"{path}: document without kind/apiVersion"


@pytest.mark.parametrize("kfile", kustomization_files(), ids=lambda p: str(p.parent.relative_to(K8S)))
def test_kustomization_references_exist(kfile: Path) -> None:
    for role, paths in referenced_files(kfile).items():
        for path in paths:
            assert path.is_file(), f"{kfile.relative_to(ROOT)}: {role} entry {path} does not exist"


def test_every_manifest_is_used_by_a_kustomization() -> None:
    used = {p for k in kustomization_files() for refs in referenced_files(k).values() for p in refs}
    orphans = [p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml" and p not in used]
    assert sorted(orphans) == sorted(TEMPLATE_ONLY), "files no kustomization applies"


# --------------------------------------------------------------------------- settings names and values


def test_settings_name_check_rejects_typos() -> None:
    """The name check below must be able to fail, or it proves nothing."""
    assert settings_field_exists("CCTV_KAFKA__BOOTSTRAP_SERVERS")
    assert settings_field_exists("CCTV_ENVIRONMENT")
    for typo in ["CCTV_KAFKA__BOOTSTRAP_SERVER", "CCTV_S3_SECRET_KEY", "CCTV_DETECTOR__HALF__X", "CCTV_ENV"]:
        assert not settings_field_exists(typo), typo


def test_every_cctv_env_name_is_a_settings_field() -> None:
    names = cctv_env_names()
    assert "CCTV_API__DATABASE_URL" in names and "CCTV_DETECTOR__BATCH_SIZE" in names
    unknown = {name: sorted(where) for name, where in names.items() if not settings_field_exists(name)}
    assert not unknown, f"CCTV_ names that are not Settings fields: {unknown}"


def test_settings_values_parse_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared settings, the secret template and the API/GPU env build a valid production Settings."""
    for name in list(os.environ):
        if name.startswith("CCTV_"):
            monkeypatch.delenv(name)
    (secret, _) = load_docs(BASE / "secrets.example.yaml")
    api = by_kind_name(workloads(manifest_docs()), "Deployment", "cctv-api")
    (gpu_patch,) = load_docs(K8S / "overlays/gpu/detector-gpu.yaml")
    env = {
        **read_env_file(BASE / "settings.env"),
        **secret["stringData"],
        **{k: v for k, v in container_env(containers(api)[0]).items() if v},
        **container_env(containers(gpu_patch)[0]),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.api.host == "0.0.0.0"
    assert settings.api.database_url.startswith("postgresql+psycopg://")
    assert settings.detector.backend == "yolo" and settings.detector.half is True
    assert settings.cameras_file == Path("/etc/cctv/cameras/cameras.yaml")


def test_secret_template_holds_only_placeholders() -> None:
    for doc in load_docs(BASE / "secrets.example.yaml"):
        assert doc["kind"] == "Secret"
        for key, value in doc["stringData"].items():
            assert "REPLACE_ME" in value, f"{doc['metadata']['name']}.{key} looks like a real value"


# --------------------------------------------------------------------------- cameras and ingest shards


def test_cameras_configmap_validates() -> None:
    registry = CameraRegistry.model_validate(yaml.safe_load((BASE / "cameras.yaml").read_text()))
    assert len(registry.cameras) >= 2
    assert all(zone.rules.loitering for cam in registry.cameras for zone in cam.zones)
    generators = {g["name"]: g for g in kustomization(BASE / "kustomization.yaml")["configMapGenerator"]}
    assert generators["cctv-cameras"]["files"] == ["cameras.yaml"]


def test_ingest_shards_cover_each_enabled_camera_exactly_once() -> None:
    registry = CameraRegistry.model_validate(yaml.safe_load((BASE / "cameras.yaml").read_text()))
    shards = read_env_file(BASE / "ingest-shards.env")
    ingest = by_kind_name(workloads(manifest_docs()), "StatefulSet", "cctv-ingest")
    replicas = ingest["spec"]["replicas"]
    assert sorted(shards) == sorted(f"shard-{i}" for i in range(replicas)), "one shard per replica"
    owned = [cam.strip() for ids in shards.values() for cam in ids.split(",")]
    assert len(owned) == len(set(owned)), f"a camera is in two shards: {owned}"
    assert set(owned) == {c.id for c in registry.cameras if c.enabled}


def run_ingest_launcher(
    tmp_path: Path, pod_name: str, shards: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the StatefulSet's real launcher script with the shard dir and `cctv` swapped for stand-ins."""
    ingest = by_kind_name(workloads(manifest_docs()), "StatefulSet", "cctv-ingest")
    (container,) = containers(ingest)
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "ingest-shards")
    script = container["args"][0]
    assert container["command"] == ["/bin/sh", "-c"] and mount in script and "exec cctv ingest" in script
    for key, value in shards.items():
        (tmp_path / key).write_text(value)
    script = script.replace(mount, str(tmp_path)).replace("exec cctv ingest", "exec echo cctv ingest")
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={"POD_NAME": pod_name, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def test_ingest_launcher_passes_its_shard(tmp_path: Path) -> None:
    result = run_ingest_launcher(tmp_path, "cctv-ingest-11", {"shard-1": "x", "shard-11": "cam-a, cam-b\n"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "cctv ingest --cameras cam-a,cam-b"


@pytest.mark.parametrize("shards", [{}, {"shard-3": ""}], ids=["missing", "empty"])
def test_ingest_launcher_refuses_without_shard(tmp_path: Path, shards: dict[str, str]) -> None:
    """Without a shard `cctv ingest` would pull every camera; the launcher must exit instead."""
    result = run_ingest_launcher(tmp_path, "cctv-ingest-3", shards)
    assert result.returncode != 0
    assert "cctv ingest" not in result.stdout


# --------------------------------------------------------------------------- scaling and topics


def test_strimzi_topics_match_settings() -> None:
    kafka = KafkaSettings()
    topics = {t["spec"]["topicName"]: t["spec"] for t in load_docs(K8S / "strimzi/topics.yaml")}
    assert {t["kind"] for t in load_docs(K8S / "strimzi/topics.yaml")} == {"KafkaTopic"}
    expected_partitions = {
        kafka.frames_topic: kafka.frames_partitions,
        kafka.incidents_topic: 6,
        kafka.evidence_topic: 3,
        kafka.status_topic: 3,
        kafka.dead_letter_topic: 1,
        kafka.camera_config_topic: 1,
    }
    assert {name: spec["partitions"] for name, spec in topics.items()} == expected_partitions
    frames = topics[kafka.frames_topic]["config"]
    assert frames["retention.ms"] == kafka.frames_retention_s * 1000
    assert frames["max.message.bytes"] == kafka.max_message_bytes
    assert frames["compression.type"] in {"producer", "uncompressed"}
    assert "compact" in topics[kafka.status_topic]["config"]["cleanup.policy"]
    assert topics[kafka.camera_config_topic]["config"]["cleanup.policy"] == "compact"  # newest version kept
    assert topics[kafka.dead_letter_topic]["config"]["retention.ms"] >= 7 * 86_400_000
    env = read_env_file(BASE / "settings.env")
    assert int(env["CCTV_KAFKA__FRAMES_PARTITIONS"]) == kafka.frames_partitions


# --------------------------------------------------------------------------- rendered (kubectl kustomize)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Doc]]:
    if KUBECTL is None:
        pytest.skip("kubectl not installed: the kustomize render checks need `kubectl kustomize`")
    out = {}
    for target in RENDER_TARGETS:
        result = subprocess.run(
            [KUBECTL, "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, f"kubectl kustomize {target}: {result.stderr}"
        out[target] = [d for d in yaml.safe_load_all(result.stdout) if d]
    return out


@pytest.mark.parametrize("target", ["base", "overlays/keda", "overlays/gpu"])
def test_rendered_overlay(rendered: dict[str, list[Doc]], target: str) -> None:
    docs = rendered[target]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "cctv", f"{doc['kind']}/{doc['metadata']['name']}"
    for workload in (d for d in docs if d["kind"] in WORKLOAD_KINDS):
        check_workload(workload, docs)
    cameras = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("cctv-cameras")
    )
    CameraRegistry.model_validate(yaml.safe_load(cameras["data"]["cameras.yaml"]))
    kinds = {d["kind"] for d in docs}
    if target == "base":
        assert "HorizontalPodAutoscaler" in kinds and "ScaledObject" not in kinds
    else:
        assert "ScaledObject" in kinds and "HorizontalPodAutoscaler" not in kinds, (
            "two autoscalers would fight"
        )
    detector = by_kind_name(docs, "Deployment", "cctv-detector")
    (container,) = containers(detector)
    gpus = container["resources"]["limits"].get("nvidia.com/gpu")
    assert (gpus == 1) == (target == "overlays/gpu")
    if target == "overlays/gpu":
        assert "cctv-gpu" in container["image"]
        assert all(
            "gpu" not in c["image"]
            for w in workloads([(K8S, d) for d in docs])
            if w is not detector
            for c in containers(w)
        )


def test_rendered_strimzi_topics(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["strimzi"]
    assert len(docs) == 6
    for doc in docs:
        assert doc["metadata"]["namespace"] == "kafka"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "cctv"
