"""The OpenAPI document says how every operation can fail, not only how it succeeds.

Every error this API sends is RFC 9457 problem details (:mod:`api.problems`),
so the spec gains a ``Problem`` schema and, on each operation: 401 and 403 where
the operation needs credentials, 404 where the path names a resource, 422 as
problem details (FastAPI documents its own JSON shape, which this API never
sends), and ``default`` for the rest (409, 410, 423, 502, 503, ...). Client
generators and schemathesis then see the answers the API really gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from api.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}, "description": "validation errors (422)"},
    },
    "additionalProperties": True,
}
_REF = {"$ref": "#/components/schemas/Problem"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _REF}}}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Adds the Problem schema and each operation's error answers to ``schema`` (in place, once)."""
    if schema.get("x-errors-documented"):
        return schema
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                responses.setdefault("401", _problem("no valid credentials (problem details)"))
                responses.setdefault("403", _problem("the caller's role may not do this (problem details)"))
            if "{" in path:
                responses.setdefault("404", _problem("no such resource, or not visible to the caller"))
            if "422" in responses:
                responses["422"] = _problem("the request is invalid: each error is listed (problem details)")
            responses.setdefault("default", _problem("any other error (problem details)"))
    schema["x-errors-documented"] = True
    return schema


def install(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        return document_errors(generate())

    app.openapi = openapi  # type: ignore[method-assign]
