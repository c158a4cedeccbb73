"""RFC 9457 problem details: the only shape an error leaves this API in.

Routers raise :class:`fastapi.HTTPException` (or :class:`Problem`, a subclass
that also carries a title); the handlers here render it, request validation
errors and unexpected exceptions as ``application/problem+json``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(HTTPException):
    """An HTTPException with an explicit problem title (and optional type URI and extra members)."""

    def __init__(
        self,
        status_code: int,
        title: str,
        detail: str,
        *,
        type_uri: str = "about:blank",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail)
        self.title, self.type_uri, self.extra = title, type_uri, extra or {}


def not_found(what: str, ident: object) -> Problem:
    return Problem(404, "Not Found", f"{what} {ident} does not exist")


def problem_response(
    status: int, title: str, detail: str, *, type_uri: str = "about:blank", **extra: Any
) -> JSONResponse:
    body = {"type": type_uri, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = getattr(exc, "title", None) or _phrase(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    response = problem_response(
        exc.status_code,
        title,
        detail,
        type_uri=getattr(exc, "type_uri", "about:blank"),
        instance=request.url.path,
        **getattr(exc, "extra", {}),
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")), "type": err.get("type")}
        for err in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return problem_response(
        422, "Request validation failed", detail, instance=request.url.path, errors=errors
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "Internal Server Error", "unexpected server error", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
