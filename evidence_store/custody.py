"""The custody log's entries and hash chain: pure, so the API, the export bundle and the offline
verifier all compute exactly the same hashes.

One chain per evidence item. Why per item and not one global chain: an export
bundle carries the item's whole chain and can be verified offline from its
first entry to its last; a global chain would leave gaps (other items' entries)
that an offline verifier could not bridge. Deleting or rewriting whole chains is
caught instead by the signed checkpoints (:func:`checkpoint_document`), which
list every item's head and are written to the WORM bucket.

Entry hash: SHA-256 over the canonical JSON (sorted keys, no whitespace, UTF-8)
of every field except ``entry_hash``. The first entry's ``prev_hash`` is
:func:`genesis_hash` of the evidence id, so a chain cannot be spliced onto
another item.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

CHAIN_VERSION = 1


class CustodyAction(StrEnum):
    CREATED = "created"  # the API learned of the sealed item (persister)
    SEALED = "sealed"  # hashed, signed and locked by the evidence worker (time from the manifest)
    VIEWED = "viewed"
    DOWNLOADED = "downloaded"
    DOWNLOAD_REFUSED = "download_refused"  # integrity failure or store error: nothing served
    EXPORTED = "exported"
    SHARED = "shared"
    SHARE_USED = "share_used"
    SHARE_REVOKED = "share_revoked"
    HOLD_PLACED = "hold_placed"
    HOLD_RELEASED = "hold_released"
    RETENTION_EXTENDED = "retention_extended"
    REDACTED = "redacted"
    FIXITY_CHECKED = "fixity_checked"
    ADDED_TO_CASE = "added_to_case"


class ActorRole(StrEnum):
    OPERATOR = "operator"
    LEGAL = "legal"
    OPS = "ops"
    ADMIN = "admin"
    SYSTEM = "system"  # workers and scheduled jobs
    EXTERNAL = "external"  # a share-link recipient


# Actions that hand evidence (or a copy of it) to someone: a reason must be recorded.
REASON_REQUIRED = frozenset(
    {CustodyAction.DOWNLOADED, CustodyAction.EXPORTED, CustodyAction.SHARED, CustodyAction.REDACTED}
)


class CustodyError(ValueError):
    """An entry that must not be written (e.g. a download without a reason)."""


def canonical(document: Any) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def genesis_hash(evidence_id: uuid.UUID | str) -> str:
    return hashlib.sha256(f"cctv-custody-chain:v{CHAIN_VERSION}:{evidence_id}".encode()).hexdigest()


def utc_iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise CustodyError("custody times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class CustodyEntry(BaseModel):
    """One link of an item's chain. ``what`` names the object touched (key, version, sha256)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    evidence_id: str
    seq: int = Field(ge=0)
    action: CustodyAction
    actor: str = Field(min_length=1, max_length=200)
    role: ActorRole
    at: str  # UTC ISO 8601 with microseconds: the exact text that was hashed
    reason: str | None = None
    object_key: str | None = None
    object_version: str | None = None
    object_sha256: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    entry_hash: str

    @field_validator("at")
    @classmethod
    def _utc(cls, value: str) -> str:
        parsed = datetime.fromisoformat(value)
        if parsed.utcoffset() is None or parsed.utcoffset() != UTC.utcoffset(None):
            raise ValueError("custody time must be UTC")
        return value

    def content(self) -> dict[str, Any]:
        """Every hashed field (all but ``entry_hash``)."""
        return self.model_dump(mode="json", exclude={"entry_hash"})

    def computed_hash(self) -> str:
        return hashlib.sha256(canonical(self.content())).hexdigest()


