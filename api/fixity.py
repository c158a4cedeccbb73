"""Fixity: re-read every stored WORM object, compare it with what was recorded, record and alert.

What is re-read (see :mod:`api.fixity_targets` for the non-artifact targets):

- every evidence item's artifact versions (``evidence_artifacts``): SHA-256 and
  size must equal the sealed values, the manifest's hash must equal the item's
  ``manifest_sha256`` and (standard manifests) the hashes it lists must equal the
  artifacts'; one ``fixity_checked`` entry on the item's chain;
- every stored export bundle and every finished redaction (video, record,
  signature): one ``fixity_checked`` entry on each affected item's chain, whose
  details name the object (``object``: export | redaction, its id, the result
  per version) and whose object fields name the bundle / the redaction record;
- every custody checkpoint (document and signature; the signature must verify
  with a published key): reported in the job's summary and logs only, since a
  checkpoint belongs to no single item. Skipped when one item is asked for.

The custody chains are then verified against the newest signed checkpoints.

Alerting: every mismatch, missing version, unverifiable checkpoint or broken
chain is logged at ERROR with a line starting ``FIXITY ALERT`` (what log-based
alerting matches) and counted in ``cctv_fixity_mismatches_total{kind}``;
``cctv fixity`` then exits 1. A store that cannot be reached is NOT recorded as
"missing": the target is reported as ``error`` (exit 1) and nothing is written to
any chain, so a network outage never reads as lost evidence in the custody log.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from api import custody
from api.checkpoints import CustodyVerification, PublicKey, verify_against_checkpoints
from api.custody import Actor
from api.fixity_targets import (
    ERROR,
    MISMATCH,
    MISSING,
    OK,
    ArtifactFixity,
    CheckpointFixity,
    DerivedFixity,
    Expected,
    check_checkpoint,
    check_object,
    checkpoints_to_check,
    derived_checks,
    overall,
)
from api.metrics import ApiMetrics
from api.models import EvidenceRow
from api.serving import record_each
from cctv.config import Settings
from evidence_store.custody import ActorRole, CustodyAction, CustodyEntry

log = logging.getLogger(__name__)

FIXITY_ACTOR = Actor("fixity-job", ActorRole.SYSTEM)
RESULTS = (OK, MISMATCH, MISSING, ERROR)


@dataclass
class ItemFixity:
    evidence_id: uuid.UUID
    artifacts: list[ArtifactFixity]
    notes: list[str] = field(default_factory=list)  # mismatches not tied to one artifact's bytes
    error: str | None = None
    entry: CustodyEntry | None = None

    @property
    def result(self) -> str:
        return overall(self.artifacts, bool(self.notes), self.error)


@dataclass
class FixityReport:
    items: list[ItemFixity]
    custody: CustodyVerification | None
    custody_error: str | None = None
    derived: list[DerivedFixity] = field(default_factory=list)  # export bundles and redactions
    checkpoints: list[CheckpointFixity] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        targets: list[Any] = [*self.items, *self.derived, *self.checkpoints]
        return all(t.result == OK for t in targets) and self.custody is not None and self.custody.ok

    def render(self) -> str:
        lines = [_item_line(item) for item in self.items]
        lines += [_derived_line(d) for d in self.derived]
        lines += [_checkpoint_line(c) for c in self.checkpoints if c.result != OK]  # thousands over time
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
        exports = [d for d in self.derived if d.target == "export"]
        redactions = [d for d in self.derived if d.target == "redaction"]
        lines.append(
            "fixity: "
            + "; ".join(
                f"{len(targets)} {name}: {_counts(targets)}"
                for name, targets in (
                    ("item(s)", self.items),
                    ("export bundle(s)", exports),
                    ("redaction(s)", redactions),
                    ("checkpoint(s)", self.checkpoints),
                )
            )
            + (" -> OK" if self.ok else " -> ALERT")
        )
        return "\n".join(lines) + "\n"


def _counts(targets: Sequence[Any]) -> str:
    return ", ".join(f"{sum(1 for t in targets if t.result == r)} {r}" for r in RESULTS)


def _parts(objects: list[ArtifactFixity], notes: list[str], error: str | None) -> str:
    parts = ", ".join(f"{a.kind} {a.result}" for a in objects)
    extra = "; ".join(notes + ([error] if error else []))
    return parts + (f"  ({extra})" if extra else "")


def _item_line(item: ItemFixity) -> str:
    return f"evidence {item.evidence_id}  {item.result.upper():8}  " + _parts(
        item.artifacts, item.notes, item.error
    )


def _derived_line(target: DerivedFixity) -> str:
    items = ", ".join(str(e) for e in target.evidence_ids)
    return (
        f"{target.subject}  {target.result.upper():8}  "
        + _parts(target.objects, [], target.error)
        + (f"  [evidence {items}]")
    )


def _checkpoint_line(checkpoint: CheckpointFixity) -> str:
    notes = ["signature does not verify with any published key"] if checkpoint.signature_ok is False else []
    return f"checkpoint {checkpoint.key}  {checkpoint.result.upper():8}  " + _parts(
        checkpoint.objects, notes, checkpoint.error
    )


# --------------------------------------------------------------------------- evidence items


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
        checks = [
            check_object(
                store,
                Expected(a.kind, evidence.bucket, a.key, a.version_id, a.sha256, a.size),
                manifest if a.kind == "manifest" else None,
            )
            for a in evidence.artifacts
        ]
    except Exception as exc:  # store unreachable: unknown, not missing
        return ItemFixity(evidence.evidence_id, [], error=f"store unreadable: {exc}")
    notes = _manifest_notes(evidence, checks, manifest[0] if manifest else None)
    return ItemFixity(evidence.evidence_id, checks, notes)


# --------------------------------------------------------------------------- recording and alerting


def _record_item(sessions: sessionmaker[Session], item: ItemFixity, actor: Actor) -> CustodyEntry:
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


def _record_derived(
    sessions: sessionmaker[Session], target: DerivedFixity, actor: Actor
) -> list[CustodyEntry]:
    """One entry on every affected item's chain, all in one transaction, naming the object."""
    with sessions() as session:
        return record_each(
            session,
            target.evidence_ids,
            CustodyAction.FIXITY_CHECKED,
            actor,
            reason=None,
            obj=target.named,
            details=target.details(),
        )


