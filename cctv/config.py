"""Configuration: the camera registry (YAML) and the service settings (environment).

The rules' own settings (zones, loitering, tamper, area change, classifier) are
in :mod:`cctv.rule_config`.

Every model forbids unknown fields so a typo in a camera file is an error that
names the field, not a silently ignored setting. Cross-field rules are named
validators so the error says which rule was broken.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cctv.contracts import CameraId
from cctv.rule_config import ClassifierRuleConfig, Strict, TamperRuleConfig, Zone

DEV_S3_SECRET = "cctv-dev-secret-change-me"  # noqa: S105 - refused outside development


class ConfigError(ValueError):
    """A configuration file or setting is invalid; the message names the field."""


# --------------------------------------------------------------------------- camera registry


class Resize(Strict):
    width: int = Field(gt=0, le=7680)
    height: int = Field(gt=0, le=4320)


SOURCE_PATTERN = re.compile(r"^(rtsp|rtsps|http|https|file|sim)://.+|^/.+")


class Camera(Strict):
    id: CameraId = Field(description="stable id; the Kafka key of all its messages")
    name: str = Field(description="operator-facing name, burned into working copies")
    location: str = Field(default="", description="street address or site description")
    source: str = Field(description="rtsp://, http(s)://, file:// or absolute path, or sim://<scene>")
    fps: float = Field(default=5.0, gt=0, le=60, description="analytics frames per second to sample")
    resize: Resize | None = Field(default=None, description="resize frames before encoding")
    jpeg_quality: int = Field(default=90, ge=30, le=100, description="JPEG quality of ingested frames")
    enabled: bool = Field(default=True, description="a disabled camera is not ingested")
    zones: tuple[Zone, ...] = Field(default=(), description="analytics zones")
    tamper: TamperRuleConfig | None = Field(
        default=None, description="camera tamper rule (covered, defocused, sprayed, moved); opt-in"
    )
    classifier: ClassifierRuleConfig | None = Field(
        default=None,
        description="alert on what the trained classifier model (detector.classifier) sees; opt-in",
    )

    @model_validator(mode="after")
    def source_has_known_scheme(self) -> Camera:
        if not SOURCE_PATTERN.match(self.source):
            raise ValueError(
                f"source {self.source!r}: use rtsp://, http(s)://, file://, an absolute path or sim://"
            )
        return self

    @model_validator(mode="after")
    def zone_ids_unique(self) -> Camera:
        ids = [z.id for z in self.zones]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate zone ids: {', '.join(dupes)}")
        return self

    def with_settings(self, settings: Mapping[str, object]) -> Camera:
        """This camera with its :data:`CAMERA_SETTINGS` replaced by ``settings`` (JSON-like values), every
        validator run again (ValidationError naming the field); ValueError for a field not editable."""
        if fixed := sorted(set(settings) - set(CAMERA_SETTINGS)):
            raise ValueError(f"camera settings {fixed} are not editable, only {list(CAMERA_SETTINGS)}")
        return Camera.model_validate({**self.model_dump(), **settings})


# What the API may edit on a running camera (api.camera_config): what the detector reads. The rest
# (name, location, source, fps, resize, jpeg_quality, enabled) is read by ingest and evidence from
# the registry file, so it stays in the file.
CAMERA_SETTINGS = ("zones", "tamper", "classifier")


class CameraRegistry(Strict):
    cameras: tuple[Camera, ...] = Field(description="all cameras of the site")

    @model_validator(mode="after")
    def camera_ids_unique(self) -> CameraRegistry:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate camera ids: {', '.join(dupes)}")
        return self

    def by_id(self) -> dict[str, Camera]:
        return {c.id: c for c in self.cameras}

    @classmethod
    def load(cls, path: Path) -> CameraRegistry:
        """Read and validate a registry file; errors name the file and the bad field."""
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read camera registry: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {describe_validation_error(exc)}") from exc


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


# --------------------------------------------------------------------------- service settings


class KafkaSettings(Strict):
    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="comma-separated host:port list")
    frames_topic: str = Field(default="cctv.frames", description="sampled frames, keyed by camera")
    incidents_topic: str = Field(default="cctv.incidents", description="incident lifecycle events")
    evidence_topic: str = Field(default="cctv.evidence", description="sealed evidence items")
    status_topic: str = Field(default="cctv.camera-status", description="camera heartbeats")
    dead_letter_topic: str = Field(default="cctv.dead-letter", description="messages that failed validation")
    camera_config_topic: str = Field(
        default="cctv.camera-config",
        description="camera zones and rule settings edited in the API, keyed by camera (compacted)",
    )
    frames_partitions: int = Field(default=12, ge=1, description="partitions of the frames topic")
    frames_retention_s: int = Field(
        default=3600, ge=60, description="frames retention: the rolling buffer evidence is cut from"
    )
    max_message_bytes: int = Field(default=2_000_000, ge=100_000, description="largest frame accepted")
    session_timeout_ms: int = Field(default=10_000, ge=3000, description="consumer group session timeout")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"


class S3Settings(Strict):
    endpoint: str = Field(default="127.0.0.1:8333", description="host:port of the S3 API")
    secure: bool = Field(default=False, description="use HTTPS")
    access_key: str = Field(default="cctv", description="access key id")
    secret_key: SecretStr = Field(default=SecretStr(DEV_S3_SECRET), description="secret access key")
    region: str = Field(default="us-east-1", description="region name sent in signatures")
    evidence_bucket: str = Field(default="cctv-evidence", description="bucket with Object Lock enabled")
    retention_days: int = Field(default=31, ge=1, description="default COMPLIANCE retention of new evidence")


class ClassifierModelSettings(Strict):
    """The trained classifier (graffiti, fights, ...) run beside the person detector on cameras with a
    ``classifier`` rule. It shares the person detector's models_dir, device, half, tensor_preprocess,
    batch_size and allow_unverified_weights: both run on the same worker."""

    backend: str = Field(description="registry name of the backend (detector.backends.BACKENDS), e.g. 'yolo'")
    model: str = Field(
        default="", description="model name from models/manifest.yaml (yolo); its classes are the labels"
    )
    confidence: float = Field(
        default=0.25, ge=0, le=1, description="minimum box confidence the model reports (cameras filter more)"
    )
    every_s: float = Field(
        default=1.0,
        gt=0,
        description="classify a camera's frame at most this often, and only frames the motion gate sends to "
        "the person detector: bounds the classifier's cost per camera",
    )


class DetectorSettings(Strict):
    backend: str = Field(default="hog", description="registry name: 'hog' (CPU, no download) or 'yolo'")
    model: str = Field(default="yolo11n", description="model name from models/manifest.yaml (yolo)")
    models_dir: Path = Field(default=Path("models"), description="where weights files live")
    device: str = Field(default="auto", description="'auto', 'cpu', 'cuda', 'cuda:0', ...")
    half: bool = Field(default=False, description="FP16 inference (GPU only)")
    tensor_preprocess: bool = Field(
        default=True,
        description=(
            "yolo: letterbox the stacked batch and run NMS on the inference device (GPU throughput); "
            "false = ultralytics' predict() with its per-image CPU letterbox, the reference path"
        ),
    )
    batch_size: int = Field(default=8, ge=1, description="frames per batched inference across cameras")
    confidence: float = Field(default=0.4, ge=0, le=1, description="minimum person confidence")
    motion_gate: bool = Field(default=True, description="skip inference on frames without motion")
    motion_threshold: float = Field(
        default=0.002, ge=0, le=1, description="fraction of changed pixels that counts as motion"
    )
    recheck_s: float = Field(
        default=1.0, gt=0, description="run the detector at least this often while people are tracked"
    )
    detect_classes: tuple[int, ...] | None = Field(
        default=(0,),
        description="class ids the backend returns: (0,) = persons, what the person pipeline needs; the "
        "classifier backend is built with None = every class of its model",
    )
    classifier: ClassifierModelSettings | None = Field(
        default=None,
        description="trained classifier model for cameras with a classifier rule (none: such a camera is a "
        "configuration error)",
    )
    group_id: str = Field(default="cctv-detector", description="Kafka consumer group")
    allow_unverified_weights: bool = Field(
        default=False,
        description="load weights whose manifest sha256 is null (development only; breaks chain of custody)",
    )
    hog_motion_crops: bool = Field(
        default=True, description="HOG: scan only motion regions and tracked boxes, not the whole frame"
    )
    hog_scale: float = Field(
        default=1.0,
        gt=0,
        le=4,
        description=(
            "HOG: resize factor before scanning. HOG's window is 64x128 px and finds people ~100 px tall "
            "and up; >1 upscales for cameras where people are smaller (e.g. 1.5-2 for 60-120 px people, "
            "cost grows with the square), <1 downscales for close cameras (faster, misses small people)"
        ),
    )
    camera_silence_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "close a camera's open incidents (and forget its state) when no frame of it has reached the "
            "detector for this many seconds of the detector's clock: a stream that ended or a camera that "
            "died mid-incident would otherwise leave the incident open and its evidence never sealed"
        ),
    )


class EvidenceSettings(Strict):
    pre_roll_s: float = Field(default=10.0, ge=0, description="seconds of video before the incident starts")
    post_roll_s: float = Field(default=5.0, ge=0, description="seconds of video after it ends")
    read_timeout_s: float = Field(
        default=30.0, gt=0, description="seal with what exists if post-roll frames do not arrive by then"
    )
    signing_key_path: Path = Field(default=Path("var/keys/evidence-signing.key"), description="Ed25519 key")
    retired_public_keys: tuple[str, ...] = Field(
        default=(),
        description="public keys (base64 or hex) of retired signing keys: still served so old items verify",
    )
    group_id: str = Field(default="cctv-evidence", description="Kafka consumer group")
    tsa_url: str | None = Field(
        default=None,
        description="RFC 3161 time-stamping authority URL; when set each manifest gets a timestamp token",
    )
    tsa_ca_path: Path | None = Field(
        default=None,
        description="PEM certificate(s) of the TSA's issuing CA, copied into export bundles for verification",
    )
    tsa_timeout_s: float = Field(default=10.0, gt=0, description="TSA request timeout")
    checkpoint_retention_days: int = Field(
        default=2557, ge=1, description="COMPLIANCE retention of custody-log checkpoints (default 7 years)"
    )
    export_retention_days: int = Field(
        default=31, ge=1, description="COMPLIANCE retention of stored export bundles"
    )


class AuthSettings(Strict):
    """Logins, tokens and lockout (``api.auth``): short-lived tokens, refreshed within a session."""

    token_ttl_s: float = Field(default=900.0, ge=30, description="lifetime of one bearer token")
    session_max_s: float = Field(default=43200.0, ge=60, description="refreshes end this long after login")
    lockout_after: int = Field(default=5, ge=1, description="consecutive failed logins that lock an account")
    lockout_s: float = Field(default=900.0, gt=0, description="how long a locked account stays locked")
    min_password_chars: int = Field(default=12, ge=8, description="shortest password accepted")
    secure_cookies: bool = Field(default=False, description="Secure flag on the session cookie (TLS)")


class ApiSettings(Strict):
    host: str = Field(default="127.0.0.1", description="bind address")
    port: int = Field(default=8000, ge=1, le=65535, description="bind port")
    database_url: str = Field(
        default="sqlite:///var/cctv.db",
        description="SQLAlchemy URL: sqlite:///... or postgresql+psycopg://...",
    )
    group_id: str = Field(default="cctv-api", description="Kafka consumer group of the persister")
    camera_heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        description="ingest heartbeat period; no heartbeat for 3x this marks a camera stale",
    )
    custody_checkpoint_s: float = Field(
        default=300.0,
        gt=0,
        description="how often the API writes a signed checkpoint of all custody chain heads (WORM bucket)",
    )
    share_max_hours: float = Field(
        default=168.0, gt=0, description="longest lifetime of a share link for an external recipient"
    )
    feed_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often each live alert stream (/api/v1/alerts/stream) polls the database for changes",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)


class StackPorts(Strict):
    """Loopback ports of the embedded local stack; all configurable so two stacks can coexist."""

    kafka: int = Field(default=9092, ge=1, le=65535, description="Kafka protocol (Tansu)")
    s3: int = Field(default=8333, ge=1, le=65535, description="S3 API (SeaweedFS)")
    master: int = Field(default=9333, ge=1, le=65535, description="SeaweedFS master")
    volume: int = Field(default=9340, ge=1, le=65535, description="SeaweedFS volume server")
    filer: int = Field(default=8888, ge=1, le=65535, description="SeaweedFS filer")
    admin: int = Field(default=7646, ge=1, le=65535, description="SeaweedFS admin server")

    def shifted(self, delta: int) -> StackPorts:
        """Every port moved by ``delta`` (tests run beside a demo this way)."""
        return type(self)(**{name: getattr(self, name) + delta for name in type(self).model_fields})

    def all(self) -> dict[str, int]:
        """Ports that must be free, including SeaweedFS's gRPC ports (HTTP port + 10000)."""
        ports = {name: getattr(self, name) for name in type(self).model_fields}
        for name in ("s3", "master", "volume", "filer", "admin"):
            ports[f"{name}-grpc"] = ports[name] + 10000
        return ports


class Settings(BaseSettings):
    """Service settings, from ``CCTV_*`` environment variables (nested with ``__``)."""

    model_config = SettingsConfigDict(
        env_prefix="CCTV_", env_nested_delimiter="__", extra="forbid", frozen=True
    )
    environment: Literal["development", "production"] = Field(
        default="development", description="production refuses development secrets"
    )
    data_dir: Path = Field(default=Path("var"), description="local data: stack, database, keys")
    cameras_file: Path = Field(default=Path("cameras.yaml"), description="camera registry YAML")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    stack: StackPorts = Field(default_factory=StackPorts, description="ports of `cctv stack` / `cctv demo`")

    @model_validator(mode="after")
    def production_refuses_dev_secrets(self) -> Settings:
        if self.environment == "production" and self.s3.secret_key.get_secret_value() == DEV_S3_SECRET:
            raise ValueError("s3.secret_key is the development default; set CCTV_S3__SECRET_KEY")
        return self
