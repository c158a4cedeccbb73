"""People who log in (admin only): create, change role or cameras, disable, unlock, reset a password.

Accounts are never deleted: their names are in the custody log and the auth log,
and a court may ask who they were. Disabling one ends its sessions. The last
enabled admin cannot be demoted or disabled, so the system never locks itself out.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api import auth
from api.access import AdminDep
from api.deps import NowDep, SessionDep, SettingsDep
from api.models import UserRow
from api.problems import Problem, not_found
from api.schemas_auth import PasswordIn, UserIn, UserOut, UserPatchIn
from evidence_store.custody import ActorRole

router = APIRouter(prefix="/api/v1/users", tags=["users"])


def _user(session: Session, user_id: uuid.UUID) -> UserRow:
    row = session.get(UserRow, user_id)
    if row is None:
        raise not_found("user", user_id)
    return row


def _other_admins(session: Session, user_id: uuid.UUID) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(UserRow)
            .where(
                UserRow.role == ActorRole.ADMIN.value, UserRow.disabled.is_(False), UserRow.user_id != user_id
            )
        )
        or 0
    )


@router.get("", response_model=list[UserOut], summary="Every account, by username")
def list_users(session: SessionDep, _admin: AdminDep) -> list[UserOut]:
    return [UserOut.model_validate(r) for r in session.scalars(select(UserRow).order_by(UserRow.username))]


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Create an account")
def create_user(
    session: SessionDep, settings: SettingsDep, now: NowDep, admin: AdminDep, body: UserIn
) -> UserOut:
    try:
        row = auth.create_user(
            session,
            settings.api.auth,
            username=body.username,
            display_name=body.display_name,
            role=ActorRole(body.role),
            password=body.password,
            cameras=body.cameras,
            created_by=admin.name,
            now=now,
        )
    except auth.AuthError as exc:
        code = 409 if isinstance(exc, auth.AlreadyExists) else 422
        raise Problem(code, "Account refused", str(exc)) from None
    session.commit()
    return UserOut.model_validate(row)


@router.get("/{user_id}", response_model=UserOut, summary="One account")
def get_user(session: SessionDep, _admin: AdminDep, user_id: uuid.UUID) -> UserOut:
    return UserOut.model_validate(_user(session, user_id))


@router.patch("/{user_id}", response_model=UserOut, summary="Change role, cameras, name; disable; unlock")
def patch_user(
    session: SessionDep, now: NowDep, admin: AdminDep, user_id: uuid.UUID, body: UserPatchIn
) -> UserOut:
    row = _user(session, user_id)
    demoted = body.role is not None and body.role != ActorRole.ADMIN.value
    if (
        row.role == ActorRole.ADMIN.value
        and (demoted or body.disabled)
        and _other_admins(session, user_id) == 0
    ):
        raise Problem(409, "Last admin", "this is the only enabled admin: create another admin first")
    changes = []
    if body.display_name is not None:
        row.display_name = body.display_name
        changes.append("display name")
    if body.role is not None and body.role != row.role:
        changes.append(f"role {row.role} -> {body.role}")
        row.role = body.role
        auth.end_sessions(session, row.user_id, now)  # a new role takes effect at the next login
    if body.all_cameras or body.cameras is not None:
        row.cameras = None if body.all_cameras else sorted(set(body.cameras or []))
        changes.append(f"cameras {row.cameras if row.cameras is not None else 'all'}")
    if body.disabled is not None and body.disabled != row.disabled:
        row.disabled = body.disabled
        changes.append("disabled" if body.disabled else "enabled")
        if body.disabled:
            auth.end_sessions(session, row.user_id, now)
    if body.unlock:
        row.locked_until, row.failed_logins = None, 0
        changes.append("unlocked")
    if changes:
        auth.record(
            session, "user_updated", now, username=row.username, actor=admin.name, detail="; ".join(changes)
        )
    session.commit()
    return UserOut.model_validate(row)


@router.put(
    "/{user_id}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password (ends every session of that account)",
)
def reset_password(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    admin: AdminDep,
    user_id: uuid.UUID,
    body: PasswordIn,
) -> Response:
    row = _user(session, user_id)
    try:
        auth.set_password(session, settings.api.auth, row, body.password, actor=admin.name, now=now)
    except auth.AuthError as exc:
        raise Problem(422, "Password refused", str(exc)) from None
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
