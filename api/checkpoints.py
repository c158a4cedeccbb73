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

One writer at a time, or the links fork: two writers that both read the same
"newest" checkpoint would both link to it. The periodic checkpointer, ``POST
/custody/checkpoints`` and every export write checkpoints, in every API replica.
On PostgreSQL a transaction-scoped advisory lock (``pg_advisory_xact_lock``, one
key per evidence bucket, since the chain of links is per bucket) is held from
before the previous checkpoint is read until the new one's row is committed; it
serialises replicas and this process's threads alike, and is released by the
commit or rollback, so a crashed writer never leaves it held. On SQLite a lock
in this process is enough: a SQLite database is a local file served by ONE API
process (replicas need PostgreSQL; ``cctv fixity`` reads checkpoints but never
writes one). A new checkpoint's time is also kept after the previous one's, so
that key order (what :func:`latest_keys` walks) is link order even when replica
clocks disagree.

Verification reads the checkpoints back from the bucket, never trusting the
``custody_checkpoints`` table (that table is only an index for operators). Two
checkpoints linking to the same previous one (a fork written before writers were
serialised) are reported as a ``checkpoint fork`` warning: both are signed and
locked, so no checkpoint is lost or forged; a link to no known checkpoint is a
problem.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from minio import Minio
from sqlalchemy import text
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
FORK_CONTEXT = 5  # older checkpoints read only to explain a link that skips the one before it
FORK = "checkpoint fork"
# SQLite only (one process): see the module docstring. PostgreSQL uses the advisory lock.
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
    for encoded in settings.evidence.retired_public_keys:
        try:
            raw = public_key_bytes(encoded)
        except ValueError as exc:
            log.error(
                "evidence.retired_public_keys: %r is not a public key (%s); not published", encoded, exc
            )
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
    # S3 lists a key's versions newest first, and SeaweedFS's last_modified has whole seconds: an
    # overwrite in the same second ties on time, and the later listed of the tied is the older.
    oldest = datetime.min.replace(tzinfo=UTC)
    _, first = min(enumerate(versions), key=lambda p: (p[1].last_modified or oldest, -p[0]))
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
        signature, _, signatures = _first_version(store, bucket, signature_key(key))
        if signatures != 1:
            problems.append(f"{key}: signature {signatures} versions stored (written over after sealing)")
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


