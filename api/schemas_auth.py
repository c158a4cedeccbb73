"""Request and response models of logins, users, API keys and the auth log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from api.schemas import In, Out

PersonRole = Literal["operator", "legal", "ops", "admin"]
CameraList = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] | None,
    Field(max_length=1000, description="cameras this account may see; null: every camera"),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class LoginIn(In):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Password


class UserOut(Out):
    user_id: uuid.UUID
    username: str
    display_name: str
    role: PersonRole
    cameras: list[str] | None
    disabled: bool
    locked_until: datetime | None
    created_at: datetime
    created_by: str
    last_login_at: datetime | None


class MeOut(Out):
    name: str = Field(description="username, or the API key's name")
    display_name: str
    role: PersonRole
    cameras: list[str] | None
    via: Literal["session", "api_key"]


class TokenOut(Out):
    token: str = Field(description="bearer token; the web app uses the cookie set alongside instead")
    expires_at: datetime = Field(description="refresh before this (POST /api/v1/auth/refresh)")
    session_ends_at: datetime = Field(description="no refresh after this: log in again")
    user: MeOut


class UserIn(In):
    username: Annotated[str, StringConstraints(min_length=2, max_length=64)]
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    role: PersonRole
    password: Password
    cameras: CameraList = None


class UserPatchIn(In):
    """Only the fields sent change."""

    display_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None
    ) = None
    role: PersonRole | None = None
    cameras: CameraList = None
    all_cameras: bool = Field(default=False, description="true: clear the camera list (see every camera)")
    disabled: bool | None = None
    unlock: bool = Field(default=False, description="true: clear a lockout now")


class PasswordIn(In):
    password: Password


class ApiKeyIn(In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    role: PersonRole
    cameras: CameraList = None
    expires_at: datetime | None = None


class ApiKeyOut(Out):
    key_id: uuid.UUID
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    role: PersonRole
    cameras: list[str] | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="the secret, shown only this once")


class AuthEventOut(Out):
    id: int
    at: datetime
    kind: str
    username: str | None
    actor: str | None
    client: str | None
    detail: str | None


class AuthEventPage(Out):
    items: list[AuthEventOut]
    total: int
    limit: int
    offset: int
