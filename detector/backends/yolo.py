"""Ultralytics YOLO detector: batched across cameras, GPU when there is one.

The person pipeline builds it for persons only (``detect_classes=(0,)``); built
with ``detect_classes=None`` it returns every class of a custom-trained model
(graffiti, fights, ...) and serves as the classifier (``detector.classifier``).
The class names come from the weights themselves and must agree with the
``classes`` the manifest lists for that model, so a file trained with another
class order cannot put the wrong name on an alert.

Weights come only from ``models_dir`` and are checked against the SHA-256 in
``models/manifest.yaml`` before loading: the weights hash goes into every
evidence manifest, so a swapped file must stop the detector, not silently
change what the court is told. Nothing is downloaded (``detector/__init__``
sets ``YOLO_OFFLINE``; a missing file is an error that says how to get it).
torch/ultralytics are imported inside the methods so that importing the
registry stays fast for the HOG default.

Two inference paths: by default the batch is letterboxed and NMS'd on the
inference device (``yolo_tensor``), because ultralytics' per-image CPU
pre-processing, not the GPU, bounds ``predict()``; ``tensor_preprocess=False``
keeps ``predict()`` itself as the reference the tests compare against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import detector.offline  # noqa: F401  (before ultralytics)
from cctv.config import DetectorSettings
from cctv.contracts import DetectorInfo
from detector.backends.base import DetectorBackend, DetectorConfigError
from detector.detections import PERSON_CLASS, RawBoxes, Region

if TYPE_CHECKING:
    from detector.backends.yolo_tensor import TensorDetector

MANIFEST_NAME = "manifest.yaml"
IMAGE_SIZE = 640


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="name used in settings.detector.model")
    file: str = Field(description="weights file name inside models_dir")
    sha256: str | None = Field(pattern=r"^[0-9a-f]{64}$", description="published SHA-256; null = unverified")
    classes: dict[int, str] = Field(
        description="class ids and names the pipeline may use; checked against the weights' own names"
    )
    source: str = Field(description="where a human with internet obtains the file")
    architecture: str | None = Field(default=None, description="ultralytics model YAML of the same network")


class ModelManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    models: tuple[ModelEntry, ...]

    def entry(self, name: str) -> ModelEntry:
        for entry in self.models:
            if entry.name == name:
                return entry
        known = ", ".join(e.name for e in self.models)
        raise DetectorConfigError(f"model {name!r} is not in the models manifest (known: {known})")


def load_manifest(models_dir: Path) -> ModelManifest:
    path = models_dir / MANIFEST_NAME
    try:
        return ModelManifest.model_validate(yaml.safe_load(path.read_text()))
    except OSError as exc:
        raise DetectorConfigError(f"{path}: cannot read the models manifest: {exc}") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise DetectorConfigError(f"{path}: invalid models manifest: {exc}") from exc


def check_class_names(entry: ModelEntry, names: dict[int, str]) -> None:
    """Every class the manifest lists must have that id and name in the weights."""
    wrong = [
        f"{class_id}: {names.get(class_id, '<absent>')!r} (manifest: {name!r})"
        for class_id, name in sorted(entry.classes.items())
        if names.get(class_id) != name
    ]
    if wrong:
        raise DetectorConfigError(
            f"model {entry.name}: the weights' class names differ from models/manifest.yaml: "
            f"{'; '.join(wrong)}; fix the manifest's classes or use the weights it describes"
        )


def select_labels(names: dict[int, str], classes: tuple[int, ...] | None, model_name: str) -> dict[int, str]:
    """The labels a backend returns: all of the model's classes (None) or the chosen ids."""
    if classes is None:
        return dict(names)
    missing = [c for c in classes if c not in names]
    if missing:
        raise DetectorConfigError(f"model {model_name} has no class ids {missing} (it has {len(names)})")
    return {c: names[c] for c in classes}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_weights(models_dir: Path, entry: ModelEntry, allow_unverified: bool = False) -> tuple[Path, str]:
    """The weights path and its SHA-256, after checking it against the manifest."""
    path = models_dir / entry.file
    how = f"download {entry.source} on a machine with internet and copy it to {path} (see models/README.md)"
    if not path.is_file():
        raise DetectorConfigError(f"weights file {path} is missing: {how}")
    actual = file_sha256(path)
    if entry.sha256 is None:
        if not allow_unverified:
            raise DetectorConfigError(
                f"models manifest has no sha256 for {entry.name}; refusing unverified weights {path} "
                "(set detector.allow_unverified_weights=true for development only)"
            )
    elif actual != entry.sha256:
        raise DetectorConfigError(
            f"weights {path} have sha256 {actual}, the manifest expects {entry.sha256} for {entry.name}: "
            f"the file is corrupt or not the published one; {how}"
        )
    return path, actual


def _has_quantize_arg() -> bool:
    try:
        from ultralytics.cfg import DEFAULT_CFG_DICT
    except ImportError:
        return False
    return "quantize" in DEFAULT_CFG_DICT


