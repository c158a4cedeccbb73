"""Signed checkpoints of every custody chain's head, written to the WORM evidence bucket.

Why: the chains live in the database, and whoever can rewrite the database can
recompute a chain that verifies on its own. A checkpoint records every item's
head (seq and entry hash) at a moment, is signed with the evidence signing key
and stored under COMPLIANCE retention, so it cannot be changed or deleted; every
later chain must still pass through the heads it recorded.

Layout: ``custody/checkpoints/<YYYY>/<MM>/<DD>/<YYYYmmddTHHMMSSffffffZ>.json``
(canonical JSON of :func:`evidence_store.custody.checkpoint_document`) and the
signature artifact next to it as ``.sig.json``. Each checkpoint carries the
SHA-256 of the one before it (read from the bucket, never from the database).

Verification reads the checkpoints back from the bucket, never trusting the
``custody_checkpoints`` table (that table is only an index for operators).
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from api import custody
from api.models import CustodyCheckpointRow
from cctv.config import Settings
from cctv.contracts import ArtifactKind, sha256_hex
from evidence_store.custody import canonical, checkpoint_document, problems_against_checkpoint
from evidence_store.signing import ALGORITHM, ManifestSigner, key_id_for, public_key_bytes, verify_manifest
from evidence_store.store import EvidenceStore, retain_until_for

log = logging.getLogger(__name__)

PREFIX = "custody/checkpoints/"
VERIFY_DEPTH = 3  # newest checkpoints read back by a verification (each covers every chain)
# One writer at a time in this process: the periodic checkpointer, POST /custody/checkpoints and
# every export write checkpoints, and two writers reading the same "newest" would fork the links.
_WRITE_LOCK = threading.Lock()


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    algorithm: str
    public_key: str  # base64 of the raw 32-byte Ed25519 key
    current: bool


def published_keys(signer: ManifestSigner, settings: Settings) -> list[PublicKey]:
    """The current signing key first, then the retired ones still needed to verify old signatures."""
    keys = [PublicKey(signer.key_id, ALGORITHM, base64.b64encode(signer.public_key).decode(), True)]
    for text in settings.evidence.retired_public_keys:
        try:
            raw = public_key_bytes(text)
        except ValueError as exc:
            log.error("evidence.retired_public_keys: %r is not a public key (%s); not published", text, exc)
            continue
        keys.append(PublicKey(key_id_for(raw), ALGORITHM, base64.b64encode(raw).decode(), False))
    return keys


def checkpoint_key(at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{PREFIX}{at:%Y/%m/%d}/{at:%Y%m%dT%H%M%S%fZ}.json"


def signature_key(key: str) -> str:
    return key.removesuffix(".json") + ".sig.json"


# --------------------------------------------------------------------------- reading back


@dataclass
class StoredCheckpoint:
    """One checkpoint as the bucket holds it, with what was found wrong with it."""

    key: str
    version_id: str | None
    sha256: str
    document: dict[str, Any]
    signature_ok: bool
    key_id: str | None
    problems: list[str] = field(default_factory=list)


def _children(store: Minio, bucket: str, prefix: str) -> list[str]:
    return sorted((o.object_name or "" for o in store.list_objects(bucket, prefix=prefix)), reverse=True)


def latest_keys(store: Minio, bucket: str, count: int) -> list[str]:
    """The newest ``count`` checkpoint keys, newest first, walking year/month/day prefixes downward."""
    found: list[str] = []
    for year in _children(store, bucket, PREFIX):
        for month in _children(store, bucket, year):
            for day in _children(store, bucket, month):
                names = [n for n in _children(store, bucket, day) if not n.endswith(".sig.json")]
                found.extend(n for n in names if n.endswith(".json"))
                if len(found) >= count:
                    return found[:count]
    return found


def _first_version(store: Minio, bucket: str, key: str) -> tuple[bytes, str | None, int]:
    """The first-written version of ``key`` (a later version would be an overwrite) and the count."""
    versions = [
        o
        for o in store.list_objects(bucket, prefix=key, include_version=True)
        if o.object_name == key and not o.is_delete_marker
    ]
    if not versions:
        raise FileNotFoundError(f"{bucket}/{key}: no stored version")
    first = min(versions, key=lambda o: o.last_modified or datetime.min.replace(tzinfo=UTC))
    response = store.get_object(bucket, key, version_id=first.version_id)
    try:
        return bytes(response.read()), first.version_id, len(versions)
    finally:
        response.close()
        response.release_conn()


def read_checkpoint(store: Minio, bucket: str, key: str, public_keys: list[PublicKey]) -> StoredCheckpoint:
    data, version_id, versions = _first_version(store, bucket, key)
    problems = [] if versions == 1 else [f"{key}: {versions} versions stored (written over after sealing)"]
    try:
        signature, _, _ = _first_version(store, bucket, signature_key(key))
    except FileNotFoundError:
        signature = b"{}"
        problems.append(f"{key}: signature {signature_key(key)} missing")
    signed_by = next((k for k in public_keys if verify_manifest(data, signature, k.public_key)), None)
    if signed_by is None:
        problems.append(f"{key}: signature does not verify with any published key")
    return StoredCheckpoint(
        key=key,
        version_id=version_id,
        sha256=sha256_hex(data),
        document=json.loads(data),
        signature_ok=signed_by is not None,
        key_id=signed_by.key_id if signed_by else None,
        problems=problems,
    )


# --------------------------------------------------------------------------- writing


def write_checkpoint(
    session: Session, store: Minio, settings: Settings, signer: ManifestSigner, now: datetime | None = None
) -> CustodyCheckpointRow:
    """Sign every chain head now and store it (linked to the bucket's newest checkpoint)."""
    with _WRITE_LOCK:
        return _write_checkpoint(session, store, settings, signer, now or datetime.now(UTC))


def _write_checkpoint(
    session: Session, store: Minio, settings: Settings, signer: ManifestSigner, now: datetime
) -> CustodyCheckpointRow:
    bucket = settings.s3.evidence_bucket
    heads = custody.heads(session)
    previous = latest_keys(store, bucket, 1)
    previous_sha = sha256_hex(_first_version(store, bucket, previous[0])[0]) if previous else None
    data = canonical(checkpoint_document(heads, at=now, previous_checkpoint_sha256=previous_sha))
    signature = signer.sign(data)
    retain_until = retain_until_for(now, settings.evidence.checkpoint_retention_days)
    key = checkpoint_key(now)
    # The evidence store's put: COMPLIANCE lock, SHA-256 metadata and a read-back check of each version.
    writer = EvidenceStore(store, settings.s3)
    signature_version = writer.put_locked(
        ArtifactKind.CUSTODY_CHECKPOINT_SIGNATURE, signature_key(key), signature, retain_until
    ).version_id
    version = writer.put_locked(  # written last: the document is the marker
        ArtifactKind.CUSTODY_CHECKPOINT, key, data, retain_until
    ).version_id
    row = CustodyCheckpointRow(
        at=now,
        object_key=key,
        version_id=version,
        sha256=sha256_hex(data),
        signature_key=signature_key(key),
        signature_version_id=signature_version,
        item_count=len(heads),
    )
    session.add(row)
    session.commit()
    log.info("custody checkpoint %s: %d chain heads, signed by key %s", key, len(heads), signer.key_id)
    return row


def checkpoint_if_changed(
    session: Session, store: Minio, settings: Settings, signer: ManifestSigner
) -> CustodyCheckpointRow | None:
    """Write a checkpoint only when some chain head differs from the bucket's newest checkpoint."""
    bucket = settings.s3.evidence_bucket
    heads = {k: {"seq": seq, "hash": digest} for k, (seq, digest) in custody.heads(session).items()}
    previous = latest_keys(store, bucket, 1)
    if previous and json.loads(_first_version(store, bucket, previous[0])[0])["items"] == heads:
        return None
    if not previous and not heads:
        return None
    return write_checkpoint(session, store, settings, signer)


def run_checkpointer(
    sessions: sessionmaker[Session],
    store: Minio,
    settings: Settings,
    signer: ManifestSigner,
    stop: threading.Event,
    ready: threading.Event,
) -> None:
    """Every ``settings.api.custody_checkpoint_s``: a checkpoint if any head changed, until ``stop``."""
    while not stop.wait(settings.api.custody_checkpoint_s):
        if not ready.is_set():
            continue
        try:
            with sessions() as session:
                checkpoint_if_changed(session, store, settings, signer)
        except Exception as exc:  # the next period retries; an unwritten checkpoint loses nothing
            log.error(
                "custody checkpoint failed (retry in %.0fs): %s", settings.api.custody_checkpoint_s, exc
            )
    log.info("custody checkpointer stopped")


# --------------------------------------------------------------------------- verification


@dataclass
class CustodyVerification:
    ok: bool
    chains_checked: int
    entries_checked: int
    checkpoints: list[StoredCheckpoint]
    problems: list[str]
    warnings: list[str]


def verify_against_checkpoints(
    session: Session,
    store: Minio,
    settings: Settings,
    public_keys: list[PublicKey],
    depth: int = VERIFY_DEPTH,
) -> CustodyVerification:
    """Every chain verified on its own and against the newest ``depth`` checkpoints in the bucket."""
    bucket = settings.s3.evidence_bucket
    # Checkpoints first, chains second: a checkpoint written meanwhile could record heads the
    # chains read before it do not have yet, which would look like deleted entries.
    stored = [read_checkpoint(store, bucket, k, public_keys) for k in latest_keys(store, bucket, depth)]
    chains = custody.all_chains(session)
    checks = custody.check_all(chains)
    problems = [f"evidence {c.evidence_id}: {p}" for c in checks for p in c.problems]
    for newer, older in itertools.pairwise(stored):
        if newer.document.get("previous_checkpoint_sha256") != older.sha256:
            newer.problems.append(f"{newer.key}: does not link to the checkpoint before it ({older.key})")
    for checkpoint in stored:
        if checkpoint.signature_ok:
            checkpoint.problems.extend(problems_against_checkpoint(checkpoint.document, chains))
        problems.extend(checkpoint.problems)
    warnings = []
    if not stored:
        warnings.append(
            "no checkpoint in the bucket yet: a rewritten database cannot be detected before the first one"
        )
    return CustodyVerification(
        ok=not problems,
        chains_checked=len(checks),
        entries_checked=sum(c.entries for c in checks),
        checkpoints=stored,
        problems=problems,
        warnings=warnings,
    )