def next_entry(
    previous: CustodyEntry | None,
    evidence_id: uuid.UUID | str,
    action: CustodyAction,
    *,
    actor: str,
    role: ActorRole,
    at: datetime,
    reason: str | None = None,
    object_key: str | None = None,
    object_version: str | None = None,
    object_sha256: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> CustodyEntry:
    """The entry that follows ``previous`` (None: the chain's first). Refuses a missing reason."""
    reason = reason.strip() if reason else None
    if action in REASON_REQUIRED and not reason:
        raise CustodyError(f"a reason is required to record '{action.value}'")
    if previous is not None and previous.evidence_id != str(evidence_id):
        raise CustodyError("previous entry belongs to another evidence item")
    fields: dict[str, Any] = {
        "evidence_id": str(evidence_id),
        "seq": 0 if previous is None else previous.seq + 1,
        "action": action,
        "actor": actor,
        "role": role,
        "at": utc_iso(at),
        "reason": reason,
        "object_key": object_key,
        "object_version": object_version,
        "object_sha256": object_sha256,
        "details": dict(details or {}),
        "prev_hash": genesis_hash(evidence_id) if previous is None else previous.entry_hash,
    }
    draft = CustodyEntry(**fields, entry_hash="")
    return draft.model_copy(update={"entry_hash": draft.computed_hash()})


@dataclass(frozen=True)
class ChainProblem:
    seq: int | None
    cause: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "chain"
        return f"{where}: {self.cause}"


def verify_chain(evidence_id: uuid.UUID | str, entries: Sequence[CustodyEntry]) -> list[ChainProblem]:
    """Every problem of one item's chain, in order; an empty list means the chain is intact.

    Names the cause: an entry whose content no longer matches its hash (altered),
    a link that does not point at the entry before (removed, inserted or
    reordered), a sequence gap, an entry of another item.
    """
    problems: list[ChainProblem] = []
    expected_prev = genesis_hash(evidence_id)
    for position, entry in enumerate(entries):
        if entry.evidence_id != str(evidence_id):
            problems.append(ChainProblem(entry.seq, f"belongs to evidence {entry.evidence_id}"))
        if entry.seq != position:
            problems.append(
                ChainProblem(
                    entry.seq,
                    f"sequence number {entry.seq} at position {position}: "
                    "an entry was removed, inserted or reordered",
                )
            )
        if entry.computed_hash() != entry.entry_hash:
            problems.append(
                ChainProblem(
                    entry.seq,
                    f"content altered: '{entry.action.value}' entry hashes to "
                    f"{entry.computed_hash()}, recorded as {entry.entry_hash}",
                )
            )
        if entry.prev_hash != expected_prev:
            problems.append(
                ChainProblem(
                    entry.seq,
                    "link broken: prev_hash is not the hash of the entry before "
                    "(an entry was removed, inserted, reordered or altered)",
                )
            )
        expected_prev = entry.entry_hash
    return problems


def chain_head(entries: Sequence[CustodyEntry]) -> tuple[int, str] | None:
    return (entries[-1].seq, entries[-1].entry_hash) if entries else None


def checkpoint_document(
    heads: Mapping[str, tuple[int, str]], *, at: datetime, previous_checkpoint_sha256: str | None
) -> dict[str, Any]:
    """What a checkpoint records: every item's chain head at ``at``, linked to the checkpoint before.

    Signed and written to the WORM bucket, it makes a rewritten database
    detectable: every later chain must still pass through these heads.
    """
    return {
        "checkpoint_version": CHAIN_VERSION,
        "at": utc_iso(at),
        "previous_checkpoint_sha256": previous_checkpoint_sha256,
        "items": {
            evidence_id: {"seq": seq, "hash": digest} for evidence_id, (seq, digest) in sorted(heads.items())
        },
    }


def problems_against_checkpoint(
    checkpoint: Mapping[str, Any], chains: Mapping[str, Sequence[CustodyEntry]]
) -> list[str]:
    """How the current chains contradict a checkpoint: a head it recorded that is gone or changed."""
    problems = []
    for evidence_id, head in checkpoint["items"].items():
        entries = chains.get(evidence_id, ())
        seq, digest = head["seq"], head["hash"]
        if seq >= len(entries):
            problems.append(
                f"evidence {evidence_id}: checkpoint of {checkpoint['at']} recorded entry {seq}, "
                f"the log now holds {len(entries)} entries (entries deleted)"
            )
        elif entries[seq].entry_hash != digest:
            problems.append(
                f"evidence {evidence_id}: entry {seq} hashes to {entries[seq].entry_hash}, the checkpoint "
                f"of {checkpoint['at']} recorded {digest} (log rewritten)"
            )
    return problems
