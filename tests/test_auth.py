"""Logins, tokens, lockout, API keys, accounts and per-camera visibility over the real API and database."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from fastapi.testclient import TestClient

from api.access import CSRF_HEADER, CSRF_VALUE, SESSION_COOKIE
from api.models import AuthEventRow, UserRow
from cctv import cli
from cctv.config import Settings
from tests.api_support import (
    ADMIN,
    ApiUnderTest,
    api_under_test,
    isolated_database,
    lifecycle,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[ApiUnderTest]:
    with isolated_database(request.param, tmp_path, request) as url, api_under_test(settings, url) as under:
        under.client.headers.clear()  # these tests choose their credentials per request
        yield under


class Clock:
    """The app's clock, moved by the test instead of sleeping."""

    def __init__(self, api: ApiUnderTest) -> None:
        self.now = datetime.now(UTC)
        api.context.clock = lambda: self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def create_user(client: TestClient, username: str, role: str, **extra: object) -> dict[str, object]:
    body = {"username": username, "role": role, "password": PASSWORD, **extra}
    response = client.post("/api/v1/users", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.cookies.clear()  # bearer-only unless a test wants the cookie
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_login_gives_a_short_lived_token_that_refresh_replaces_and_logout_ends(api: ApiUnderTest) -> None:
    client, clock = api.client, Clock(api)
    create_user(client, "sam", "operator", display_name="Sam Patel")
    response = client.post("/api/v1/auth/login", json={"username": "Sam", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == {
        "name": "sam",
        "display_name": "Sam Patel",
        "role": "operator",
        "cameras": None,
        "via": "session",
    }
    assert body["token"].startswith("cctv_s_")
    ttl = datetime.fromisoformat(body["expires_at"]) - clock.now
    assert timedelta(minutes=14) < ttl <= timedelta(minutes=15)
    token = {"Authorization": f"Bearer {body['token']}"}
    client.cookies.clear()
    assert client.get("/api/v1/auth/me", headers=token).json()["name"] == "sam"

    clock.advance(600)
    refreshed = client.post("/api/v1/auth/refresh", headers=token)
    assert refreshed.status_code == 200
    client.cookies.clear()
    new = {"Authorization": f"Bearer {refreshed.json()['token']}"}
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401  # the old token is gone
    assert client.get("/api/v1/auth/me", headers=new).status_code == 200

    clock.advance(16 * 60)  # past the refreshed token's 15 minutes
    assert client.get("/api/v1/auth/me", headers=new).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=new).status_code == 401

    again = login(client, "sam")
    assert client.post("/api/v1/auth/logout", headers=again).status_code == 204
    assert client.get("/api/v1/auth/me", headers=again).status_code == 401


def test_refresh_stops_at_the_session_limit(api: ApiUnderTest) -> None:
    client, clock = api.client, Clock(api)
    create_user(client, "lee", "legal")
    token = login(client, "lee")
    ends = clock.now + timedelta(hours=12)
    refreshes = 0
    while clock.now + timedelta(minutes=14) < ends:  # refreshed every 14 minutes all shift
        clock.advance(14 * 60)
        response = client.post("/api/v1/auth/refresh", headers=token)
        assert response.status_code == 200, response.text
        client.cookies.clear()
        token = {"Authorization": f"Bearer {response.json()['token']}"}
        assert datetime.fromisoformat(response.json()["expires_at"]) <= ends
        refreshes += 1
    assert refreshes == 51
    clock.now = ends + timedelta(seconds=1)
    assert client.post("/api/v1/auth/refresh", headers=token).status_code == 401
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401


def test_repeated_failures_lock_the_account_then_it_unlocks(api: ApiUnderTest) -> None:
    client, clock = api.client, Clock(api)
    user = create_user(client, "ops1", "ops")
    for _ in range(4):
        wrong = client.post("/api/v1/auth/login", json={"username": "ops1", "password": "not the password"})
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "unknown username or wrong password"
    unknown = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "whatever it is"})
    assert unknown.status_code == 401 and unknown.json()["detail"] == wrong.json()["detail"]
    fifth = client.post("/api/v1/auth/login", json={"username": "ops1", "password": "still wrong"})
    assert fifth.status_code == 401
    locked = client.post("/api/v1/auth/login", json={"username": "ops1", "password": PASSWORD})
    assert locked.status_code == 423 and locked.headers["content-type"] == "application/problem+json"
    assert 800 < int(locked.headers["retry-after"]) <= 900

    clock.advance(901)
    assert (
        client.post("/api/v1/auth/login", json={"username": "ops1", "password": PASSWORD}).status_code == 200
    )

    for _ in range(5):
        client.post("/api/v1/auth/login", json={"username": "ops1", "password": "wrong again"})
    assert (
        client.post("/api/v1/auth/login", json={"username": "ops1", "password": PASSWORD}).status_code == 423
    )
    unlocked = client.patch(f"/api/v1/users/{user['user_id']}", json={"unlock": True}, headers=ADMIN)
    assert unlocked.status_code == 200 and unlocked.json()["locked_until"] is None
    assert (
        client.post("/api/v1/auth/login", json={"username": "ops1", "password": PASSWORD}).status_code == 200
    )

    events = client.get(
        "/api/v1/auth/events", params={"username": "ops1", "limit": 500}, headers=ADMIN
    ).json()
    kinds = [e["kind"] for e in reversed(events["items"])]
    assert kinds.count("locked") == 2 and kinds.count("login_refused") == 2 and kinds.count("login") == 2
    assert "user_updated" in kinds and kinds.count("login_failed") == 10
    assert any(
        e["kind"] == "login_failed" and e["username"] == "nobody"
        for e in client.get("/api/v1/auth/events", params={"username": "nobody"}, headers=ADMIN).json()[
            "items"
        ]
    )