def _alert_objects(subject: str, objects: list[ArtifactFixity], metrics: ApiMetrics) -> None:
    for obj in objects:
        if obj.result != OK:
            metrics.fixity_mismatches.labels(kind=obj.kind).inc()
            log.error(
                "FIXITY ALERT %s %s %s@%s: %s (recorded sha256 %s, %s bytes; read %s, %s bytes)",
                subject,
                obj.kind,
                obj.key,
                obj.version_id,
                obj.result,
                obj.expected_sha256,
                obj.expected_size,
                obj.actual_sha256,
                obj.actual_size,
            )


def _unchecked(target: str, subject: str, result: str, error: str | None, metrics: ApiMetrics) -> bool:
    """Count one target's result; True (and an ERROR line) when the store could not be read."""
    metrics.fixity_checks.labels(target=target, result=result).inc()
    if result == ERROR:
        log.error("FIXITY ERROR %s not checked: %s", subject, error)
    return result == ERROR


def _alert_item(item: ItemFixity, metrics: ApiMetrics) -> None:
    subject = f"evidence {item.evidence_id}"
    if _unchecked("evidence", subject, item.result, item.error, metrics):
        return
    _alert_objects(subject, item.artifacts, metrics)
    for note in item.notes:
        metrics.fixity_mismatches.labels(kind="manifest").inc()
        log.error("FIXITY ALERT %s: %s", subject, note)


def _alert_derived(target: DerivedFixity, metrics: ApiMetrics) -> None:
    subject = f"{target.subject} (evidence {', '.join(str(e) for e in target.evidence_ids)})"
    if not _unchecked(target.target, subject, target.result, target.error, metrics):
        _alert_objects(subject, target.objects, metrics)


def _alert_checkpoint(checkpoint: CheckpointFixity, metrics: ApiMetrics) -> None:
    subject = f"checkpoint {checkpoint.key}"
    if _unchecked("checkpoint", subject, checkpoint.result, checkpoint.error, metrics):
        return
    _alert_objects(subject, checkpoint.objects, metrics)
    if checkpoint.signature_ok is False:
        metrics.fixity_mismatches.labels(kind="custody_checkpoint_signature").inc()
        log.error("FIXITY ALERT %s: signature does not verify with any published key", subject)


# --------------------------------------------------------------------------- the job


def _check_items(
    sessions: sessionmaker[Session],
    store: Minio,
    metrics: ApiMetrics,
    evidence_id: uuid.UUID | None,
    actor: Actor,
) -> list[ItemFixity]:
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
            item.entry = _record_item(sessions, item, actor)
        _alert_item(item, metrics)
        items.append(item)
    return items


def _check_derived(
    sessions: sessionmaker[Session],
    store: Minio,
    metrics: ApiMetrics,
    evidence_id: uuid.UUID | None,
    actor: Actor,
) -> list[DerivedFixity]:
    with sessions() as session:
        checks = derived_checks(session, evidence_id)
    targets = []
    for check in checks:
        target = check(store)
        if target.result != ERROR:
            target.entries = _record_derived(sessions, target, actor)
        _alert_derived(target, metrics)
        targets.append(target)
    return targets


def _check_checkpoints(
    sessions: sessionmaker[Session],
    store: Minio,
    settings: Settings,
    keys: list[PublicKey],
    metrics: ApiMetrics,
) -> list[CheckpointFixity]:
    with sessions() as session:
        rows = checkpoints_to_check(session)
    results = []
    for row in rows:
        checkpoint = check_checkpoint(store, settings.s3.evidence_bucket, row, keys)
        _alert_checkpoint(checkpoint, metrics)
        results.append(checkpoint)
    return results


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
    """Check every item, export bundle, redaction and checkpoint (or what touches one item), record each
    result on the chains it concerns, then verify the custody log against the checkpoints."""
    report = FixityReport(_check_items(sessions, store, metrics, evidence_id, actor), None)
    report.derived = _check_derived(sessions, store, metrics, evidence_id, actor)
    if evidence_id is None:
        report.checkpoints = _check_checkpoints(sessions, store, settings, public_keys, metrics)
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
        for warning in report.custody.warnings:
            log.warning("fixity: custody log: %s", warning)
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
