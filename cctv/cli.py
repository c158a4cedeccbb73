"""`cctv`: one command for the demo, the local stack, each worker and the benchmark.

Each worker subcommand is how the component runs in production (one process
per pod): settings come from ``CCTV_*`` environment variables, the camera
registry from ``CCTV_CAMERAS_FILE``, and SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from cctv.config import CameraRegistry, ConfigError, Settings, describe_validation_error
from cctv.runtime import configure_logging, stop_on_signals
from cctv.stack import LocalStack, StackError

WorkerRun = Callable[[Settings, CameraRegistry, threading.Event], None]
DEFAULT_PETS_DIR = Path("../shared/data/pets09-s2l1")  # where the project's shared data lives


def load_settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "cameras_file", None):
        overrides["cameras_file"] = Path(args.cameras_file)
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"settings: {describe_validation_error(exc)}") from exc
    offset = getattr(args, "port_offset", 0) or 0
    if offset:
        settings = settings.model_copy(update={"stack": settings.stack.shifted(offset)})
    return settings


def local_stack(settings: Settings) -> LocalStack:
    return LocalStack(
        data_dir=settings.data_dir,
        access_key=settings.s3.access_key,
        secret_key=settings.s3.secret_key.get_secret_value(),
        ports=settings.stack,
        region=settings.s3.region,
    )


# --------------------------------------------------------------------------- subcommands


def cmd_stack(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    stack = local_stack(settings)
    if args.action == "up":
        stack.up()
        print(f"broker  {stack.kafka_bootstrap}   (Kafka protocol, Tansu)")
        print(f"s3      http://{stack.s3_endpoint}   (SeaweedFS; access key {settings.s3.access_key})")
        print(f"data    {settings.data_dir.resolve()}")
    elif args.action == "down":
        stack.down()
        print("stack stopped")
    for name, state in stack.status().items():
        print(f"{name:6}  {state}")
    return 0


def _run_worker(args: argparse.Namespace, load_run: Callable[[], WorkerRun]) -> int:
    """Validate settings and cameras first (fast, clear errors), then import the worker (slow: torch)."""
    settings = load_settings(args)
    registry = CameraRegistry.load(settings.cameras_file)
    run = load_run()
    stop = threading.Event()
    stop_on_signals(stop)
    run(settings, registry, stop)
    return 0


def _ingest(cameras: list[str] | None) -> WorkerRun:
    from ingest.worker import run_ingest

    return lambda settings, registry, stop: run_ingest(settings, registry, stop, camera_ids=cameras)


def _detect() -> WorkerRun:
    from detector.worker import run_detector

    return run_detector


def _evidence() -> WorkerRun:
    from evidence_store.worker import run_evidence

    return run_evidence


def _api() -> WorkerRun:
    from api.app import run_api

    return run_api


def cmd_ingest(args: argparse.Namespace) -> int:
    cameras = args.cameras.split(",") if args.cameras else None
    return _run_worker(args, lambda: _ingest(cameras))


def cmd_detect(args: argparse.Namespace) -> int:
    return _run_worker(args, _detect)


def cmd_evidence(args: argparse.Namespace) -> int:
    return _run_worker(args, _evidence)


def cmd_api(args: argparse.Namespace) -> int:
    return _run_worker(args, _api)


def cmd_fixity(args: argparse.Namespace) -> int:
    """Re-read stored evidence, compare hashes, record in the custody log; exit 1 on any alert."""
    from api.fixity import main as run_fixity

    try:
        return run_fixity(load_settings(args), args.evidence_id)
    except ValueError as exc:
        print(f"cctv fixity: error: {exc}", file=sys.stderr)
        return 2


def cmd_demo(args: argparse.Namespace) -> int:
    from cctv.demo import run_demo

    settings = load_settings(args)
    stop = threading.Event()
    stop_on_signals(stop)
    return run_demo(settings, stop, run_for_s=args.run_for)


def cmd_bench(args: argparse.Namespace) -> int:
    from cctv.bench import run_bench

    if args.log_level == "INFO":  # the workers' progress logs would bury the numbers
        logging.getLogger().setLevel(logging.WARNING)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    return run_bench(load_settings(args), quick=args.quick, only=only)


def _read_key(value: str) -> str | bytes:
    """A --public-key value: the key itself (base64/hex) or a file holding it."""
    path = Path(value)
    return path.read_bytes() if path.is_file() else value


def cmd_verify(args: argparse.Namespace) -> int:
    """Offline: no settings, no services, only the bundle, the trusted keys and the TSA CA."""
    from evidence_store.verify import verify_bundle

    bundle = Path(args.bundle)
    if not bundle.is_file():
        print(f"cctv verify: error: bundle {bundle} does not exist", file=sys.stderr)
        return 2
    try:
        keys = [_read_key(value) for value in args.public_key]
        tsa_ca = Path(args.tsa_ca).read_bytes() if args.tsa_ca else None
        report = verify_bundle(bundle, keys, tsa_ca)
    except (OSError, ValueError) as exc:
        print(f"cctv verify: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.render(), end="")
    return 0 if report.ok else 1


def cmd_eval(args: argparse.Namespace) -> int:
    """Score the detector stack and the rules against ground truth; print and write the results file.

    Sections: ``pets`` (detection and tracking on PETS09 S2L1), ``loitering`` (loitering alerts against
    the annotated dwell times on PETS09), ``sim`` (every rule on simulated scenes with exact ground truth,
    false alerts per camera-hour, inference saved). PETS sections are skipped, with the reason written,
    where the footage is absent; the simulated scenes need nothing outside the project.
    """
    from datetime import UTC, datetime

    from detector import evaluation_pets, evaluation_sim
    from detector.evaluation_loitering_report import evaluate_loitering_pets, markdown_section

    sections = {name.strip() for name in args.sections.split(",") if name.strip()}
    unknown = sections - {"pets", "loitering", "sim"}
    if unknown:
        print(
            f"cctv eval: error: unknown section(s) {sorted(unknown)}; use pets, loitering, sim",
            file=sys.stderr,
        )
        return 2
    pets_dir = Path(args.pets_dir)
    have_pets = (pets_dir / "vtest.avi").is_file() and (pets_dir / "gt.txt").is_file()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    command = (
        f"cctv eval --sections {','.join(sorted(sections))} --pets-dir {args.pets_dir} --fps {args.fps:g} "
        f"--backends {args.backends}"
        + (f" --frames {args.frames}" if args.frames else "")
        + (" --quick" if args.quick else "")
        + f" --output {args.output}"
    )
    now = datetime.now(UTC)
    parts = [f"# Evaluation results\n\nProduced by `{command}` on {now:%Y-%m-%d %H:%M} UTC.\n"]
    missing = f"skipped: {pets_dir} lacks vtest.avi and gt.txt (PETS09 S2L1, see DESIGN.md)"
    if "pets" in sections:
        if have_pets:
            results = [
                evaluation_pets.evaluate_backend(pets_dir, name, fps=args.fps, limit=args.frames)
                for name in backends
            ]
            print(evaluation_pets.render_text(results), end="")
            parts.append(evaluation_pets.render_markdown(results, command=command, when=now, fps=args.fps))
        else:
            print(missing, file=sys.stderr)
            parts.append(f"## Detection and tracking on PETS09 S2L1\n\n{missing}\n")
    if "loitering" in sections:
        if have_pets:
            for name in backends:
                report = evaluate_loitering_pets(pets_dir, fps=args.fps, max_frames=args.frames, backend=name)
                section = markdown_section(report, command=command)
                print(section)
                parts.append(section)
        else:
            parts.append(f"## Loitering on PETS09 S2L1\n\n{missing}\n")
    if "sim" in sections:
        results_sim = []
        for scenario in evaluation_sim.scenarios(quick=args.quick):
            result = evaluation_sim.run_scenario(scenario, fps=args.fps)
            print(f"{scenario.name}: alerts {list(result.alerts)}, {result.seconds:.0f}s", flush=True)
            results_sim.append(result)
        section = evaluation_sim.render_markdown(results_sim, fps=args.fps)
        print(section)
        parts.append(section)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(parts))
    print(f"written to {output}")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """Accounts without a running API: the first admin of a fresh install, unlocks, password resets, keys."""
    from api import accounts, auth

    settings = load_settings(args)
    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()] if args.cameras else None
    try:
        options: dict[str, object] = {
            "role": args.role,
            "display_name": args.display_name,
            "cameras": cameras,
        }
        if args.action in ("add", "passwd"):
            options["password"] = accounts.read_password(args.password_stdin)
        if args.action == "key" and args.secret_file:
            options["secret"] = Path(args.secret_file).read_text().strip()
        print(accounts.run(settings, args.action, args.name, **options))
    except (auth.AuthError, OSError) as exc:
        print(f"cctv users: error: {exc}", file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cctv", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    parser.add_argument("--data-dir", help="local data directory (default: CCTV_DATA_DIR or ./var)")
    parser.add_argument("--cameras-file", help="camera registry YAML (default: CCTV_CAMERAS_FILE)")
    parser.add_argument("--port-offset", type=int, default=0, help="shift every local stack port by N")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="local stack + simulated cameras + all workers + API")
    demo.add_argument("--run-for", type=float, default=None, help="stop after N seconds (default: Ctrl-C)")
    demo.set_defaults(func=cmd_demo)

    stack = sub.add_parser("stack", help="start/stop the local broker and S3 store")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(func=cmd_stack)

    ingest = sub.add_parser("ingest", help="pull frames from cameras onto Kafka")
    ingest.add_argument("--cameras", help="comma-separated camera ids this worker owns (default: all)")
    ingest.set_defaults(func=cmd_ingest)

    sub.add_parser("detect", help="flag incidents from the frames topic").set_defaults(func=cmd_detect)
    sub.add_parser("evidence", help="seal evidence for closed incidents").set_defaults(func=cmd_evidence)
    sub.add_parser("api", help="serve the REST API and persist topics").set_defaults(func=cmd_api)

    fixity = sub.add_parser("fixity", help="re-read stored evidence, compare hashes, alert on mismatch")
    fixity.add_argument("--evidence-id", help="check only this evidence item (default: all)")
    fixity.set_defaults(func=cmd_fixity)

    bench = sub.add_parser("bench", help="measure throughput and latency on this machine")
    bench.add_argument("--quick", action="store_true", help="short runs (CI smoke)")
    bench.add_argument("--only", help="comma-separated sections: broker,ingest,detector,evidence,e2e")
    bench.set_defaults(func=cmd_bench)

    verify = sub.add_parser("verify", help="check an export bundle offline (hashes, signatures, custody)")
    verify.add_argument("bundle", help="the export bundle (.zip)")
    verify.add_argument(
        "--public-key",
        action="append",
        required=True,
        help="trusted Ed25519 public key (base64 or hex) or a file holding it; repeatable",
    )
    verify.add_argument("--tsa-ca", help="PEM of the trusted timestamp authority CA")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=cmd_verify)

    evaluate = sub.add_parser(
        "eval", help="detector and rule accuracy vs ground truth (PETS09, simulated scenes)"
    )
    evaluate.add_argument(
        "--sections", default="pets,loitering,sim", help="comma-separated: pets, loitering, sim (default all)"
    )
    evaluate.add_argument("--quick", action="store_true", help="simulated negative scenes 2 min, not 10")
    evaluate.add_argument(
        "--pets-dir", default=str(DEFAULT_PETS_DIR), help="folder with vtest.avi and gt.txt"
    )
    evaluate.add_argument("--fps", type=float, default=5.0, help="analytics sampling rate (default 5)")
    evaluate.add_argument("--backends", default="hog,yolo", help="comma-separated registry names")
    evaluate.add_argument("--frames", type=int, default=None, help="only the first N sampled frames")
    evaluate.add_argument("--output", default="eval/results.md", help="Markdown table to write")
    evaluate.set_defaults(func=cmd_eval)
    users = sub.add_parser(
        "users", help="accounts and API keys from the command line (first admin, unlock, password reset)"
    )
    users.add_argument("action", choices=("add", "passwd", "unlock", "key"))
    users.add_argument("name", help="username (add, passwd, unlock) or the API key's name (key)")
    users.add_argument("--role", default="operator", choices=("operator", "legal", "ops", "admin"))
    users.add_argument("--display-name", default="", help="full name shown in the app (add)")
    users.add_argument("--cameras", help="comma-separated cameras the account may see (default: all)")
    users.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    users.add_argument("--secret-file", help="key: import this secret (e.g. a Kubernetes Secret)")
    users.set_defaults(func=cmd_users)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        result: int = args.func(args)
        return result
    except (ConfigError, StackError) as exc:
        print(f"cctv: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
