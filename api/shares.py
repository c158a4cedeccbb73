"""Share links: expiring, revocable access to one export bundle for an external recipient.

The token (``secrets.token_urlsafe(32)``: 256 random bits) is returned once, in the
link's path; the database keeps only its SHA-256. A lookup hashes the presented
token, finds the row by that hash and compares the hashes again with
:func:`hmac.compare_digest`: what a timing difference could reveal is a prefix of
a SHA-256, which does not help anyone guess a token.

Every event is on the chain of every item in the export: ``shared`` (who made
the link, for whom, until when), ``share_used`` for each use, refused uses
included (actor = the recipient, role ``external``, with the client's address
and user agent), and ``share_revoked``. An unknown token records nothing: there
is no item to attach it to (it is logged instead).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from api.custody import Actor
from api.exports import bundle_ref, exported_ids
from api.models import ExportRow, ShareRow
from api.problems import Problem, not_found
from api.schemas_legal import ShareIn, ShareOut, ShareStatus
from api.serving import record_each
from evidence_store.custody import ActorRole, CustodyAction

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
MAX_TOKEN_CHARS = 128
SHARED_PATH = "/api/v1/shared/"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def status_of(row: ShareRow, now: datetime) -> ShareStatus:
    if row.revoked_at is not None:
        return "revoked"
    return "expired" if now >= row.expires_at else "active"


def share_out(row: ShareRow, now: datetime) -> ShareOut:
    return ShareOut(
        share_id=row.share_id,
        export_id=row.export_id,
        recipient=row.recipient,
        organisation=row.organisation,
        reason=row.reason,
        created_at=row.created_at,
        created_by=row.created_by,
        role=row.role,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
        uses=row.use_count,
        last_used_at=row.last_used_at,
        status=status_of(row, now),
    )


def load_share(session: Session, share_id: uuid.UUID) -> ShareRow:
    row = session.scalar(
        select(ShareRow).where(ShareRow.share_id == share_id).options(selectinload(ShareRow.export))
    )
    if row is None:
        raise not_found("share", share_id)
    return row


def create_share(
    session: Session, actor: Actor, body: ShareIn, now: datetime, max_hours: float
) -> tuple[ShareRow, str]:
    """The new share and its token (the only time the token exists outside the recipient's link)."""
    if body.expires_in_hours > max_hours:
        raise Problem(
            422,
            "Share lifetime too long",
            f"expires_in_hours {body.expires_in_hours:g} exceeds the limit of {max_hours:g} hours "
            "(api.share_max_hours)",
        )
    export = session.get(ExportRow, body.export_id)
    if export is None:
        raise not_found("export", body.export_id)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = ShareRow(
        share_id=uuid.uuid4(),
        export_id=export.export_id,
        token_sha256=token_digest(token),
        recipient=body.recipient,
        organisation=body.organisation,
        reason=body.reason,
        created_at=now,
        created_by=actor.name,
        role=actor.role.value,
        expires_at=now + timedelta(hours=body.expires_in_hours),
        use_count=0,
    )
    details = {
        "share_id": str(row.share_id),
        "export_id": str(export.export_id),
        "recipient": row.recipient,
        "organisation": row.organisation,
        "expires_at": row.expires_at.isoformat(),
    }

    def add_share(s: Session) -> None:
        s.add(row)
        s.flush()

    record_each(
        session,
        exported_ids(export),
        CustodyAction.SHARED,
        actor,
        reason=body.reason,
        obj=bundle_ref(export),
        details=details,
        at=now,
        also=add_share,
    )
    row.export = export
    return row, token


def revoke_share(session: Session, actor: Actor, share_id: uuid.UUID, reason: str, now: datetime) -> ShareRow:
    row = load_share(session, share_id)
    if row.revoked_at is not None:
        raise Problem(
            409,
            "Share already revoked",
            f"share {share_id} was revoked at {row.revoked_at.isoformat()} by {row.revoked_by}",
        )
    details = {"share_id": str(share_id), "export_id": str(row.export_id), "recipient": row.recipient}

    def revoke(s: Session) -> None:
        changed = s.execute(
            update(ShareRow)
            .where(ShareRow.share_id == share_id, ShareRow.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=actor.name, revoke_reason=reason)
        )
        if not getattr(changed, "rowcount", 0):
            raise Problem(409, "Share already revoked", f"share {share_id} was revoked meanwhile")

    try:
        record_each(
            session,
            exported_ids(row.export),
            CustodyAction.SHARE_REVOKED,
            actor,
            reason=reason,
            obj=None,
            details=details,
            at=now,
            also=revoke,
        )
    except Problem:
        session.rollback()
        raise
    session.expire_all()
    return load_share(session, share_id)


def find_by_token(session: Session, token: str) -> ShareRow | None:
    """The share whose token hashes to ``token``'s hash (None for anything else)."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    digest = token_digest(token)
    row = session.scalar(
        select(ShareRow).where(ShareRow.token_sha256 == digest).options(selectinload(ShareRow.export))
    )
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    return row


def recipient_of(row: ShareRow) -> Actor:
    return Actor(row.recipient, ActorRole.EXTERNAL)


def use_details(row: ShareRow, client: dict[str, Any]) -> dict[str, Any]:
    return {
        "share_id": str(row.share_id),
        "export_id": str(row.export_id),
        "organisation": row.organisation,
        **client,
    }


def refuse_use(session: Session, row: ShareRow, status: ShareStatus, client: dict[str, Any]) -> Problem:
    """Record a refused use (expired or revoked link) on every item and the 410 to answer with."""
    details = use_details(row, client) | {"result": "refused", "refused_because": status}
    record_each(
        session,
        exported_ids(row.export),
        CustodyAction.SHARE_USED,
        recipient_of(row),
        reason=None,
        obj=bundle_ref(row.export),
        details=details,
    )
    log.warning("share %s used while %s (from %s)", row.share_id, status, client.get("client_address"))
    return Problem(
        410,
        f"Share link {status}",
        f"this link was {status} and no longer gives access; ask the sender for a new one",
    )


def count_use(session: Session, share_id: uuid.UUID, now: datetime) -> None:
    """One more use, as an atomic increment (two recipients at once both count)."""
    session.execute(
        update(ShareRow)
        .where(ShareRow.share_id == share_id)
        .values(use_count=ShareRow.use_count + 1, last_used_at=now)
    )
