"""Fixity: re-read every stored artifact version, compare it with what was sealed, record and alert.

For each evidence item (or one): every artifact version recorded in the database
is read back from the store while hashing; its SHA-256 and size must equal the
sealed values, and the manifest's hash must equal the item's ``manifest_sha256``
(and, for a standard manifest, the hashes it lists must equal the artifacts').
The result (ok | mismatch | missing, per artifact) is appended to the item's
custody chain as ``fixity_checked``. The custody chains are then verified against
the newest signed checkpoints in the WORM bucket.

Alerting: every mismatch, missing version or broken chain is logged at ERROR
with a line starting ``FIXITY ALERT`` (what log-based alerting matches) and
counted in ``cctv_fixity_mismatches_total``; ``cctv fixity`` then exits 1. A
store that cannot be reached is NOT recorded as "missing": the item is reported
as ``error`` (exit 1) and nothing is written to its chain, so a network outage
never reads as lost evidence in the custody log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from minio.error import S3Error
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from api import custody
from api.checkpoints import CustodyVerification, PublicKey, verify_against_checkpoints
from api.custody import Actor
from api.metrics import ApiMetrics
from api.models import EvidenceArtifactRow, EvidenceRow
from cctv.config import Settings
from evidence_store.custody import ActorRole, CustodyAction, CustodyEntry

log = logging.getLogger(__name__)

FIXITY_ACTOR = Actor("fixity-job", ActorRole.SYSTEM)
OK, MISMATCH, MISSING, ERROR = "ok", "mismatch", "missing", "error"
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket"})
CHUNK = 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ArtifactFixity:
    kind: str
    key: str
    version_id: str | None
    result: str
    expected_sha256: str
    expected_size: int
    actual_sha256: str | None = None
    actual_size: int | None = None
    error: str | None = None


@dataclass
class ItemFixity:
    evidence_id: uuid.UUID
    artifacts: list[ArtifactFixity]
    notes: list[str] = field(default_factory=list)  # mismatches not tied to one artifact's bytes
    error: str | None = None
    entry: CustodyEntry | None = None

    @property
    def result(self) -> str:
        if self.error is not None:
            return ERROR
        results = {a.result for a in self.artifacts}
        if MISMATCH in results or self.notes:
            return MISMATCH
        return MISSING if MISSING in results else OK


@dataclass
class FixityReport:
    items: list[ItemFixity]
    custody: CustodyVerification | None
    custody_error: str | None = None

    @property
    def ok(self) -> bool:
        items_ok = all(i.result == OK for i in self.items)
        return items_ok and self.custody is not None and self.custody.ok

    def render(self) -> str:
        lines = [_item_line(item) for item in self.items]
        counts = {r: sum(1 for i in self.items if i.result == r) for r in (OK, MISMATCH, MISSING, ERROR)}
        if self.custody is not None:
            state = "OK" if self.custody.ok else f"{len(self.custody.problems)} PROBLEM(S)"
            lines.append(
                f"custody log: {self.custody.chains_checked} chains, {self.custody.entries_checked} entries, "
                f"{len(self.custody.checkpoints)} checkpoint(s) checked: {state}"
            )
            lines += [f"  - {p}" for p in self.custody.problems]
            lines += [f"  warning: {w}" for w in self.custody.warnings]
        else:
            lines.append(f"custody log: NOT CHECKED ({self.custody_error})")
        lines.append(
            f"fixity: {len(self.items)} item(s): "
            + ", ".join(f"{n} {r}" for r, n in counts.items())
            + (" -> OK" if self.ok else " -> ALERT")
        )
        return "\n".join(lines) + "\n"


def _item_line(item: ItemFixity) -> str:
    parts = [f"{a.kind} {a.result}" for a in item.artifacts]
    extra = "; ".join(item.notes + ([item.error] if item.error else []))
    return f"evidence {item.evidence_id}  {item.result.upper():8}  {', '.join(parts)}" + (
        f"  ({extra})" if extra else ""
    )


# --------------------------------------------------------------------------- reading back


def _read(store: Minio, bucket: str, artifact: EvidenceArtifactRow, keep: bool) -> tuple[str, int, bytes]:
    """SHA-256 and size of one stored version (and its bytes when ``keep``, for the manifest)."""
    digest, size, kept = hashlib.sha256(), 0, bytearray()
    response = store.get_object(bucket, artifact.key, version_id=artifact.version_id)
    try:
        for chunk in response.stream(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if keep and size <= MAX_MANIFEST_BYTES:
                kept += chunk
    finally:
        response.close()
        response.release_conn()
    return digest.hexdigest(), size, bytes(kept)


def _check_artifact(
    store: Minio, bucket: str, artifact: EvidenceArtifactRow, manifest: list[bytes]
) -> ArtifactFixity:
    def outcome(result: str, **found: Any) -> ArtifactFixity:
        return ArtifactFixity(
            kind=artifact.kind,
            key=artifact.key,
            version_id=artifact.version_id,
            result=result,
            expected_sha256=artifact.sha256,
            expected_size=artifact.size,
            **found,
        )

    try:
        sha, size, data = _read(store, bucket, artifact, keep=artifact.kind == "manifest")
    except S3Error as exc:
        if exc.code in GONE_CODES:
            return outcome(MISSING, error=f"{exc.code}: {exc.message}")
        raise
    if artifact.kind == "manifest":
        manifest.append(data)
    same = sha == artifact.sha256 and size == artifact.size
    return outcome(OK if same else MISMATCH, actual_sha256=sha, actual_size=size)


def _manifest_notes(evidence: EvidenceRow, checks: list[ArtifactFixity], manifest: bytes | None) -> list[str]:
    """The item's manifest hash, and (standard manifests) the artifact hashes it lists, against the rest."""
    notes = []
    stored = next((c for c in checks if c.kind == "manifest"), None)
    if stored is not None and stored.actual_sha256 not in (None, evidence.manifest_sha256):
        notes.append(
            f"manifest hashes to {stored.actual_sha256}, the item was sealed as {evidence.manifest_sha256}"
        )
    try:
        listed = json.loads(manifest or b"{}").get("artifacts", {})
    except (ValueError, AttributeError):
        return notes
    for check in checks:
        entry = listed.get(check.kind) if isinstance(listed, dict) else None
        if isinstance(entry, dict) and entry.get("sha256") not in (None, check.expected_sha256):
            notes.append(
                f"manifest lists {check.kind} as {entry['sha256']}, the database as {check.expected_sha256}"
            )
    return notes


