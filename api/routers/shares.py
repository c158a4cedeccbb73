"""Share links (legal, admin) and the public link a recipient opens (:mod:`api.shares`).

``router``: make, list, read and revoke shares; tokens are never listed.
``public_router``: ``GET /api/v1/shared/{token}``, no actor headers (the recipient
has none): a valid link streams the export bundle, hash-checked, as an
attachment; an expired or revoked one answers 410 and the attempt is recorded;
an unknown token answers 404.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.access import PUBLIC, LawyerDep
from api.deps import MetricsDep, NowDep, SessionDep, SettingsDep, StoreDep
from api.exports import bundle_ref, exported_ids
from api.models import ShareRow
from api.problems import Problem
from api.routers.exports import BUNDLE_MEDIA_TYPE
from api.schemas_legal import RevokeIn, ShareCreatedOut, ShareIn, ShareOut
from api.serving import checked_download, client_details
from api.shares import (
    SHARED_PATH,
    count_use,
    create_share,
    find_by_token,
    load_share,
    recipient_of,
    refuse_use,
    revoke_share,
    share_out,
    status_of,
    use_details,
)
from evidence_store.custody import CustodyAction

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/shares", tags=["shares"])
public_router = APIRouter(prefix=SHARED_PATH.rstrip("/"), tags=["shares"])


@router.post(
    "",
    response_model=ShareCreatedOut,
    status_code=status.HTTP_201_CREATED,
    summary="Make an expiring share link to an export for an external recipient (legal, admin)",
    responses={422: {"description": "lifetime above api.share_max_hours, or a field missing"}},
)
def post_share(
    session: SessionDep, settings: SettingsDep, actor: LawyerDep, now: NowDep, body: ShareIn
) -> ShareCreatedOut:
    row, token = create_share(session, actor, body, now, settings.api.share_max_hours)
    return ShareCreatedOut(share=share_out(row, now), token=token, url_path=f"{SHARED_PATH}{token}")


@router.get("", response_model=list[ShareOut], summary="Every share, newest first; no tokens (legal, admin)")
def list_shares(session: SessionDep, _actor: LawyerDep, now: NowDep) -> list[ShareOut]:
    rows = session.scalars(select(ShareRow).order_by(ShareRow.created_at.desc(), ShareRow.share_id)).all()
    return [share_out(r, now) for r in rows]


@router.get("/{share_id}", response_model=ShareOut, summary="One share (legal, admin)")
def get_share(session: SessionDep, _actor: LawyerDep, now: NowDep, share_id: uuid.UUID) -> ShareOut:
    return share_out(load_share(session, share_id), now)


@router.post(
    "/{share_id}/revoke",
    response_model=ShareOut,
    summary="Revoke a share link at once (legal, admin)",
    responses={409: {"description": "already revoked (problem details)"}},
)
def post_revoke(
    session: SessionDep, actor: LawyerDep, now: NowDep, share_id: uuid.UUID, body: RevokeIn
) -> ShareOut:
    return share_out(revoke_share(session, actor, share_id, body.reason, now), now)


@public_router.get(
    "/{token}",
    summary="A recipient's share link: the export bundle, hash-checked (public; every use recorded)",
    dependencies=PUBLIC,
    response_class=StreamingResponse,
    responses={
        200: {"content": {BUNDLE_MEDIA_TYPE: {}}, "description": "the export bundle"},
        404: {"description": "no such link (problem details)"},
        410: {"description": "the link expired or was revoked (problem details); the attempt is recorded"},
        502: {"description": "integrity check failed or store unavailable (problem details)"},
    },
)
def use_share(
    session: SessionDep, store: StoreDep, metrics: MetricsDep, now: NowDep, token: str, request: Request
) -> StreamingResponse:
    share = find_by_token(session, token)
    client = client_details(request)
    if share is None:
        log.warning("unknown share token presented from %s", client.get("client_address"))
        raise Problem(404, "Not Found", "no share link with this token exists")
    state = status_of(share, now)
    if state != "active":
        raise refuse_use(session, share, state, client)
    obj, items, actor = bundle_ref(share.export), exported_ids(share.export), recipient_of(share)
    details = use_details(share, client)
    share_id = share.share_id

    def counted(s: Session) -> None:
        count_use(s, share_id, now)

    response = checked_download(
        session,
        store,
        metrics,
        obj,
        items,
        actor,
        action=CustodyAction.SHARE_USED,
        reason=None,
        details=details,
        media_type=BUNDLE_MEDIA_TYPE,
        filename=f"export-{share.export_id}.zip",
        refused_action=CustodyAction.SHARE_USED,
        also=counted,
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
