"""Structural checks of the Kubernetes manifests and Dockerfiles under deploy/.

No cluster and no container engine here, so these parse the real files and
assert what would break a rollout or silently misconfigure it: settings names
that Settings does not have (a typo in a top-level CCTV_ name is silently
ignored by pydantic-settings), a camera registry that fails validation, ingest
shards that miss or duplicate cameras, workloads without limits or non-root,
probes on the wrong paths, autoscalers beyond the partition count. Where
`kubectl` is installed the kustomizations are also rendered (kubectl kustomize
runs offline) and the merged output is checked the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from cctv.config import CameraRegistry, DetectorSettings, KafkaSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
TEMPLATE_ONLY = {BASE / "secrets.example.yaml"}  # deliberately applied by no kustomization
RENDER_TARGETS = ["base", "overlays/keda", "overlays/gpu", "strimzi"]
KUBECTL = shutil.which("kubectl")

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def read_env_file(path: Path) -> dict[str, str]:
    """The `KEY=value` lines of a kustomize envs file (comments and blanks skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def kustomization_files() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def kustomization(path: Path) -> Doc:
    (doc,) = load_docs(path)
    assert doc["kind"] in KUSTOMIZE_KINDS, path
    return doc


def referenced_files(kfile: Path) -> dict[str, list[Path]]:
    """Files a kustomization names, by role; directories count as their kustomization.yaml."""
    doc = kustomization(kfile)
    here = kfile.parent
    refs: dict[str, list[Path]] = {"resources": [], "patches": [], "generators": []}
    for entry in [*doc.get("resources", []), *doc.get("components", [])]:
        target = (here / entry).resolve()
        refs["resources"].append(target / "kustomization.yaml" if target.is_dir() else target)
    for patch in doc.get("patches", []):
        if "path" in patch:
            refs["patches"].append((here / patch["path"]).resolve())
    for gen in [*doc.get("configMapGenerator", []), *doc.get("secretGenerator", [])]:
        for entry in [*gen.get("files", []), *gen.get("envs", [])]:
            refs["generators"].append((here / entry.split("=", 1)[-1]).resolve())
    return refs


def manifest_docs() -> list[tuple[Path, Doc]]:
    """Every full resource document listed by some kustomization (patches and templates excluded)."""
    resource_files = {
        p for k in kustomization_files() for p in referenced_files(k)["resources"] if p.suffix == ".yaml"
    }
    return [
        (path, doc)
        for path in sorted(resource_files)
        if path.name != "kustomization.yaml"
        for doc in load_docs(path)
    ]


def pod_template(workload: Doc) -> Doc:
    return workload["spec"]["template"]


def containers(workload: Doc) -> list[Doc]:
    spec = pod_template(workload)["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(docs: list[tuple[Path, Doc]]) -> list[Doc]:
    return [doc for _, doc in docs if doc["kind"] in WORKLOAD_KINDS]


def by_kind_name(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def walk(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) pair of nested dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def settings_field_exists(env_name: str) -> bool:
    """Whether ``CCTV_A__B`` names a real (nested) field of Settings, as pydantic-settings maps it."""
    if not env_name.startswith("CCTV_"):
        return False
    model: type[BaseModel] = Settings
    parts = env_name.removeprefix("CCTV_").lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        if depth < len(parts) - 1:
            nested = field.annotation
            if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
                return False
            model = nested
    return True


def cctv_env_names() -> dict[str, set[str]]:
    """Every CCTV_* name used anywhere in deploy/, mapped to where it was found."""
    found: dict[str, set[str]] = {}

    def add(name: str, where: Path) -> None:
        found.setdefault(name, set()).add(str(where.relative_to(ROOT)))

    for path in K8S.rglob("*.yaml"):
        for doc in load_docs(path):
            for key, value in walk(doc):
                if isinstance(key, str) and key.startswith("CCTV_"):
                    add(key, path)  # Secret stringData / ConfigMap data keys
                if key == "name" and isinstance(value, str) and value.startswith("CCTV_"):
                    add(value, path)  # container env entries
                if isinstance(key, str) and key.endswith("FromEnv") and isinstance(value, str):
                    add(value, path)  # KEDA *FromEnv references
    for path in K8S.rglob("*.env"):
        for key in read_env_file(path):
            if key.startswith("CCTV_"):
                add(key, path)
    for path in DEPLOY.glob("Dockerfile*"):
        for name in re.findall(r"\b(CCTV_[A-Z0-9_]+)=", path.read_text()):
            add(name, path)
    return found


def container_env(container: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


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


# --------------------------------------------------------------------------- workloads


def check_workload(workload: Doc, docs: list[Doc]) -> None:
    name = workload["metadata"]["name"]
    pod = pod_template(workload)["spec"]
    assert pod.get("enableServiceLinks") is False, f"{name}: service links inject CCTV_*_SERVICE_* vars"
    assert pod.get("terminationGracePeriodSeconds", 30) >= 60, f"{name}: too short to drain on SIGTERM"
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for container in containers(workload):
        where = f"{name}/{container['name']}"
        resources = container.get("resources", {})
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{where}: {part} cpu+memory"
        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert security.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert security.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
        assert security.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL capabilities"
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if security.get("readOnlyRootFilesystem"):
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: read-only root needs an emptyDir /tmp"
        assert "/etc/cctv/cameras" in mounts, f"{where}: every worker loads CCTV_CAMERAS_FILE"
        assert "configMap" in volumes[mounts["/etc/cctv/cameras"]]
    labels = pod_template(workload)["metadata"]["labels"]
    pdbs = [
        d
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
        and d["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(pdbs) == 1, f"{name}: expected one PodDisruptionBudget selecting its pods"


def test_base_workloads_have_limits_nonroot_and_pdbs() -> None:
    docs = [doc for _, doc in manifest_docs()]
    found = workloads(manifest_docs())
    assert {w["metadata"]["name"] for w in found} == {
        "cctv-ingest",
        "cctv-detector",
        "cctv-evidence",
        "cctv-api",
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
    evidence = by_kind_name(docs, "Deployment", "cctv-evidence")
    key_path = Path(read_env_file(BASE / "settings.env")["CCTV_EVIDENCE__SIGNING_KEY_PATH"])
    volumes = {v["name"]: v for v in pod_template(evidence)["spec"]["volumes"]}
    (mount,) = [m for m in containers(evidence)[0]["volumeMounts"] if m["mountPath"] == str(key_path.parent)]
    secret = volumes[mount["name"]]["secret"]
    assert key_path.name in secret_keys[secret["secretName"]]
    assert secret["defaultMode"] == 0o440, "group-readable for fsGroup; 0400 would be root-only"


# --------------------------------------------------------------------------- scaling and topics


def frames_topic() -> Doc:
    topics = load_docs(K8S / "strimzi/topics.yaml")
    return next(t for t in topics if t["spec"]["topicName"] == KafkaSettings().frames_topic)


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
    }
    assert {name: spec["partitions"] for name, spec in topics.items()} == expected_partitions
    frames = topics[kafka.frames_topic]["config"]
    assert frames["retention.ms"] == kafka.frames_retention_s * 1000
    assert frames["max.message.bytes"] == kafka.max_message_bytes
    assert frames["compression.type"] in {"producer", "uncompressed"}
    assert "compact" in topics[kafka.status_topic]["config"]["cleanup.policy"]
    assert topics[kafka.dead_letter_topic]["config"]["retention.ms"] >= 7 * 86_400_000
    env = read_env_file(BASE / "settings.env")
    assert int(env["CCTV_KAFKA__FRAMES_PARTITIONS"]) == kafka.frames_partitions


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
    assert len(docs) == 5
    for doc in docs:
        assert doc["metadata"]["namespace"] == "kafka"
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "cctv"
