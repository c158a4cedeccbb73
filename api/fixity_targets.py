"""What the fixity job re-reads, besides the sealed artifacts: export bundles, redactions, checkpoints.

Every WORM object the system relies on is checked the same way: the recorded
version is read back from the store while hashing and compared with the SHA-256
(and size, where one was recorded) written to the database when it was stored.

- export bundle: ``exports`` row (key, version, sha256, size);
- redaction: ``redactions`` row of a finished job: video (sha256 and size), signed
  record and its signature (sha256 only: their sizes are not recorded);
- custody checkpoint: ``custody_checkpoints`` row: the document (sha256) and its
  signature, which must still verify with a published key over the document as
  read back (its hash is not recorded; a signature that no longer verifies is the
  alert).

Outcomes per object: ``ok``, ``mismatch``, ``missing`` (the store says the key or
version is gone). Any other store failure is not a finding about the object: the
whole target is ``error`` (see :mod:`api.fixity`, which writes nothing for it).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from minio import Minio
from minio.error import S3Error
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.checkpoints import PublicKey
from api.models import REDACTION_DONE, CustodyCheckpointRow, EvidenceRow, ExportRow, RedactionRow
from cctv.contracts import ArtifactKind
from evidence_store.custody import CustodyEntry
from evidence_store.signing import verify_manifest

OK, MISMATCH, MISSING, ERROR = "ok", "mismatch", "missing", "error"
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NoSuchBucket"})
CHUNK = 1024 * 1024
MAX_KEPT_BYTES = 16 * 1024 * 1024  # manifests and checkpoints are kept whole: parsed or signature-checked


@dataclass(frozen=True)
class Expected:
    """One stored version and what it must be (``sha256``/``size`` None where nothing was recorded)."""

    kind: str
    bucket: str
    key: str
    version_id: str | None
    sha256: str | None
    size: int | None = None


@dataclass(frozen=True)
class ArtifactFixity:
    """What one stored version read back as."""

    kind: str
    key: str
    version_id: str | None
    result: str
    expected_sha256: str | None
    expected_size: int | None
    actual_sha256: str | None = None
    actual_size: int | None = None
    error: str | None = None


def read_version(
    store: Minio, bucket: str, key: str, version_id: str | None, keep: bool
) -> tuple[str, int, bytes]:
    """SHA-256 and size of one stored version (and its bytes when ``keep``, up to MAX_KEPT_BYTES)."""
    digest, size, kept = hashlib.sha256(), 0, bytearray()
    response = store.get_object(bucket, key, version_id=version_id)
    try:
        for chunk in response.stream(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if keep and size <= MAX_KEPT_BYTES:
                kept += chunk
    finally:
        response.close()
        response.release_conn()
    return digest.hexdigest(), size, bytes(kept)


def check_object(store: Minio, expected: Expected, kept: list[bytes] | None = None) -> ArtifactFixity:
    """Read one version back and compare; appends its bytes to ``kept`` when given.

    MISSING when the store says the key or version is gone; any other store error
    raises, so that the caller reports the target as unchecked, never as lost.
    """

    def outcome(result: str, **found: Any) -> ArtifactFixity:
        return ArtifactFixity(
            kind=expected.kind,
            key=expected.key,
            version_id=expected.version_id,
            result=result,
            expected_sha256=expected.sha256,
            expected_size=expected.size,
            **found,
        )

    try:
        sha, size, data = read_version(
            store, expected.bucket, expected.key, expected.version_id, keep=kept is not None
        )
    except S3Error as exc:
        if exc.code in GONE_CODES:
            return outcome(MISSING, error=f"{exc.code}: {exc.message}")
        raise
    if kept is not None:
        kept.append(data)
    same = expected.sha256 in (None, sha) and expected.size in (None, size)
    return outcome(OK if same else MISMATCH, actual_sha256=sha, actual_size=size)


def overall(objects: Iterable[ArtifactFixity], flagged: bool, error: str | None) -> str:
    """One result for a target: error > mismatch (or ``flagged``) > missing > ok."""
    if error is not None:
        return ERROR
    results = {o.result for o in objects}
    if MISMATCH in results or flagged:
        return MISMATCH
    return MISSING if MISSING in results else OK


# --------------------------------------------------------------------------- exports and redactions


@dataclass
class DerivedFixity:
    """An export bundle or a redaction, and the items whose custody chains record its result."""

    target: str  # "export" | "redaction"
    target_id: uuid.UUID
    evidence_ids: list[uuid.UUID]
    named: Expected  # the object a fixity_checked entry names (the bundle; the redaction's record)
    objects: list[ArtifactFixity]
    error: str | None = None
    entries: list[CustodyEntry] = field(default_factory=list)

    @property
    def result(self) -> str:
        return overall(self.objects, False, self.error)

    @property
    def subject(self) -> str:
        return f"{self.target} {self.target_id}"

    def details(self) -> dict[str, Any]:
        """The ``fixity_checked`` entry's details: which object, its id, the result per stored version."""
        return {
            "object": self.target,
            f"{self.target}_id": str(self.target_id),
            "result": self.result,
            "objects": [asdict(o) for o in self.objects],
        }


