"""Who may call what: every route declares an :class:`Access` (roles) or :func:`public`.

A caller proves who they are with one of:
- ``Authorization: Bearer <token>``: a login's short-lived token (``cctv_s_...``)
  or a service's API key (``cctv_k_...``);
- the ``cctv_session`` cookie the login sets for the web app. A request that
  changes something with only the cookie must also send ``X-Requested-With:
  cctv-web``: a custom header no other site can make a browser send without a
  CORS preflight (this API answers none), so a forged form post is refused
  (cross-site request forgery).

No credentials, or a wrong, expired or revoked one: 401 with ``WWW-Authenticate``.
A valid one whose role the route does not allow: 403. Per-camera visibility
(``Principal.cameras``) is applied by the routes that serve a camera's data: an
incident of a camera the caller may not see does not exist for them (404).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import ColumnElement, true

from api import auth
from api.custody import Actor
from api.deps import ContextDep
from api.problems import Problem
from evidence_store.custody import ActorRole

SESSION_COOKIE = "cctv_session"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "cctv-web"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

OPERATOR, LEGAL, OPS, ADMIN = ActorRole.OPERATOR, ActorRole.LEGAL, ActorRole.OPS, ActorRole.ADMIN
PERSON_ROLES = (OPERATOR, LEGAL, OPS, ADMIN)

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="a login token (POST /api/v1/auth/login) or an API key",
)
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="session_cookie",
    description="the web app's login cookie; changes also need X-Requested-With: cctv-web",
)


@dataclass(frozen=True)
class Principal(Actor):
    """An authenticated caller: a custody :class:`Actor` plus how they proved it and what they may see."""

    via: str = "session"  # "session" (a person's login) or "api_key" (a service)
    subject_id: uuid.UUID | None = None  # the user's or the key's id
    cameras: frozenset[str] | None = None  # None: every camera
    session_id: uuid.UUID | None = None

    def may_see(self, camera_id: str) -> bool:
        return self.cameras is None or camera_id in self.cameras

    def camera_clause(self, column: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping only rows of cameras this caller may see."""
        if self.cameras is None:
            return true()
        return column.in_(sorted(self.cameras))


def unauthenticated(detail: str) -> Problem:
    problem = Problem(401, "Not authenticated", detail)
    problem.headers = {"WWW-Authenticate": 'Bearer realm="cctv"'}
    return problem


def forbidden(principal: Principal, roles: Iterable[ActorRole]) -> Problem:
    allowed = ", ".join(r.value for r in roles)
    return Problem(
        403, "Forbidden", f"role {principal.role.value!r} may not do this; it needs one of: {allowed}"
    )


class Access:
    """A route's declaration of the roles that may call it; as a dependency it returns the :class:`Principal`.

    ``roles`` stays readable on the object, so a test can walk every route and
    prove 401 and 403 for each (``tests/test_access_matrix.py``).
    """

    def __init__(self, *roles: ActorRole) -> None:
        if not roles:
            raise ValueError("an Access needs at least one role; use public() for open routes")
        self.roles = frozenset(roles)

    def __repr__(self) -> str:
        return f"Access({', '.join(sorted(r.value for r in self.roles))})"

    def __call__(
        self,
        request: Request,
        context: ContextDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        cookie: Annotated[str | None, Depends(_cookie)],
    ) -> Principal:
        principal = authenticate(request, context, bearer, cookie)
        if principal.role not in self.roles:
            raise forbidden(principal, sorted(self.roles))
        return principal


def authenticate(
    request: Request,
    context: Any,
    bearer: HTTPAuthorizationCredentials | None,
    cookie: str | None,
) -> Principal:
    """The caller's principal from a bearer token or the session cookie (401 when neither is valid)."""
    if bearer is not None and bearer.credentials:
        token = bearer.credentials
    elif cookie:
        if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != CSRF_VALUE:
            raise Problem(
                403,
                "Cross-site request refused",
                f"a change made with the session cookie must send {CSRF_HEADER}: {CSRF_VALUE}",
            )
        token = cookie
    else:
        raise unauthenticated("send Authorization: Bearer <token or API key>, or log in")
    with context.sessions.begin() as session:
        found = auth.resolve(session, token, context.clock())
    if found is None:
        raise unauthenticated("the token or API key is unknown, expired or revoked")
    return Principal(
        name=found.name,
        role=found.role,
        via=found.via,
        subject_id=found.subject_id,
        cameras=found.cameras,
        session_id=found.session_id,
    )


def public() -> None:
    """Declares a route open to anyone (probes, the signing keys, share links, login, the web app)."""


# The route declarations, by what the callers do.
Anyone = Access(*PERSON_ROLES)  # any signed-in person or service key
Viewers = Access(OPERATOR, LEGAL, ADMIN)  # incidents and their evidence: not ops (no footage for them)
Reviewers = Access(OPERATOR, ADMIN)  # triage alerts: acknowledge, escalate, dismiss, assign
Lawyers = Access(LEGAL, ADMIN)  # cases, holds, exports, shares, disclosures, redactions
Operations = Access(OPS, ADMIN)  # component health, metrics
# Zones and rule settings: the control room tunes them on the cameras wall (the operators);
# every version is kept with who and why, and an operator edits only the cameras they may see.
CameraEditors = Access(OPERATOR, OPS, ADMIN)
Admins = Access(ADMIN)  # users and API keys

AnyoneDep = Annotated[Principal, Depends(Anyone)]
ViewerDep = Annotated[Principal, Depends(Viewers)]
ReviewerDep = Annotated[Principal, Depends(Reviewers)]
LawyerDep = Annotated[Principal, Depends(Lawyers)]
OperationsDep = Annotated[Principal, Depends(Operations)]
CameraEditorDep = Annotated[Principal, Depends(CameraEditors)]
AdminDep = Annotated[Principal, Depends(Admins)]
PUBLIC = [Depends(public)]