def test_passwords_are_stored_as_argon2id_hashes_only(api: ApiUnderTest) -> None:
    create_user(api.client, "hashme", "legal")
    with api.context.sessions() as session:
        stored = session.scalar(sqlalchemy.select(UserRow.password_hash).where(UserRow.username == "hashme"))
        logged = " ".join(str(d) for d in session.scalars(sqlalchemy.select(AuthEventRow.detail)))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PASSWORD not in logged
    short = api.client.post(
        "/api/v1/users", json={"username": "shorty", "role": "legal", "password": "short"}, headers=ADMIN
    )
    assert short.status_code == 422 and "12 characters" in short.json()["detail"]
    dup = api.client.post(
        "/api/v1/users", json={"username": "HashMe", "role": "legal", "password": PASSWORD}, headers=ADMIN
    )
    assert dup.status_code == 409


def test_disabling_a_user_or_changing_their_role_ends_their_sessions(api: ApiUnderTest) -> None:
    client = api.client
    user = create_user(client, "dana", "operator")
    token = login(client, "dana")
    assert (
        client.patch(f"/api/v1/users/{user['user_id']}", json={"role": "legal"}, headers=ADMIN).status_code
        == 200
    )
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401
    token = login(client, "dana")
    assert client.get("/api/v1/auth/me", headers=token).json()["role"] == "legal"
    assert (
        client.patch(f"/api/v1/users/{user['user_id']}", json={"disabled": True}, headers=ADMIN).status_code
        == 200
    )
    assert client.get("/api/v1/auth/me", headers=token).status_code == 401
    refused = client.post("/api/v1/auth/login", json={"username": "dana", "password": PASSWORD})
    assert refused.status_code == 401


def test_the_last_admin_cannot_be_demoted_or_disabled(api: ApiUnderTest) -> None:
    client = api.client
    first = create_user(client, "root1", "admin")
    root = login(client, "root1")
    # the seeded test key is an API key, not a user: root1 is the only admin account
    for change in ({"role": "ops"}, {"disabled": True}):
        refused = client.patch(f"/api/v1/users/{first['user_id']}", json=change, headers=root)
        assert refused.status_code == 409 and refused.json()["title"] == "Last admin"
    create_user(client, "root2", "admin")
    assert (
        client.patch(f"/api/v1/users/{first['user_id']}", json={"role": "ops"}, headers=root).status_code
        == 200
    )


