"""Users, logins, API keys and the auth log, over the database (no HTTP here).

- Passwords are hashed with argon2id (``argon2-cffi``'s defaults: 64 MiB, 3
  passes); a hash made with weaker parameters is upgraded at the next login.
- A login opens a session whose bearer token lives ``token_ttl_s`` (15 min) and
  is exchanged for a new one by a refresh, up to ``session_max_s`` (12 h) after
  login. Only SHA-256 digests of tokens and keys are stored: 256 random bits
  need no slow hash, and a stolen table gives no usable token.
- ``lockout_after`` consecutive failures lock an account for ``lockout_s``; an
  admin can unlock it sooner. Unknown usernames get the same answer as a wrong
  password, after the same argon2 work, so a caller cannot probe for usernames by
  the answer or its timing.
- Every login, failure, lockout, logout and account or key change is an
  ``auth_events`` row.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import ApiKeyRow, AuthEventRow, AuthSessionRow, UserRow
from cctv.config import AuthSettings
from evidence_store.custody import ActorRole

SESSION_PREFIX = "cctv_s_"
KEY_PREFIX = "cctv_k_"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{1,63}$"
PERSON_ROLES = frozenset({ActorRole.OPERATOR, ActorRole.LEGAL, ActorRole.OPS, ActorRole.ADMIN})
# API keys are checked on every request: a last-used time this fresh is not rewritten.
KEY_TOUCH_INTERVAL = timedelta(minutes=1)

_hasher = PasswordHasher()
# Verified against when the username is unknown, so that answer costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AuthError(ValueError):
    """A request the auth layer refuses; the message is safe to show the caller."""


class AlreadyExists(AuthError):
    """The username or key name is taken (a conflict, not an invalid request)."""


class LoginFailed(AuthError):
    pass


class AccountLocked(AuthError):
    def __init__(self, until: datetime) -> None:
        super().__init__("too many failed logins: the account is locked; try later or ask an administrator")
        self.until = until


@dataclass(frozen=True)
class Resolved:
    """Who a token or key belongs to."""

    name: str
    role: ActorRole
    via: str
    subject_id: uuid.UUID
    cameras: frozenset[str] | None
    session_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Issued:
    """A bearer secret, shown once, and when it stops working."""

    token: str
    expires_at: datetime | None
    session_id: uuid.UUID | None = None
    ends_at: datetime | None = None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_policy(password: str, settings: AuthSettings) -> None:
    if len(password) < settings.min_password_chars:
        raise AuthError(f"a password needs at least {settings.min_password_chars} characters")
    if len(password) > 1024:
        raise AuthError("a password may have at most 1024 characters")


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not re.fullmatch(USERNAME_PATTERN, name):
        raise AuthError("a username is 2-64 characters: lower-case letters, digits, '.', '_' or '-'")
    return name


def _cameras(value: list[str] | None) -> list[str] | None:
    return None if value is None else sorted(set(value))


def record(
    session: Session,
    kind: str,
    now: datetime,
    *,
    username: str | None = None,
    actor: str | None = None,
    client: str | None = None,
    detail: str | None = None,
) -> None:
    session.add(AuthEventRow(at=now, kind=kind, username=username, actor=actor, client=client, detail=detail))


def create_user(
    session: Session,
    settings: AuthSettings,
    *,
    username: str,
    display_name: str,
    role: ActorRole,
    password: str,
    cameras: list[str] | None,
    created_by: str,
    now: datetime,
) -> UserRow:
    name = normalise_username(username)
    if role not in PERSON_ROLES:
        raise AuthError(f"role must be one of {', '.join(sorted(r.value for r in PERSON_ROLES))}")
    check_password_policy(password, settings)
    if session.scalar(select(UserRow).where(UserRow.username == name)) is not None:
        raise AlreadyExists(f"user {name!r} already exists")
    row = UserRow(
        user_id=uuid.uuid4(),
        username=name,
        display_name=display_name.strip() or name,
        role=role.value,
        cameras=_cameras(cameras),
        password_hash=hash_password(password),
        disabled=False,
        failed_logins=0,
        created_at=now,
        created_by=created_by,
        password_changed_at=now,
    )
    session.add(row)
    record(session, "user_created", now, username=name, actor=created_by, detail=f"role {role.value}")
    session.flush()
    return row


def set_password(
    session: Session, settings: AuthSettings, user: UserRow, password: str, *, actor: str, now: datetime
) -> None:
    """A new password; every open session of the user ends (a reset after a leak must lock the thief out)."""
    check_password_policy(password, settings)
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    user.failed_logins, user.locked_until = 0, None
    end_sessions(session, user.user_id, now)
    record(session, "password_changed", now, username=user.username, actor=actor)


def end_sessions(session: Session, user_id: uuid.UUID, now: datetime) -> None:
    for row in session.scalars(
        select(AuthSessionRow).where(AuthSessionRow.user_id == user_id, AuthSessionRow.revoked_at.is_(None))
    ):
        row.revoked_at = now


def login(
    session: Session,
    settings: AuthSettings,
    username: str,
    password: str,
    *,
    now: datetime,
    client: str | None,
) -> tuple[UserRow, Issued]:
    """A new session for a right password; :class:`LoginFailed` or :class:`AccountLocked` otherwise.

    The caller commits in both cases: a failure's counter and auth event must stay.
    """
    name = username.strip().lower()
    user = session.scalar(select(UserRow).where(UserRow.username == name)) if name else None
    if user is None:
        _verify(_DUMMY_HASH, password)
        record(session, "login_failed", now, username=name[:200], client=client, detail="unknown user")
        raise LoginFailed("unknown username or wrong password")
    if user.locked_until is not None and user.locked_until > now:
        record(session, "login_refused", now, username=name, client=client, detail="account locked")
        raise AccountLocked(user.locked_until)
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        record(
            session, "login_failed", now, username=name, client=client, detail=f"failure {user.failed_logins}"
        )
        if user.failed_logins >= settings.lockout_after:
            user.locked_until = now + timedelta(seconds=settings.lockout_s)
            user.failed_logins = 0
            record(
                session,
                "locked",
                now,
                username=name,
                client=client,
                detail=f"until {user.locked_until.isoformat()}",
            )
        raise LoginFailed("unknown username or wrong password")
    if user.disabled:
        record(session, "login_refused", now, username=name, client=client, detail="account disabled")
        raise LoginFailed("unknown username or wrong password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    issued = _open_session(session, settings, user, now=now, client=client)
    record(session, "login", now, username=name, client=client)
    return user, issued


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _open_session(
    session: Session, settings: AuthSettings, user: UserRow, *, now: datetime, client: str | None
) -> Issued:
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    ends_at = now + timedelta(seconds=settings.session_max_s)
    row = AuthSessionRow(
        session_id=uuid.uuid4(),
        user_id=user.user_id,
        token_sha256=digest(token),
        created_at=now,
        expires_at=min(ends_at, now + timedelta(seconds=settings.token_ttl_s)),
        ends_at=ends_at,
        client=(client or "")[:200] or None,
    )
    session.add(row)
    return Issued(token, row.expires_at, row.session_id, ends_at)


def refresh(session: Session, settings: AuthSettings, session_id: uuid.UUID, *, now: datetime) -> Issued:
    """A new token for a live session (the old one stops working); refused once the session has ended."""
    row = session.get(AuthSessionRow, session_id)
    if row is None or row.revoked_at is not None or row.expires_at <= now or row.ends_at <= now:
        raise LoginFailed("the session has ended: log in again")
    new = SESSION_PREFIX + secrets.token_urlsafe(32)
    row.token_sha256 = digest(new)
    row.expires_at = min(row.ends_at, now + timedelta(seconds=settings.token_ttl_s))
    return Issued(new, row.expires_at, row.session_id, row.ends_at)


def logout(session: Session, session_id: uuid.UUID, *, now: datetime, username: str) -> None:
    row = session.get(AuthSessionRow, session_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
        record(session, "logout", now, username=username)


def resolve(session: Session, token: str, now: datetime) -> Resolved | None:
    """Who holds ``token`` (a session token or an API key), or None when it is unknown or no longer valid."""
    if token.startswith(KEY_PREFIX):
        key = session.scalar(select(ApiKeyRow).where(ApiKeyRow.token_sha256 == digest(token)))
        if (
            key is None
            or key.revoked_at is not None
            or (key.expires_at is not None and key.expires_at <= now)
        ):
            return None
        if key.last_used_at is None or now - key.last_used_at > KEY_TOUCH_INTERVAL:
            key.last_used_at = now
        return Resolved(key.name, ActorRole(key.role), "api_key", key.key_id, _frozen(key.cameras))
    found = session.execute(
        select(AuthSessionRow, UserRow)
        .join(UserRow, UserRow.user_id == AuthSessionRow.user_id)
        .where(AuthSessionRow.token_sha256 == digest(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or row.expires_at <= now or user.disabled:
        return None
    return Resolved(
        user.username, ActorRole(user.role), "session", user.user_id, _frozen(user.cameras), row.session_id
    )


def _frozen(cameras: list[str] | None) -> frozenset[str] | None:
    return None if cameras is None else frozenset(cameras)


def create_api_key(
    session: Session,
    *,
    name: str,
    role: ActorRole,
    cameras: list[str] | None,
    created_by: str,
    now: datetime,
    expires_at: datetime | None = None,
    secret: str | None = None,
) -> tuple[ApiKeyRow, Issued]:
    """A new key; ``secret`` imports one provisioned elsewhere (a Kubernetes Secret), else one is made.

    The secret is returned once and never stored.
    """
    if role not in PERSON_ROLES:
        raise AuthError(f"role must be one of {', '.join(sorted(r.value for r in PERSON_ROLES))}")
    clean = name.strip()
    if not clean or len(clean) > 200 or not clean.isprintable():
        raise AuthError("a key's name is 1-200 printable characters")
    if session.scalar(select(ApiKeyRow).where(ApiKeyRow.name == clean)) is not None:
        raise AlreadyExists(f"an API key named {clean!r} already exists")
    token = secret or KEY_PREFIX + secrets.token_urlsafe(32)
    if not token.startswith(KEY_PREFIX) or len(token) < len(KEY_PREFIX) + 32:
        raise AuthError(f"an API key starts with {KEY_PREFIX} and has at least 32 more characters")
    row = ApiKeyRow(
        key_id=uuid.uuid4(),
        name=clean,
        prefix=token[: len(KEY_PREFIX) + 6],
        token_sha256=digest(token),
        role=role.value,
        cameras=_cameras(cameras),
        created_at=now,
        created_by=created_by,
        expires_at=expires_at,
    )
    session.add(row)
    record(session, "key_created", now, username=clean, actor=created_by, detail=f"role {role.value}")
    session.flush()
    return row, Issued(token, expires_at)
