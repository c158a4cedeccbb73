"""The web app's shell: ``/`` and the static files under ``/app/`` (HTML, CSS, ES modules).

The shell is public: it holds no data. Every data call it makes goes to
``/api/v1/...`` with the login cookie and is checked there, so serving the
files to anyone gives nothing away. Everything is served from this origin (no
CDN, no web fonts): the app works on an isolated control-room network, and the
Content-Security-Policy below forbids any other origin and any inline script,
so a string from the server that slipped into the page could not run.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.access import PUBLIC
from api.problems import not_found

router = APIRouter(tags=["web app"], include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
APP_PREFIX = "/app/"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # The shell is small and changes with each release: always revalidate, never serve a stale module.
    "Cache-Control": "no-cache",
}
# ES modules must be served as JavaScript or the browser refuses them; the system's table may lack it.
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}


def _static_file(relative: str) -> Response:
    """A file under ``api/static`` (404 for anything outside it, hidden or missing)."""
    root = STATIC_DIR.resolve()
    path = (root / relative).resolve()
    if (
        not relative
        or root not in path.parents
        or any(part.startswith(".") for part in path.relative_to(root).parts)
        or not path.is_file()
    ):
        raise not_found("web app file", relative)
    media_type = (
        MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/", dependencies=PUBLIC)
def root() -> RedirectResponse:
    return RedirectResponse(APP_PREFIX, status_code=307, headers=SECURITY_HEADERS)


@router.get("/app", dependencies=PUBLIC)
def app_no_slash() -> RedirectResponse:
    return RedirectResponse(APP_PREFIX, status_code=307, headers=SECURITY_HEADERS)


@router.get("/app/", dependencies=PUBLIC)
def index() -> Response:
    return _static_file("index.html")


@router.get("/app/{path:path}", dependencies=PUBLIC)
def static(path: str) -> Response:
    return _static_file(path)
