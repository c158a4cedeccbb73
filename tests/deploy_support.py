"""Shared readers and checks for the deploy/ tests (no cluster: the real files, parsed)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from cctv.config import KafkaSettings, Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "CronJob"}
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
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]
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
    if workload["kind"] == "CronJob":
        return  # a Job's pods are meant to end: no disruption budget
    labels = pod_template(workload)["metadata"]["labels"]
    pdbs = [
        d
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
        and d["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(pdbs) == 1, f"{name}: expected one PodDisruptionBudget selecting its pods"


def frames_topic() -> Doc:
    topics = load_docs(K8S / "strimzi/topics.yaml")
    return next(t for t in topics if t["spec"]["topicName"] == KafkaSettings().frames_topic)