def check_item(store: Minio, evidence: EvidenceRow) -> ItemFixity:
    """Re-read every artifact version of one item; nothing is written."""
    manifest: list[bytes] = []
    try:
        checks = [_check_artifact(store, evidence.bucket, a, manifest) for a in evidence.artifacts]
    except Exception as exc:  # store unreachable: unknown, not missing
        return ItemFixity(evidence.evidence_id, [], error=f"store unreadable: {exc}")
    notes = _manifest_notes(evidence, checks, manifest[0] if manifest else None)
    return ItemFixity(evidence.evidence_id, checks, notes)


# --------------------------------------------------------------------------- the job


def _record(sessions: sessionmaker[Session], item: ItemFixity, actor: Actor) -> CustodyEntry:
    details: dict[str, Any] = {
        "result": item.result,
        "artifacts": [asdict(a) for a in item.artifacts],
        "notes": item.notes,
    }

    def work(session: Session) -> CustodyEntry:
        return custody.append(
            session,
            item.evidence_id,
            CustodyAction.FIXITY_CHECKED,
            actor,
            at=datetime.now(UTC),
            details=details,
        )

    with sessions() as session:
        return custody.commit_with_retry(session, work)


def _alert(item: ItemFixity, metrics: ApiMetrics) -> None:
    metrics.fixity_checks.labels(result=item.result).inc()
    if item.result == ERROR:
        log.error("FIXITY ERROR evidence %s not checked: %s", item.evidence_id, item.error)
        return
    for artifact in item.artifacts:
        if artifact.result != OK:
            metrics.fixity_mismatches.labels(kind=artifact.kind).inc()
            log.error(
                "FIXITY ALERT evidence %s %s %s@%s: %s (sealed sha256 %s, %d bytes; read %s, %s bytes)",
                item.evidence_id,
                artifact.kind,
                artifact.key,
                artifact.version_id,
                artifact.result,
                artifact.expected_sha256,
                artifact.expected_size,
                artifact.actual_sha256,
                artifact.actual_size,
            )
    for note in item.notes:
        metrics.fixity_mismatches.labels(kind="manifest").inc()
        log.error("FIXITY ALERT evidence %s: %s", item.evidence_id, note)


def run_fixity(
    sessions: sessionmaker[Session],
    store: Minio,
    settings: Settings,
    public_keys: list[PublicKey],
    metrics: ApiMetrics,
    *,
    evidence_id: uuid.UUID | None = None,
    actor: Actor = FIXITY_ACTOR,
) -> FixityReport:
    """Check every item (or one), record each result in its chain, then verify the custody log."""
    with sessions() as session:
        query = (
            select(EvidenceRow).options(selectinload(EvidenceRow.artifacts)).order_by(EvidenceRow.sealed_at)
        )
        if evidence_id is not None:
            query = query.where(EvidenceRow.evidence_id == evidence_id)
        evidence = list(session.scalars(query))
    items = []
    for row in evidence:
        item = check_item(store, row)
        if item.result != ERROR:
            item.entry = _record(sessions, item, actor)
        _alert(item, metrics)
        items.append(item)
    report = FixityReport(items, None)
    try:
        with sessions() as session:
            report.custody = verify_against_checkpoints(session, store, settings, public_keys)
    except Exception as exc:
        report.custody_error = str(exc)
        log.error("FIXITY ERROR custody log not checked against checkpoints: %s", exc)
    if report.custody is not None:
        for problem in report.custody.problems:
            metrics.fixity_mismatches.labels(kind="custody_log").inc()
            log.error("FIXITY ALERT custody log: %s", problem)
    return report


def main(settings: Settings, evidence_id: str | None) -> int:
    """``cctv fixity``: run once against the configured database and store; 0 only if all is intact."""
    from api.checkpoints import published_keys
    from api.db import make_engine, make_sessions, run_migrations
    from cctv.objectstore import make_client
    from evidence_store.signing import load_signer

    wanted = uuid.UUID(evidence_id) if evidence_id else None
    engine = make_engine(settings.api.database_url)
    try:
        run_migrations(engine)
        keys = published_keys(load_signer(settings), settings)
        report = run_fixity(
            make_sessions(engine), make_client(settings.s3), settings, keys, ApiMetrics(), evidence_id=wanted
        )
    finally:
        engine.dispose()
    print(report.render(), end="")
    if wanted is not None and not report.items:
        print(f"cctv fixity: evidence {wanted} does not exist")
        return 1
    return 0 if report.ok else 1