def test_cookie_sessions_need_the_csrf_header_to_change_anything(api: ApiUnderTest) -> None:
    client = api.client
    create_user(client, "webop", "operator")
    response = client.post("/api/v1/auth/login", json={"username": "webop", "password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/v1/auth/me").json()["name"] == "webop"  # reads: the cookie is enough
    forged = client.post("/api/v1/auth/refresh")
    assert forged.status_code == 403 and forged.json()["title"] == "Cross-site request refused"
    assert client.post("/api/v1/auth/refresh", headers={CSRF_HEADER: CSRF_VALUE}).status_code == 200
    assert client.post("/api/v1/auth/logout", headers={CSRF_HEADER: CSRF_VALUE}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_a_user_sees_only_their_cameras_incidents(api: ApiUnderTest) -> None:
    client = api.client
    first, second = uuid.uuid4(), uuid.uuid4()
    api.persister.persist([*lifecycle(first, camera_id="cam1"), *lifecycle(second, camera_id="cam2")])
    create_user(client, "carpark", "operator", cameras=["cam2"])
    token = login(client, "carpark")
    listed = client.get("/api/v1/incidents", headers=token).json()
    assert [i["incident_id"] for i in listed["items"]] == [str(second)] and listed["total"] == 1
    assert client.get(f"/api/v1/incidents/{first}", headers=token).status_code == 404
    assert client.get(f"/api/v1/incidents/{first}/snapshot", headers=token).status_code == 404
    assert client.get(f"/api/v1/incidents/{second}", headers=token).status_code == 200
    assert [c["id"] for c in client.get("/api/v1/cameras", headers=token).json()] == ["cam2"]
    assert client.get("/api/v1/cameras/cam1", headers=token).status_code == 404
    everyone = client.get("/api/v1/incidents", headers=ADMIN).json()
    assert everyone["total"] == 2
    # evidence of a camera they may not see is as absent as its incident, and nothing is logged for them
    evidence_id = api.sealed().message.evidence_id  # a cam1 item
    for path in ("", "/clip", "/custody"):
        hidden = client.get(f"/api/v1/evidence/{evidence_id}{path}", params={"reason": "look"}, headers=token)
        assert hidden.status_code == 404, path
    chain = client.get(f"/api/v1/evidence/{evidence_id}/custody", headers=ADMIN).json()["entries"]
    assert "carpark" not in {entry["actor"] for entry in chain}


def test_the_first_admin_is_created_from_the_command_line(
    api: ApiUnderTest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = api.settings.api.database_url
    monkeypatch.setenv("CCTV_API__DATABASE_URL", url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert (
        cli.main(
            ["users", "add", "Chief", "--role", "admin", "--display-name", "Chief Admin", "--password-stdin"]
        )
        == 0
    )
    assert "created with role admin" in capsys.readouterr().out
    token = login(api.client, "chief")
    assert api.client.get("/api/v1/users", headers=token).status_code == 200

    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert cli.main(["users", "add", "weak", "--password-stdin"]) == 2
    assert "12 characters" in capsys.readouterr().err
    for _ in range(5):
        api.client.post("/api/v1/auth/login", json={"username": "chief", "password": "wrong password"})
    assert (
        api.client.post("/api/v1/auth/login", json={"username": "chief", "password": PASSWORD}).status_code
        == 423
    )
    assert cli.main(["users", "unlock", "chief"]) == 0
    login(api.client, "chief")

    secret = "cctv_k_" + "s" * 40
    secret_file = api.settings.data_dir / "scraper.key"
    secret_file.write_text(secret + "\n")
    assert cli.main(["users", "key", "prometheus", "--role", "ops", "--secret-file", str(secret_file)]) == 0
    assert api.client.get("/metrics", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
