"""The custody log in the database: append to an item's hash chain, read it back, verify it.

The chain itself (entry fields, hashes, verification) is :mod:`evidence_store.custody`;
this module only stores it. Rules:

- an entry is appended by reading the item's head, building the next entry with
  ``next_entry`` and inserting it; ``UNIQUE(evidence_id, seq)`` makes a second
  writer that read the same head fail, and :func:`commit_with_retry` then re-runs
  the whole unit of work on a fresh head, so concurrent writers still form one
  valid chain;
- an entry goes in the same transaction as the change it records (the legal
  hold flag, the retention date, the case item), so the log never says something
  happened that the database does not show, or the reverse;
- rows are never updated or deleted here.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.models import CustodyEntryRow, EvidenceRow
from evidence_store.custody import (
    ActorRole,
    CustodyAction,
    CustodyEntry,
    next_entry,
    utc_iso,
    verify_chain,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

APPEND_ATTEMPTS = 30


@dataclass(frozen=True)
class Actor:
    """Who did it: a person's name and role, or a named system component."""

    name: str
    role: ActorRole


PERSISTER = Actor("api-persister", ActorRole.SYSTEM)
EVIDENCE_WORKER = Actor("evidence-worker", ActorRole.SYSTEM)


@dataclass(frozen=True)
class ChainCheck:
    evidence_id: str
    entries: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def entry_of(row: CustodyEntryRow) -> CustodyEntry:
    """The chain entry a row stores; ``at`` rendered with the same ``utc_iso`` that was hashed."""
    return CustodyEntry(
        evidence_id=str(row.evidence_id),
        seq=row.seq,
        action=CustodyAction(row.action),
        actor=row.actor,
        role=ActorRole(row.role),
        at=utc_iso(row.at),
        reason=row.reason,
        object_key=row.object_key,
        object_version=row.object_version,
        object_sha256=row.object_sha256,
        details=dict(row.details or {}),
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


def row_of(entry: CustodyEntry) -> CustodyEntryRow:
    """The row for an entry; refuses an ``at`` text that would not read back identically."""
    at = datetime.fromisoformat(entry.at)
    if utc_iso(at) != entry.at:
        raise ValueError(f"custody time {entry.at!r} is not in the stored form {utc_iso(at)!r}")
    return CustodyEntryRow(
        evidence_id=uuid.UUID(entry.evidence_id),
        seq=entry.seq,
        action=entry.action.value,
        actor=entry.actor,
        role=entry.role.value,
        at=at,
        reason=entry.reason,
        object_key=entry.object_key,
        object_version=entry.object_version,
        object_sha256=entry.object_sha256,
        details=entry.details,
        prev_hash=entry.prev_hash,
        entry_hash=entry.entry_hash,
    )


def head(session: Session, evidence_id: uuid.UUID) -> CustodyEntry | None:
    row = session.scalar(
        select(CustodyEntryRow)
        .where(CustodyEntryRow.evidence_id == evidence_id)
        .order_by(CustodyEntryRow.seq.desc())
        .limit(1)
    )
    return entry_of(row) if row is not None else None


def read_chain(session: Session, evidence_id: uuid.UUID) -> list[CustodyEntry]:
    rows = session.scalars(
        select(CustodyEntryRow)
        .where(CustodyEntryRow.evidence_id == evidence_id)
        .order_by(CustodyEntryRow.seq, CustodyEntryRow.id)
    )
    return [entry_of(r) for r in rows]


def append(
    session: Session,
    evidence_id: uuid.UUID,
    action: CustodyAction,
    actor: Actor,
    *,
    at: datetime,
    reason: str | None = None,
    object_key: str | None = None,
    object_version: str | None = None,
    object_sha256: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> CustodyEntry:
    """Add the next entry of the item's chain to the session (flushed, not committed).

    Raises ``IntegrityError`` at the flush when another writer appended first; run
    the unit of work under :func:`commit_with_retry`.
    """
    entry = next_entry(
        head(session, evidence_id),
        evidence_id,
        action,
        actor=actor.name,
        role=actor.role,
        at=at,
        reason=reason,
        object_key=object_key,
        object_version=object_version,
        object_sha256=object_sha256,
        details=details,
    )
    session.add(row_of(entry))
    session.flush()
    return entry


def commit_with_retry(session: Session, work: Callable[[Session], T], attempts: int = APPEND_ATTEMPTS) -> T:
    """Run ``work`` and commit; on a lost append race roll back and run it again on the new head.

    ``work`` must be repeatable: everything it changes is rolled back before a retry.
    Other integrity errors (a duplicate case reference, say) also end up here and
    are raised after the last attempt; callers check those conditions first.
    """
    for attempt in range(1, attempts + 1):
        try:
            result = work(session)
            session.commit()
            return result
        except IntegrityError:
            session.rollback()
            if attempt == attempts:
                raise
            log.debug("custody append lost a race (attempt %d), retrying on the new head", attempt)
            time.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")


def check_chain(session: Session, evidence_id: uuid.UUID) -> ChainCheck:
    return check_all({str(evidence_id): read_chain(session, evidence_id)})[0]


def all_chains(session: Session) -> dict[str, list[CustodyEntry]]:
    """Every evidence item's chain, including empty ones for items without entries."""
    chains: dict[str, list[CustodyEntry]] = {
        str(e): [] for e in session.scalars(select(EvidenceRow.evidence_id))
    }
    rows = session.scalars(select(CustodyEntryRow).order_by(CustodyEntryRow.evidence_id, CustodyEntryRow.seq))
    for row in rows:
        chains.setdefault(str(row.evidence_id), []).append(entry_of(row))
    return chains


def check_all(chains: Mapping[str, list[CustodyEntry]]) -> list[ChainCheck]:
    checks = []
    for evidence_id, entries in chains.items():
        problems = [str(p) for p in verify_chain(evidence_id, entries)]
        if not entries:
            problems.append("chain: no custody entries (the item's log is missing)")
        checks.append(ChainCheck(evidence_id, len(entries), problems))
    return checks


def heads(session: Session) -> dict[str, tuple[int, str]]:
    """Every chain's head (seq, entry hash), as a checkpoint records them."""
    newest = (
        select(CustodyEntryRow.evidence_id, func.max(CustodyEntryRow.seq).label("seq"))
        .group_by(CustodyEntryRow.evidence_id)
        .subquery()
    )
    rows = session.execute(
        select(CustodyEntryRow.evidence_id, CustodyEntryRow.seq, CustodyEntryRow.entry_hash).join(
            newest,
            (CustodyEntryRow.evidence_id == newest.c.evidence_id) & (CustodyEntryRow.seq == newest.c.seq),
        )
    )
    return {str(evidence_id): (seq, digest) for evidence_id, seq, digest in rows}