def writer_lock_key(bucket: str) -> int:
    """The advisory lock key of ``bucket``'s checkpoint writers: fixed per bucket, a signed 64-bit int."""
    digest = hashlib.sha256(f"cctv-custody-checkpoint-writer:{bucket}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def one_writer(session: Session, bucket: str) -> Iterator[None]:
    """Serialise checkpoint writers of ``bucket`` until the session's transaction ends.

    The body must end the transaction (commit) itself; on an error it is rolled
    back here, which also releases the PostgreSQL lock.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    with contextlib.nullcontext() if postgres else _WRITE_LOCK:
        if postgres:
            # Held until this transaction ends. Reads after it see every commit made before it was
            # granted under READ COMMITTED (PostgreSQL's default, which this app keeps).
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": writer_lock_key(bucket)})
        try:
            yield
        except BaseException:
            session.rollback()
            raise


def write_checkpoint(
    session: Session, store: Minio, settings: Settings, signer: ManifestSigner, now: datetime | None = None
) -> CustodyCheckpointRow:
    """Sign every chain head now and store it (linked to the bucket's newest checkpoint).

    Commits the session (and rolls it back on an error).
    """
    row = _write_serialised(session, store, settings, signer, now, only_if_changed=False)
    assert row is not None  # only a conditional write may write nothing
    return row


def checkpoint_if_changed(
    session: Session, store: Minio, settings: Settings, signer: ManifestSigner
) -> CustodyCheckpointRow | None:
    """Write a checkpoint only when some chain head differs from the bucket's newest checkpoint.

    Decided under the writers' lock, so two replicas' checkpointers never both
    write the same heads.
    """
    return _write_serialised(session, store, settings, signer, None, only_if_changed=True)


def _write_serialised(
    session: Session,
    store: Minio,
    settings: Settings,
    signer: ManifestSigner,
    now: datetime | None,
    *,
    only_if_changed: bool,
) -> CustodyCheckpointRow | None:
    bucket = settings.s3.evidence_bucket
    with one_writer(session, bucket):
        heads = custody.heads(session)
        previous = latest_keys(store, bucket, 1)
        previous_data = _first_version(store, bucket, previous[0])[0] if previous else None
        document = json.loads(previous_data) if previous_data is not None else None
        if only_if_changed and _unchanged(heads, document):
            session.commit()  # ends the transaction: releases the lock
            return None
        at = now or datetime.now(UTC)
        if document is not None:  # key order must stay link order (replica clocks may disagree)
            at = max(at, datetime.fromisoformat(document["at"]) + timedelta(microseconds=1))
        previous_sha = sha256_hex(previous_data) if previous_data is not None else None
        return _write_checkpoint(session, store, settings, signer, heads, previous_sha, at)


def _unchanged(heads: dict[str, tuple[int, str]], previous: dict[str, Any] | None) -> bool:
    if previous is None:
        return not heads
    return bool(previous["items"] == {k: {"seq": seq, "hash": digest} for k, (seq, digest) in heads.items()})


def _write_checkpoint(
    session: Session,
    store: Minio,
    settings: Settings,
    signer: ManifestSigner,
    heads: dict[str, tuple[int, str]],
    previous_sha: str | None,
    now: datetime,
) -> CustodyCheckpointRow:
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
    session.commit()  # also releases the PostgreSQL advisory lock
    log.info("custody checkpoint %s: %d chain heads, signed by key %s", key, len(heads), signer.key_id)
    return row


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


@dataclass(frozen=True)
class LinkFindings:
    broken: dict[str, str]  # checkpoint key -> why its link is broken
    forks: list[str]  # named warnings

    def explained(self) -> bool:
        return not self.broken


def link_findings(
    window: list[StoredCheckpoint], context: list[StoredCheckpoint] | None = None
) -> LinkFindings:
    """Each checkpoint of ``window`` (newest first) against the one before it.

    A link to the checkpoint before is fine. A link that another checkpoint also
    makes, or one to an older checkpoint than the one before, is a fork: two
    writers wrote at once (before writers were serialised); both are signed and
    locked, so it is a named warning. Only checkpoints whose signature verifies
    can explain a fork (a forgery cannot make a broken link look benign). A link
    to no known checkpoint is broken. ``context``: older checkpoints, read only to
    explain a link that skips the one before it.
    """
    known = [c for c in [*window, *(context or [])] if c.signature_ok]
    broken, forks = {}, []
    for newer, older in itertools.pairwise(window):
        link = newer.document.get("previous_checkpoint_sha256")
        if link == older.sha256:
            continue
        siblings = [
            c for c in known if c is not newer and c.document.get("previous_checkpoint_sha256") == link
        ]
        target = next((c for c in known if c.sha256 == link and c.key < older.key), None)
        if newer.signature_ok and (siblings or target):
            to = target.key if target else f"the checkpoint with SHA-256 {link}" if link else "no checkpoint"
            also = f" as {siblings[0].key} does" if siblings else f", not to {older.key} just before it"
            forks.append(
                f"{FORK}: {newer.key} links to {to}{also}: two writers wrote checkpoints at once "
                "(before writers were serialised); both are signed and locked, the chain of checkpoints "
                "forks there"
            )
        else:
            broken[newer.key] = f"{newer.key}: does not link to the checkpoint before it ({older.key})"
    return LinkFindings(broken, forks)


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
    keys = latest_keys(store, bucket, depth + FORK_CONTEXT)
    stored = [read_checkpoint(store, bucket, k, public_keys) for k in keys[:depth]]
    links = link_findings(stored)
    if not links.explained() and len(keys) > depth:
        links = link_findings(stored, [read_checkpoint(store, bucket, k, public_keys) for k in keys[depth:]])
    chains = custody.all_chains(session)
    checks = custody.check_all(chains)
    problems = [f"evidence {c.evidence_id}: {p}" for c in checks for p in c.problems]
    for checkpoint in stored:
        if checkpoint.key in links.broken:
            checkpoint.problems.append(links.broken[checkpoint.key])
        if checkpoint.signature_ok:
            checkpoint.problems.extend(problems_against_checkpoint(checkpoint.document, chains))
        problems.extend(checkpoint.problems)
    warnings = list(links.forks)
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
