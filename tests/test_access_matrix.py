"""Every route declares who may call it, and the declaration holds: 401 without credentials, 403 for
each role it does not name, neither for the roles it does (walked over the app's own route table, so a
new route is covered the moment it exists)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.access import Access, public
from api.app import ROUTERS, create_app
from cctv.config import Settings
from tests.api_support import TEST_KEYS, bearer, camera_registry, seed_keys, with_database

# Never ends for a caller it admits, so TestClient would wait forever for its body; the allowed roles
# are proven on a real server in tests/test_alert_feed.py (401 and 403 answer at once, checked here).
ENDLESS = {"/api/v1/alerts/stream"}
ROLE_HEADERS = {role.value: bearer(name) for name, (role, _secret) in TEST_KEYS.items()}


def declarations(route: APIRoute) -> list[Any]:
    """The Access objects and public() markers anywhere in the route's dependency tree."""
    found: list[Any] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Access) or dependant.call is public:
            found.append(dependant.call)
        stack.extend(dependant.dependencies)
    return found


def concrete(path: str) -> str:
    """The path with every parameter filled: a UUID where one fits, else a plain word."""
    return re.sub(
        r"\{([^}:]+)(:path)?\}", lambda m: "cam1" if "camera" in m.group(1) else str(uuid.uuid4()), path
    )


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory, stack: Any) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("access")
    settings = with_database(
        stack.settings_for(Settings(data_dir=tmp), f"acc{uuid.uuid4().hex[:6]}"), f"sqlite:///{tmp / 'a.db'}"
    )
    app = create_app(settings, camera_registry(), start_persister=False)
    with TestClient(app) as client:
        seed_keys(app.state.context.sessions)
        yield client


def routes() -> list[APIRoute]:
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def test_the_walk_covers_every_operation_the_app_publishes(app_client: TestClient) -> None:
    """Nothing is served outside ROUTERS: every operation of the OpenAPI spec is a walked route."""
    walked = {(m.lower(), r.path) for r in routes() for m in r.methods}
    spec = app_client.get("/openapi.json").json()
    published = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert published - walked == set()
    assert len(published) >= 40


def test_every_route_declares_exactly_one_access_rule(app_client: TestClient) -> None:
    undeclared = []
    for route in routes():
        found = declarations(route)
        if len(found) != 1:
            undeclared.append(f"{sorted(route.methods)} {route.path}: {found}")
    assert not undeclared, "routes without exactly one Access/public declaration:\n" + "\n".join(undeclared)
    # the matrix below must really exercise protected routes
    assert sum(isinstance(declarations(r)[0], Access) for r in routes()) >= 40


def matrix() -> Iterator[tuple[str, str, Access]]:
    for route in routes():
        (rule,) = declarations(route)
        if isinstance(rule, Access):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, route.path, rule


def test_protected_routes_answer_401_without_credentials_and_403_to_other_roles(
    app_client: TestClient, tmp_path: Path
) -> None:
    checked = 0
    for method, path, rule in matrix():
        url = concrete(path)
        anonymous = app_client.request(method, url)
        assert anonymous.status_code == 401, f"{method} {path} without credentials: {anonymous.status_code}"
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        bogus = app_client.request(method, url, headers={"Authorization": "Bearer cctv_k_" + "x" * 43})
        assert bogus.status_code == 401, f"{method} {path} with an unknown key: {bogus.status_code}"
        for role, headers in ROLE_HEADERS.items():
            if role in rule.roles and path in ENDLESS:
                continue
            response = app_client.request(method, url, headers=headers)
            if role in rule.roles:
                assert response.status_code not in (401, 403), (
                    f"{method} {path} as {role} (allowed): {response.status_code} {response.text[:200]}"
                )
            else:
                assert response.status_code == 403, f"{method} {path} as {role}: {response.status_code}"
                assert response.json()["title"] == "Forbidden"
            checked += 1
    assert checked >= 160


def test_public_routes_need_no_credentials(app_client: TestClient) -> None:
    for route in routes():
        (rule,) = declarations(route)
        if rule is public:
            for method in route.methods - {"HEAD"}:
                response = app_client.request(method, concrete(route.path))
                assert response.status_code != 401, f"{method} {route.path} is public but answered 401"
    assert app_client.get("/healthz").status_code == 200
    assert app_client.get("/api/v1/keys").status_code == 200


def test_revoked_or_expired_keys_stop_working(app_client: TestClient) -> None:
    admin = ROLE_HEADERS["admin"]
    created = app_client.post(
        "/api/v1/api-keys", json={"name": f"scraper-{uuid.uuid4().hex[:6]}", "role": "ops"}, headers=admin
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    assert app_client.get("/metrics", headers=key).status_code == 200
    assert app_client.get("/api/v1/incidents", headers=key).status_code == 403  # ops sees no footage
    listed = app_client.get("/api/v1/api-keys", headers=admin).json()
    assert all("key" not in k for k in listed)  # the secret is never shown again
    assert app_client.delete(f"/api/v1/api-keys/{created.json()['key_id']}", headers=admin).status_code == 204
    assert app_client.get("/metrics", headers=key).status_code == 401
    past = app_client.post(
        "/api/v1/api-keys",
        json={"name": f"old-{uuid.uuid4().hex[:6]}", "role": "ops", "expires_at": "2020-01-01T00:00:00Z"},
        headers=admin,
    )
    assert (
        app_client.get("/metrics", headers={"Authorization": f"Bearer {past.json()['key']}"}).status_code
        == 401
    )
