"""API keys for services (admin only): a Prometheus scraper (ops), an integration (operator), ...

The secret is returned once, at creation; only its SHA-256 is kept. Revoking
keeps the row (its name is in the logs) and the key stops working at once.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from sqlalchemy import select

from api import auth
from api.access import AdminDep
from api.deps import NowDep, SessionDep
from api.models import ApiKeyRow
from api.problems import Problem, not_found
from api.schemas_auth import ApiKeyCreatedOut, ApiKeyIn, ApiKeyOut
from evidence_store.custody import ActorRole

router = APIRouter(prefix="/api/v1/api-keys", tags=["api-keys"])


@router.get("", response_model=list[ApiKeyOut], summary="Every API key (no secrets), by name")
def list_keys(session: SessionDep, _admin: AdminDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.name))]


@router.post(
    "",
    response_model=ApiKeyCreatedOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create a key; the secret is in this response only",
)
def create_key(session: SessionDep, now: NowDep, admin: AdminDep, body: ApiKeyIn) -> ApiKeyCreatedOut:
    try:
        row, issued = auth.create_api_key(
            session,
            name=body.name,
            role=ActorRole(body.role),
            cameras=body.cameras,
            created_by=admin.name,
            now=now,
            expires_at=body.expires_at,
        )
    except auth.AuthError as exc:
        code = 409 if isinstance(exc, auth.AlreadyExists) else 422
        raise Problem(code, "Key refused", str(exc)) from None
    session.commit()
    return ApiKeyCreatedOut(**ApiKeyOut.model_validate(row).model_dump(), key=issued.token)


@router.delete(
    "/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a key (it stops working at once)"
)
def revoke_key(session: SessionDep, now: NowDep, admin: AdminDep, key_id: uuid.UUID) -> Response:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise not_found("API key", key_id)
    if row.revoked_at is None:
        row.revoked_at = now
        auth.record(session, "key_revoked", now, username=row.name, actor=admin.name)
        session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
