"""`cctv demo`: the whole pipeline on one machine, as production runs it.

The embedded stack (Tansu broker + SeaweedFS S3) is started, then each worker
runs as its own process exactly as it would in a pod (`cctv ingest`, `cctv
detect`, `cctv evidence`, `cctv api`), configured through the same ``CCTV_*``
environment a pod gets. The demo only supervises: it prints what runs where,
reports alerts and sealed evidence as the API sees them, and on Ctrl-C stops
the workers (SIGTERM, so they flush and commit) and then the stack. Data stays
under the data directory, so a second run reuses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any

import httpx
import yaml
from pydantic import ValidationError

from cctv.config import CameraRegistry, ConfigError, Settings, describe_validation_error
from cctv.demo_accounts import CREDENTIALS_FILE, DEMO_PEOPLE, ensure_demo_accounts
from cctv.local_tsa import LocalTsa, LocalTsaError
from cctv.stack import LocalStack

WORKERS = ("api", "ingest", "detect", "evidence")
POLL_S = 2.0
DEMO_CAMERAS = "demo_cameras.yaml"


def demo_cameras_file(settings: Settings) -> Path:
    """The packaged simulated cameras plus the user's own cameras (``cameras_file``), if any.

    Written to the data dir so every worker process reads the same registry;
    a camera id used twice is refused with the id named.
    """
    simulated = yaml.safe_load(resources.files("cctv").joinpath(DEMO_CAMERAS).read_text())["cameras"]
    own: list[dict[str, Any]] = []
    if settings.cameras_file.exists():
        own = [c.model_dump(mode="json") for c in CameraRegistry.load(settings.cameras_file).cameras]
    merged = {"cameras": simulated + own}
    try:
        CameraRegistry.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(
            f"{settings.cameras_file} + simulated cameras: {describe_validation_error(exc)}"
        ) from exc
    target = settings.data_dir / DEMO_CAMERAS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(merged, sort_keys=False))
    return target


def worker_env(settings: Settings, stack: LocalStack, cameras_file: Path) -> dict[str, str]:
    """The environment a pod would get, pointed at the local stack."""
    data_dir = settings.data_dir.resolve()
    return {
        **os.environ,
        "CCTV_DATA_DIR": str(data_dir),
        "CCTV_CAMERAS_FILE": str(cameras_file.resolve()),
        "CCTV_KAFKA__BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "CCTV_S3__ENDPOINT": stack.s3_endpoint,
        "CCTV_API__DATABASE_URL": settings.api.database_url
        if "CCTV_API__DATABASE_URL" in os.environ
        else f"sqlite:///{data_dir / 'cctv.db'}",
        "CCTV_EVIDENCE__SIGNING_KEY_PATH": str(
            settings.evidence.signing_key_path.resolve()
            if "CCTV_EVIDENCE__SIGNING_KEY_PATH" in os.environ
            else data_dir / "keys" / "evidence-signing.key"
        ),
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Supervisor:
    """Child worker processes with their logs; stops them gracefully."""

    log_dir: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(self, name: str) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "cctv", name],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the demo only; it stops the children in order
        )

    def dead(self) -> dict[str, int]:
        return {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}

    def stop(self, timeout_s: float = 30.0) -> None:
        # Producers first so the consumers downstream can drain what was sent.
        for name in ("ingest", "detect", "evidence", "api"):
            process = self.processes.get(name)
            if process and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log in self._logs:
            log.close()


def run_demo(settings: Settings, stop: threading.Event, run_for_s: float | None = None) -> int:
    from cctv.cli import local_stack

    stack = local_stack(settings)
    print(f"starting local stack under {settings.data_dir.resolve()} ...", flush=True)
    stack.up()
    cameras_file = demo_cameras_file(settings)
    registry = CameraRegistry.load(cameras_file)
    env = worker_env(settings, stack, cameras_file)
    tsa = _start_local_tsa(settings, env)
    supervisor = Supervisor(settings.data_dir / "logs", env)
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    try:
        accounts = ensure_demo_accounts(settings, env["CCTV_API__DATABASE_URL"])
        for name in WORKERS:
            supervisor.start(name)
        _print_banner(settings, stack, registry, env, api_url, accounts)
        return _watch(supervisor, api_url, stop, run_for_s, accounts["api_key"])
    finally:
        print("stopping workers ...", flush=True)
        supervisor.stop()
        if tsa is not None:
            tsa.stop()
        print("stopping local stack ...", flush=True)
        stack.down()
        print("stopped; data kept in", settings.data_dir.resolve(), flush=True)


def _start_local_tsa(settings: Settings, env: dict[str, str]) -> LocalTsa | None:
    """A local RFC 3161 TSA (``openssl ts``) so demo evidence carries timestamp tokens like production's.

    Skipped when a TSA is configured already, or when openssl is missing (the
    evidence is then sealed without tokens, which the banner says).
    """
    if "CCTV_EVIDENCE__TSA_URL" in env:
        return None
    try:
        tsa = LocalTsa(settings.data_dir.resolve() / "tsa").start()
    except LocalTsaError as exc:
        print(f"no local TSA ({exc}): evidence is sealed without timestamp tokens", flush=True)
        return None
    env["CCTV_EVIDENCE__TSA_URL"] = tsa.url
    env["CCTV_EVIDENCE__TSA_CA_PATH"] = str(tsa.ca_pem_path)
    return tsa


def _print_banner(
    settings: Settings,
    stack: LocalStack,
    registry: CameraRegistry,
    env: dict[str, str],
    api_url: str,
    accounts: dict[str, str],
) -> None:
    from sqlalchemy.engine import make_url

    database = make_url(env["CCTV_API__DATABASE_URL"]).render_as_string(hide_password=True)
    lines = [
        "",
        "CCTV incident pipeline: running",
        f"  web app    {api_url}/  (offline; log in as one of the demo accounts below)",
        f"  API        {api_url}  (docs {api_url}/docs, incidents {api_url}/api/v1/incidents)",
        f"  broker     {stack.kafka_bootstrap}  (Kafka protocol)",
        f"  S3 store   http://{stack.s3_endpoint}  bucket {settings.s3.evidence_bucket} (Object Lock)",
        f"  database   {database}",
        f"  cameras    {env['CCTV_CAMERAS_FILE']}",
        f"  TSA        {env.get('CCTV_EVIDENCE__TSA_URL', 'none (no timestamp tokens)')}  (RFC 3161)",
    ]
    lines += [f"    - {c.id}: {c.name} <- {c.source.split('?')[0]}" for c in registry.cameras if c.enabled]
    lines.append(
        f"  accounts   (local demo only; kept in {(settings.data_dir / CREDENTIALS_FILE).resolve()})"
    )
    lines += [f"    - {name} / {accounts[name]}  ({role.value})" for name, (_d, role) in DEMO_PEOPLE.items()]
    lines.append("    - API key (legal): Authorization: Bearer " + accounts["api_key"])
    lines += [f"  logs       {(settings.data_dir / 'logs').resolve()}", "  Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def _watch(
    supervisor: Supervisor, api_url: str, stop: threading.Event, run_for_s: float | None, api_key: str
) -> int:
    """Report new incidents and evidence until stopped; fail fast if a worker dies."""
    seen: set[tuple[str, str, int]] = set()
    deadline = time.monotonic() + run_for_s if run_for_s else None
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api_url, timeout=5, headers=headers) as client:
        while not stop.wait(POLL_S):
            dead = supervisor.dead()
            if dead:
                for name, code in dead.items():
                    print(f"worker {name} exited with {code}; see {supervisor.log_dir / (name + '.log')}")
                return 1
            if deadline and time.monotonic() > deadline:
                return 0
            _report(client, seen)
    return 0


def _report(client: httpx.Client, seen: set[tuple[str, str, int]]) -> None:
    try:
        incidents = client.get("/api/v1/incidents", params={"limit": 20}).json()["items"]
    except (httpx.HTTPError, ValueError, KeyError):
        return  # API still starting
    for incident in incidents:
        iid = incident["incident_id"]
        state = (iid, incident["status"], 0)
        if state not in seen:
            seen.add(state)
            print(
                f"[{incident['status'].upper():6}] {incident['rule']} on {incident['camera_id']}"
                f" zone {incident.get('zone_id')}: {incident['summary']}  ({iid})",
                flush=True,
            )
        try:
            evidence = client.get(f"/api/v1/incidents/{iid}/evidence").json()
        except (httpx.HTTPError, ValueError):
            continue
        for item in evidence if isinstance(evidence, list) else evidence.get("items", []):
            key = (iid, item["evidence_id"], 1)
            if key not in seen:
                seen.add(key)
                print(
                    f"[SEALED] evidence {item['evidence_id']} for {iid}: {item['frame_count']} frames; "
                    f"clip {client.base_url}/api/v1/evidence/{item['evidence_id']}/clip?reason=... "
                    "(with a login or API key: every download is in the custody log)",
                    flush=True,
                )