_HAS_QUANTIZE_ARG: bool | None = None


def resolve_device(device: str) -> str:
    """'auto' -> the first CUDA GPU when torch sees one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class YoloBackend(DetectorBackend):
    """Batched inference over frames of many cameras; persons only unless built with ``classes=None``."""

    def __init__(
        self,
        model: Any,
        info: DetectorInfo,
        device: str = "cpu",
        half: bool = False,
        confidence: float = 0.4,
        image_size: int = IMAGE_SIZE,
        tensor_preprocess: bool = True,
        classes: tuple[int, ...] | None = (PERSON_CLASS,),
        names: dict[int, str] | None = None,
    ) -> None:
        """``classes``: the class ids returned, None = all; ``names``: id -> name, default the model's."""
        global _HAS_QUANTIZE_ARG
        if _HAS_QUANTIZE_ARG is None:
            _HAS_QUANTIZE_ARG = _has_quantize_arg()
        self._model = model
        self.info = info
        self.classes = classes
        self.labels = select_labels(
            dict(names if names is not None else model.names), classes, info.model_name
        )
        self.device = resolve_device(device)
        self.half = half and self.device.startswith("cuda")  # FP16 on CPU is slower or unsupported
        self.confidence = confidence
        self.image_size = image_size
        self.tensor_preprocess = tensor_preprocess
        self._tensor: TensorDetector | None = None  # built on first use: a fused copy of the network

    @classmethod
    def from_settings(cls, settings: DetectorSettings) -> YoloBackend:
        entry = load_manifest(settings.models_dir).entry(settings.model)
        path, sha = verified_weights(settings.models_dir, entry, settings.allow_unverified_weights)
        from ultralytics import YOLO

        info = DetectorInfo(
            backend="yolo",
            model_name=entry.name,
            weights_sha256=sha,
            thresholds={"confidence": settings.confidence, "imgsz": float(IMAGE_SIZE)},
        )
        model = YOLO(str(path), task="detect")
        check_class_names(entry, dict(model.names))
        return cls(
            model,
            info,
            settings.device,
            settings.half,
            settings.confidence,
            tensor_preprocess=settings.tensor_preprocess,
            classes=settings.detect_classes,
        )

    @classmethod
    def from_architecture(
        cls,
        architecture: str = "yolo11n.yaml",
        device: str = "cpu",
        confidence: float = 0.4,
        tensor_preprocess: bool = True,
        classes: tuple[int, ...] | None = (PERSON_CLASS,),
    ) -> YoloBackend:
        """A randomly initialised network (no weights, no download): exercises the code path in tests
        and measures speed in the benchmark. Never for production: it detects nothing meaningful.
        Its classes are named by number except 0, "person", the class of the COCO layout it stands in for."""
        from ultralytics import YOLO

        info = DetectorInfo(
            backend="yolo",
            model_name=f"{architecture} (random weights)",
            weights_sha256=None,
            thresholds={"confidence": confidence, "imgsz": float(IMAGE_SIZE)},
        )
        model = YOLO(architecture, task="detect")
        names = {**dict(model.names), PERSON_CLASS: "person"}
        return cls(
            model,
            info,
            device,
            False,
            confidence,
            tensor_preprocess=tensor_preprocess,
            classes=classes,
            names=names,
        )

    def detect_batch(
        self, images: Sequence[np.ndarray], regions: Sequence[Sequence[Region] | None] | None = None
    ) -> list[RawBoxes]:
        """Full frames always: on a GPU one batched pass beats many crops."""
        if not images:
            return []
        if self.tensor_preprocess:
            return self.tensor_detector().detect(images, self.confidence, self.classes)
        return self.predict_batch(images)

    def tensor_detector(self) -> TensorDetector:
        """The on-device path's network, prepared once (again only if ``half`` was switched since)."""
        if self._tensor is None or self._tensor.half != self.half:
            from detector.backends.yolo_tensor import TensorDetector

            self._tensor = TensorDetector.prepare(self._model.model, self.device, self.half, self.image_size)
        return self._tensor

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[RawBoxes]:
        """The reference path: ultralytics' ``predict()`` with its CPU letterbox, per image."""
        if not images:
            return []
        precision: dict[str, Any] = {"half": self.half}
        if _HAS_QUANTIZE_ARG:  # ultralytics 8.4 replaced (and warns about) `half`
            precision = {"quantize": 16 if self.half else None}
        results = self._model.predict(
            list(images),
            **precision,
            classes=list(self.classes) if self.classes is not None else None,
            conf=self.confidence,
            device=self.device,
            imgsz=self.image_size,
            batch=len(images),
            verbose=False,
        )
        out = []
        for result in results:
            boxes = result.boxes
            out.append(
                RawBoxes(
                    boxes.xyxy.cpu().numpy().astype(np.float32),
                    boxes.conf.cpu().numpy().astype(np.float32),
                    boxes.cls.cpu().numpy().astype(np.int32),
                )
            )
        return out