def _guarded(
    target: str, target_id: uuid.UUID, evidence_ids: list[uuid.UUID], named: Expected, parts: list[Expected]
) -> Callable[[Minio], DerivedFixity]:
    def check(store: Minio) -> DerivedFixity:
        try:
            objects = [check_object(store, part) for part in parts]
        except Exception as exc:  # store unreachable: unknown, not missing
            return DerivedFixity(target, target_id, evidence_ids, named, [], error=f"store unreadable: {exc}")
        return DerivedFixity(target, target_id, evidence_ids, named, objects)

    return check


def export_check(row: ExportRow) -> Callable[[Minio], DerivedFixity]:
    bundle = Expected(
        ArtifactKind.EXPORT_BUNDLE.value, row.bucket, row.key, row.version_id, row.sha256, row.size
    )
    ids = [uuid.UUID(e) for e in row.evidence_ids]
    return _guarded("export", row.export_id, ids, bundle, [bundle])


def redaction_check(row: RedactionRow, bucket: str) -> Callable[[Minio], DerivedFixity]:
    """The three objects of a finished redaction (they live in the item's bucket)."""
    video = Expected(
        ArtifactKind.REDACTED_COPY.value,
        bucket,
        row.video_key or "",  # set together with the rest when the job is done
        row.video_version,
        row.video_sha256,
        row.video_size,
    )
    record = Expected(
        ArtifactKind.REDACTION_RECORD.value,
        bucket,
        row.record_key or "",
        row.record_version,
        row.record_sha256,
    )
    signature = Expected(
        ArtifactKind.REDACTION_SIGNATURE.value,
        bucket,
        row.signature_key or "",
        row.signature_version,
        row.signature_sha256,
    )
    return _guarded("redaction", row.redaction_id, [row.evidence_id], record, [video, record, signature])


def derived_checks(session: Session, evidence_id: uuid.UUID | None) -> list[Callable[[Minio], DerivedFixity]]:
    """Every stored export bundle and finished redaction (those touching ``evidence_id`` when given)."""
    exports = list(session.scalars(select(ExportRow).order_by(ExportRow.created_at)))
    if evidence_id is not None:
        exports = [e for e in exports if str(evidence_id) in e.evidence_ids]
    query = (
        select(RedactionRow, EvidenceRow.bucket)
        .join(EvidenceRow, EvidenceRow.evidence_id == RedactionRow.evidence_id)
        .where(RedactionRow.status == REDACTION_DONE)
        .order_by(RedactionRow.created_at)
    )
    if evidence_id is not None:
        query = query.where(RedactionRow.evidence_id == evidence_id)
    redactions = [redaction_check(row, bucket) for row, bucket in session.execute(query)]
    return [export_check(e) for e in exports] + redactions


# --------------------------------------------------------------------------- checkpoints


@dataclass
class CheckpointFixity:
    """A signed checkpoint's document and signature as read back (it belongs to no single item)."""

    key: str
    objects: list[ArtifactFixity]
    signature_ok: bool | None = None  # None: not checked (a part is missing or unreadable)
    key_id: str | None = None
    error: str | None = None

    @property
    def result(self) -> str:
        return overall(self.objects, self.signature_ok is False, self.error)


def checkpoints_to_check(session: Session) -> list[CustodyCheckpointRow]:
    return list(session.scalars(select(CustodyCheckpointRow).order_by(CustodyCheckpointRow.at)))


def check_checkpoint(
    store: Minio, bucket: str, row: CustodyCheckpointRow, public_keys: list[PublicKey]
) -> CheckpointFixity:
    """The document hash-compared; the signature verified over the document's bytes as read back."""
    document = Expected(
        ArtifactKind.CUSTODY_CHECKPOINT.value, bucket, row.object_key, row.version_id, row.sha256
    )
    signature = Expected(
        ArtifactKind.CUSTODY_CHECKPOINT_SIGNATURE.value,
        bucket,
        row.signature_key,
        row.signature_version_id,
        None,
    )
    kept: list[bytes] = []
    try:
        objects = [check_object(store, document, kept), check_object(store, signature, kept)]
    except Exception as exc:  # store unreachable: unknown, not missing
        return CheckpointFixity(row.object_key, [], error=f"store unreadable: {exc}")
    if len(kept) < 2:  # a part is gone: nothing to verify, reported as missing
        return CheckpointFixity(row.object_key, objects)
    signed_by = next((k for k in public_keys if verify_manifest(kept[0], kept[1], k.public_key)), None)
    return CheckpointFixity(
        row.object_key,
        objects,
        signature_ok=signed_by is not None,
        key_id=signed_by.key_id if signed_by else None,
    )
