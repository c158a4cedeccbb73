"""Logins: a short-lived token (and the web app's cookie), refresh, logout, who am I, the auth log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy import func, select

from api import auth
from api.access import PUBLIC, SESSION_COOKIE, AdminDep, AnyoneDep, Principal
from api.deps import NowDep, SessionDep, SettingsDep
from api.models import AuthEventRow, UserRow
from api.problems import Problem
from api.schemas import MAX_OFFSET
from api.schemas_auth import AuthEventOut, AuthEventPage, LoginIn, MeOut, PasswordIn, TokenOut
from cctv.config import Settings

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _set_cookie(response: Response, settings: Settings, issued: auth.Issued) -> None:
    assert issued.expires_at is not None
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        httponly=True,  # script cannot read it: an injected script cannot steal the session
        samesite="strict",
        secure=settings.api.auth.secure_cookies,
        max_age=int(settings.api.auth.token_ttl_s),
        path="/",
    )


def me_out(principal: Principal, user: UserRow | None) -> MeOut:
    return MeOut(
        name=principal.name,
        display_name=user.display_name if user is not None else principal.name,
        role=principal.role.value,  # type: ignore[arg-type]
        cameras=sorted(principal.cameras) if principal.cameras is not None else None,
        via=principal.via,  # type: ignore[arg-type]
    )


def _token_out(issued: auth.Issued, user: UserRow) -> TokenOut:
    assert issued.expires_at is not None and issued.ends_at is not None
    return TokenOut(
        token=issued.token,
        expires_at=issued.expires_at,
        session_ends_at=issued.ends_at,
        user=MeOut(
            name=user.username,
            display_name=user.display_name,
            role=user.role,  # type: ignore[arg-type]
            cameras=user.cameras,
            via="session",
        ),
    )


@router.post(
    "/login",
    response_model=TokenOut,
    summary="Log in: a short-lived bearer token, also set as the web app's HttpOnly cookie",
    dependencies=PUBLIC,
    responses={
        401: {"description": "unknown username or wrong password (one answer for both)"},
        423: {"description": "locked after repeated failures (problem details, Retry-After)"},
    },
)
def login(
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    body: LoginIn,
    request: Request,
    response: Response,
) -> TokenOut:
    try:
        user, issued = auth.login(
            session, settings.api.auth, body.username, body.password, now=now, client=_client(request)
        )
    except auth.AccountLocked as exc:
        session.commit()  # the refused attempt stays in the auth log
        problem = Problem(423, "Account locked", str(exc), extra={"locked_until": exc.until.isoformat()})
        problem.headers = {"Retry-After": str(max(1, int((exc.until - now).total_seconds())))}
        raise problem from None
    except auth.LoginFailed as exc:
        session.commit()  # the failure counter and the auth log entry must stay
        raise Problem(401, "Login failed", str(exc)) from None
    session.commit()
    _set_cookie(response, settings, issued)
    return _token_out(issued, user)


@router.post("/refresh", response_model=TokenOut, summary="A new token for this session (the old one ends)")
def refresh(
    session: SessionDep, settings: SettingsDep, now: NowDep, principal: AnyoneDep, response: Response
) -> TokenOut:
    if principal.session_id is None:
        raise Problem(409, "Not a session", "API keys are not refreshed; they live until revoked or expired")
    try:
        issued = auth.refresh(session, settings.api.auth, principal.session_id, now=now)
    except auth.LoginFailed as exc:
        raise Problem(401, "Session ended", str(exc)) from None
    user = session.get(UserRow, principal.subject_id)
    assert user is not None
    session.commit()
    _set_cookie(response, settings, issued)
    return _token_out(issued, user)


@router.post(
    "/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session and clear the cookie"
)
def logout(session: SessionDep, now: NowDep, principal: AnyoneDep, response: Response) -> Response:
    if principal.session_id is not None:
        auth.logout(session, principal.session_id, now=now, username=principal.name)
        session.commit()
    response.status_code = status.HTTP_204_NO_CONTENT
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/me", response_model=MeOut, summary="Who the caller is: name, role, visible cameras")
def me(session: SessionDep, principal: AnyoneDep) -> MeOut:
    user = session.get(UserRow, principal.subject_id) if principal.via == "session" else None
    return me_out(principal, user)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change your own password (every other session of yours ends)",
)
def change_password(
    session: SessionDep, settings: SettingsDep, now: NowDep, principal: AnyoneDep, body: PasswordIn
) -> Response:
    user = session.get(UserRow, principal.subject_id) if principal.via == "session" else None
    if user is None:
        raise Problem(409, "Not a user", "an API key has no password")
    try:
        auth.set_password(session, settings.api.auth, user, body.password, actor=principal.name, now=now)
    except auth.AuthError as exc:
        raise Problem(422, "Password refused", str(exc)) from None
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/events", response_model=AuthEventPage, summary="The auth log: logins, failures, lockouts, changes"
)
def events(
    session: SessionDep,
    _admin: AdminDep,
    username: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AuthEventPage:
    query = select(AuthEventRow)
    if username is not None:
        query = query.where(AuthEventRow.username == username)
    if kind is not None:
        query = query.where(AuthEventRow.kind == kind)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuthEventRow.id.desc()).limit(limit).offset(offset)).all()
    return AuthEventPage(
        items=[AuthEventOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset
    )
