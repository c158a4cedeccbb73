"""The web app in a real browser (Debian's Chromium, driven by Playwright), against the real API.

Each browser test serves the whole app with uvicorn on a private PostgreSQL schema and the
session's S3 store, logs in through the login form as a real user, and checks what the page shows
against what the API says. Pages may not leave the server's origin (no CDN, no fonts): any other
URL is aborted and fails the test, as do uncaught script errors and CSP violations. Screenshots of
the main pages are kept under test-artifacts/screenshots/.

The first tests need no browser: the shell's files, their security headers, and that the app's
scripts never parse server text as HTML.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routers.webapp import STATIC_DIR
from cctv.config import Settings
from tests.api_support import ADMIN, LEGAL, OPERATOR, OPS, camera_registry, isolated_database, with_database
from tests.webapp_support import PASSWORD, ServedApp, browser, log_in, page_on, screenshot, served_app

pytestmark = pytest.mark.service

ASSETS = sorted(p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file())
# The only absolute URL allowed in the shell: the SVG namespace name (an identifier, never fetched).
NAMESPACES = {"http://www.w3.org/2000/svg"}


# --------------------------------------------------------------------------- without a browser


@pytest.fixture
def shell(settings: Settings, tmp_path: Path) -> TestClient:
    """The app (not started: the shell needs no database) for its static routes."""
    app = create_app(with_database(settings, f"sqlite:///{tmp_path / 'shell.db'}"), camera_registry())
    return TestClient(app)


def test_every_static_asset_is_served_with_the_security_headers(shell: TestClient) -> None:
    assert {"index.html", "app.css", "js/app.js", "js/api.js", "js/alerts.js"} <= set(ASSETS)
    root = shell.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/app/"
    index = shell.get("/app/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    for asset in ASSETS:
        response = shell.get(f"/app/{asset}")
        assert response.status_code == 200, asset
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp, asset
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert "img-src 'self' blob: data:" in csp and "media-src 'self' blob:" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        if asset.endswith(".js"):  # ES modules are refused unless served as JavaScript
            assert response.headers["content-type"].startswith("text/javascript"), asset
    for outside in (
        "/app/..%2Fapp.py",
        "/app/js/..%2F..%2Frouters%2Fwebapp.py",
        "/app/missing.js",
        "/app/.hidden",
    ):
        assert shell.get(outside).status_code == 404, outside


def test_the_shell_works_offline_and_never_parses_server_text_as_html() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    assert not re.search(r"https?://", index), "index.html must reference nothing outside the server"
    assert "<script>" not in index and " on" not in re.sub(r"\s+", " ", index).split("<body")[0]
    for asset in ASSETS:
        text = (STATIC_DIR / asset).read_text()
        urls = set(re.findall(r"https?://[^\s\"'`)]+", text))
        assert urls <= NAMESPACES, f"{asset} references {urls - NAMESPACES}"
        assert "@import" not in text and "url(http" not in text, asset
        if asset.endswith(".js"):
            assert not re.search(
                r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|eval\(", text
            ), asset
            assert len(text.splitlines()) < 500, f"{asset}: split it by page"


# --------------------------------------------------------------------------- in the browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


@pytest.fixture
def served(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServedApp]:
    with isolated_database("postgresql", tmp_path, request) as url, served_app(settings, url) as app:
        yield app


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def show(page: Any, route: str, heading: str | re.Pattern[str]) -> None:
    """Navigates inside the app (no reload), waits for the page's heading and for its data."""
    page.evaluate("route => { window.location.hash = route; }", f"#/{route}")
    expect()(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    expect()(page.get_by_role("main")).to_have_attribute("aria-busy", "false", timeout=30_000)


def test_operator_sees_a_new_alert_arrive_live_and_acknowledges_it(chromium: Any, served: ServedApp) -> None:
    check = expect()
    served.heartbeat()
    # Server text is shown as text: markup in a summary is neither parsed nor run.
    hostile = 'person 3 loitering by the cash machine <img src=x onerror="window.__ran=1">'
    earlier = served.open_incident(minutes_ago=3, summary=hostile)
    with page_on(chromium, served) as (page, log):
        log_in(page, "olivia")
        check(page.get_by_role("heading", name="Alerts", level=1)).to_be_visible()
        feed = page.get_by_role("feed", name="Alerts")
        first = feed.get_by_role("article").filter(has_text="by the cash machine")
        check(first).to_be_visible()
        check(first).to_contain_text(hostile)
        check(first.get_by_role("img")).to_have_count(1)  # the snapshot only
        assert page.evaluate("() => window.__ran") is None
        # Times are Europe/London on screen, UTC on hover.
        check(first.locator("time").first).to_have_attribute("title", re.compile(r"^UTC \d{4}-\d\d-\d\dT"))
        # The annotated snapshot is shown (loaded, not a broken image).
        check(first.get_by_role("img")).to_have_js_property("naturalWidth", 640)
        check(page.get_by_role("status", name="Live feed status")).to_have_text("Live")
        page.evaluate("() => { window.__notReloaded = true; }")

        new = served.open_incident(minutes_ago=0, summary="person 12 loitering at the bus stop")
        card = feed.get_by_role("article").filter(has_text="at the bus stop")
        check(card).to_be_visible(timeout=30_000)
        assert page.evaluate("() => window.__notReloaded === true"), "the page reloaded"
        check(card.get_by_role("img")).to_have_js_property("naturalWidth", 640)
        check(card).to_contain_text("new")
        screenshot(page, "operator-alerts")

        card.get_by_role("button", name=re.compile(r"^Acknowledge")).click()
        check(card).to_contain_text("acknowledged")
        check(card.get_by_role("button", name=re.compile(r"^Acknowledge"))).to_have_count(0)
        answered = log.statuses(f"/api/v1/incidents/{new}/actions")
        assert answered and set(answered) <= {200, 201}, answered

        # The API agrees, and the other alert was left alone.
        now = served.api("GET", f"/api/v1/incidents/{new}", OPERATOR).json()
        assert now["review_status"] == "acknowledged"
        assert served.api("GET", f"/api/v1/incidents/{earlier}", OPERATOR).json()["review_status"] == "new"
        actions = served.api("GET", f"/api/v1/incidents/{new}/actions", OPERATOR).json()
        assert [(a["action"], a["actor"]) for a in actions] == [("acknowledge", "olivia")]

        # The earlier one was a false positive: dismissed with a reason, it leaves the active list.
        first.get_by_role("button", name=re.compile(r"^Dismiss")).click()
        dialog = page.get_by_role("dialog", name="Dismiss as false positive")
        dialog.get_by_label("Reason (required)").fill("a bus queue, not loitering")
        dialog.get_by_role("button", name="Dismiss").click()
        check(first).to_have_count(0)
        dismissed = served.api("GET", f"/api/v1/incidents/{earlier}/actions", OPERATOR).json()
        assert [(a["action"], a["text"]) for a in dismissed] == [("dismiss", "a bus queue, not loitering")]
        page.get_by_label("Show").select_option("all")
        check(first).to_contain_text("dismissed")
        page.get_by_label("Show").select_option("open")

        # Its incident page: assign it, note it; the timeline shows who did what.
        card.get_by_role("link", name="Open").click()
        check(page.get_by_role("heading", name="Loitering on High St", level=1)).to_be_visible()
        page.get_by_role("button", name="Assign to…").click()
        dialog = page.get_by_role("dialog", name="Assign incident")
        dialog.get_by_label("Assign to").select_option("olivia")
        dialog.get_by_role("button", name="Assign").click()
        check(page.get_by_role("region", name="Incident details")).to_contain_text("olivia")
        page.get_by_label("Note text").fill("called the street warden")
        page.get_by_role("button", name="Add note").click()
        timeline = page.get_by_role("list", name="Incident timeline")
        check(timeline).to_contain_text("called the street warden")
        check(timeline).to_contain_text("acknowledged")
        screenshot(page, "operator-incident")
        final = served.api("GET", f"/api/v1/incidents/{new}", OPERATOR).json()
        assert final["assignee"] == "olivia" and final["review_status"] == "acknowledged"


def test_legal_builds_a_case_from_two_incidents_holds_it_and_exports_it(
    chromium: Any, served: ServedApp
) -> None:
    check = expect()
    first_sealed, second_sealed = served.sealed_incident(), served.sealed_incident(first=110)
    served.sealed_incident(first=115)  # a third incident that stays out of the case
    first, second = first_sealed.opened.incident_id, second_sealed.opened.incident_id
    with page_on(chromium, served) as (page, log):
        log_in(page, "lena")
        check(page.get_by_role("heading", name="Search incidents", level=1)).to_be_visible()
        search = page.get_by_role("search", name="Search incidents")
        search.get_by_label("Camera").select_option("cam2")
        search.get_by_label("Status").select_option("closed")
        search.get_by_role("button", name="Search").click()
        check(page).to_have_url(re.compile(r"#/search\?.*camera_id=cam2"))
        results = page.get_by_role("table", name="Matching incidents")
        check(results.get_by_role("row")).to_have_count(4)  # header + 3 incidents
        screenshot(page, "legal-search")

        for incident_id in (first, second):
            page.get_by_role("checkbox", name=f"Select incident {str(incident_id)[:8]} (Car park)").check()
        page.get_by_label("Case", exact=True).select_option("new")
        page.get_by_role("button", name="Add selected to case").click()
        dialog = page.get_by_role("dialog", name="New case")
        dialog.get_by_label("Reference (e.g. ASB-2025-014)").fill("ASB-2025-014")
        dialog.get_by_label("Title").fill("Loitering outside 12 High St")
        dialog.get_by_role("button", name="Create case").click()

        check(page.get_by_role("heading", name="Case ASB-2025-014", level=1)).to_be_visible()
        exhibits = page.get_by_role("table", name="Exhibits in order")
        check(exhibits).to_contain_text("ASB-2025-014/001")
        check(exhibits).to_contain_text("ASB-2025-014/002")

        page.get_by_label("Reason (custody log)").fill("proceedings anticipated: preserve everything")
        page.get_by_role("button", name="Place legal hold").click()
        check(page.get_by_role("button", name="Release legal hold")).to_be_visible()

        page.get_by_label("Reason (required)").fill("disclosure to the CPS")
        page.get_by_label("Recipient").fill("DC Jones")
        page.get_by_label("Organisation").fill("Metropolitan Police")
        page.get_by_role("button", name="Start export").click()
        # The bundle is built, signed and locked before the answer: allow it time, then read the verdict.
        check(page.get_by_role("status").filter(has_text="Export")).to_contain_text(
            "Export ready", timeout=60_000
        )
        check(page.get_by_role("table", name="Exports of this case").get_by_role("row")).to_have_count(2)
        page.get_by_label("Note text").fill("CPS asked for both angles")
        page.get_by_role("button", name="Add note").click()
        check(page.get_by_role("list", name="Case notes")).to_contain_text("CPS asked for both angles")
        check(page.get_by_role("list", name="Case timeline")).to_contain_text("lena")
        screenshot(page, "legal-case")

        # The disclosure log lists the bundle given to the police, on screen and as CSV.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Disclosures").click()
        check(page.get_by_role("table", name="Disclosures, oldest first")).to_contain_text("DC Jones")
        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        disclosed = Path(download.value.path()).read_text()
        assert disclosed.startswith("date,kind,contents,recipient") and "Metropolitan Police" in disclosed
        screenshot(page, "legal-disclosures")

        # The custody log, filtered to what lena did, newest first; its CSV is the same rows.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Custody log").click()
        filters = page.get_by_role("search", name="Filter custody log")
        filters.get_by_label("Who").fill("lena")
        filters.get_by_label("Action").select_option("exported")
        filters.get_by_role("button", name="Search").click()
        entries = page.get_by_role("table", name="Custody entries, newest first")
        check(entries.get_by_role("row")).to_have_count(3)  # header + the two exhibits' export entries
        check(entries).to_contain_text("disclosure to the CPS")
        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        rows = Path(download.value.path()).read_text().strip().splitlines()
        assert len(rows) == 3 and all("lena" in r and "exported" in r for r in rows[1:])
        screenshot(page, "legal-custody-log")
        assert 403 not in log.statuses("/api/v1/")

    cases = served.api("GET", "/api/v1/cases", LEGAL).json()
    (case,) = [c for c in cases if c["reference"] == "ASB-2025-014"]
    full = served.api("GET", f"/api/v1/cases/{case['case_id']}", LEGAL).json()
    assert full["legal_hold"] is True and full["created_by"] == "lena"
    assert [i["exhibit_ref"] for i in full["items"]] == ["ASB-2025-014/001", "ASB-2025-014/002"]
    assert {uuid.UUID(i["incident_id"]) for i in full["items"]} == {first, second}
    exports = served.api("GET", "/api/v1/exports", LEGAL, params={"case_id": case["case_id"]}).json()
    assert exports["total"] == 1
    (bundle,) = exports["items"]
    assert bundle["actor"] == "lena" and bundle["recipient"] == "DC Jones"
    assert len(bundle["items"]) == 2
    for sealed in (first_sealed, second_sealed):
        chain = served.api("GET", f"/api/v1/evidence/{sealed.message.evidence_id}/custody", LEGAL).json()
        done = [(e["action"], e["actor"]) for e in chain["entries"]]
        assert ("added_to_case", "lena") in done and ("hold_placed", "lena") in done
        assert ("exported", "lena") in done
        assert chain["verification"]["ok"] is True


def test_an_operator_cannot_open_the_legal_pages(chromium: Any, served: ServedApp) -> None:
    check = expect()
    served.sealed_incident()
    with page_on(chromium, served) as (page, log):
        log_in(page, "olivia")
        nav = page.get_by_role("navigation", name="Main")
        check(nav.get_by_role("link", name="Alerts")).to_be_visible()
        for hidden in ("Search", "Cases", "Custody log", "Disclosures", "Health", "Users & keys"):
            check(nav.get_by_role("link", name=hidden)).to_have_count(0)
        for route, api_path in (
            ("cases", "/api/v1/cases"),
            ("search", "/api/v1/cases"),
            ("custody", "/api/v1/custody/entries"),
            ("disclosures", "/api/v1/disclosures"),
        ):
            show(page, route, "Access denied")
            check(page.get_by_role("alert")).to_contain_text("role 'operator' may not do this")
            statuses = log.statuses(api_path)
            assert statuses and set(statuses) == {403}, (route, statuses)
        screenshot(page, "operator-access-denied")
    # Nothing the operator's pages asked of the legal API was answered with data.
    assert all(
        code == 403
        for _m, path, code in log.responses
        if path.startswith(("/api/v1/cases", "/api/v1/disclosures"))
    )


def test_every_main_page_renders_for_admin_and_ops(chromium: Any, served: ServedApp) -> None:
    check = expect()
    served.heartbeat()
    sealed = served.sealed_incident()
    incident_id = sealed.opened.incident_id
    served.open_incident(summary="person 5 loitering by the door")
    case = served.api(
        "POST", "/api/v1/cases", LEGAL, json={"reference": "ASB-2025-015", "title": "Door"}
    ).json()
    added = served.api(
        "POST", f"/api/v1/cases/{case['case_id']}/incidents", LEGAL, json={"incident_id": str(incident_id)}
    )
    assert added.status_code == 201, added.text
    with page_on(chromium, served) as (page, _log):
        page.goto("/")
        check(page.get_by_role("form", name="Log in")).to_be_visible()
        screenshot(page, "login")
        log_in(page, "ada")
        pages = [
            ("alerts", "Alerts", "admin-alerts"),
            (f"incidents/{incident_id}", "Loitering on Car park", "incident"),
            ("cameras", "Cameras", "cameras"),
            ("search", "Search incidents", "search"),
            ("cases", "Cases", "cases"),
            (f"cases/{case['case_id']}", "Case ASB-2025-015", "case"),
            ("custody", "Custody log", "custody-log"),
            ("disclosures", "Disclosure log", "disclosures"),
            ("health", "System health", "health"),
            ("admin", "Users and API keys", "admin"),
        ]
        for route, heading, name in pages:
            show(page, route, heading)
            check(page.get_by_role("alert")).to_have_count(0)
            screenshot(page, name)
        # The clip player: one hash-checked fetch of the H.264 working copy, its reason in the custody log.
        show(page, f"incidents/{incident_id}", "Loitering on Car park")
        page.get_by_role("button", name="Play clip").click()
        video = page.get_by_role("region", name="Clip").locator("video")
        check(video).to_be_visible()
        check(video).to_have_js_property("readyState", 4)
        screenshot(page, "incident-clip")
        chain = served.api("GET", f"/api/v1/evidence/{sealed.evidence_id}/custody", LEGAL).json()
        served_clip = [e for e in chain["entries"] if e["action"] == "downloaded" and e["actor"] == "ada"]
        assert [e["reason"] for e in served_clip] == [f"admin review of incident {incident_id}"]
        cameras_page = page.get_by_role("list", name="Cameras")
        show(page, "cameras", "Cameras")
        check(cameras_page.get_by_role("listitem")).to_have_count(2)
        check(cameras_page.get_by_role("listitem").first).to_contain_text("online")

    with page_on(chromium, served) as (page, log):
        log_in(page, "omar")
        check(page.get_by_role("heading", name="System health", level=1)).to_be_visible()
        check(page.get_by_role("alert")).to_have_count(0)
        screenshot(page, "ops-health")
        show(page, "cameras", "Cameras")
        check(page.get_by_text("Pictures are not shown to your role").first).to_be_visible()
        screenshot(page, "ops-cameras")
        frames = [path for _m, path, _c in log.responses if path.endswith("/frame")]
        assert not frames, f"ops must not even ask for footage: {frames}"


def test_a_wrong_password_is_refused_and_logging_out_ends_the_session(
    chromium: Any, served: ServedApp
) -> None:
    check = expect()
    with page_on(chromium, served) as (page, log):
        page.goto("/app/#/cases")
        form = page.get_by_role("form", name="Log in")
        form.get_by_label("Username").fill("lena")
        form.get_by_label("Password").fill("not the password")
        form.get_by_role("button", name="Log in").click()
        check(form.get_by_role("alert")).to_contain_text("unknown username or wrong password")
        assert log.statuses("/api/v1/auth/login") == [401]
        form.get_by_label("Password").fill(PASSWORD)
        form.get_by_role("button", name="Log in").click()
        # Back where the user was going, then out again: the cookie no longer opens anything.
        check(page.get_by_role("heading", name="Cases", level=1)).to_be_visible()
        # The app's token refresh (run every few minutes) swaps the cookie for a new token.
        before = next(c["value"] for c in page.context.cookies() if c["name"] == "cctv_session")
        refreshed = page.evaluate(
            """async () => {
                const { api } = await import("/app/js/api.js");
                return (await api("/api/v1/auth/refresh", { method: "POST" })).user.name;
            }"""
        )
        after = next(c["value"] for c in page.context.cookies() if c["name"] == "cctv_session")
        assert refreshed == "lena" and after != before
        assert page.request.get(f"{served.base_url}/api/v1/auth/me").json()["name"] == "lena"
        page.get_by_role("button", name="Log out").click()
        check(page.get_by_role("form", name="Log in")).to_be_visible()
        assert page.request.get(f"{served.base_url}/api/v1/auth/me").status == 401
        page.goto("/app/#/cases")
        check(page.get_by_role("form", name="Log in")).to_be_visible()


def test_ops_edit_zones_with_validation_in_the_browser_and_the_api(chromium: Any, served: ServedApp) -> None:
    check = expect()
    served.heartbeat()
    with page_on(chromium, served) as (page, _log):
        log_in(page, "omar")
        show(page, "cameras", "Cameras")
        page.get_by_role("button", name="Edit zones of High St").click()
        editor = page.get_by_role("region", name="Zone editor")
        check(editor.get_by_label("Zone id")).to_have_value("door")
        editor.get_by_label("Zone name").fill("Front door")
        editor.get_by_label("Reason for the change").fill("door moved after the refit")

        # Checked in the browser first: a polygon needs 3 points inside the frame.
        polygon = editor.get_by_label(re.compile(r"^Zone polygon"))
        polygon.fill("0.1,0.1; 1.5,0.2")
        editor.get_by_role("button", name="Save settings").click()
        check(editor.get_by_role("alert")).to_contain_text("at least 3 points")
        polygon.fill("0.1,0.1; 0.9,0.1; 0.9,0.8; 0.1,0.8")

        # Then by the API: its verdict names the field.
        rules = editor.get_by_label("Zone rules (JSON)")
        rules.fill('{"loitering": {"dwell_s": -5}}')
        editor.get_by_role("button", name="Save settings").click()
        check(editor.get_by_role("alert")).to_contain_text("The API refused the change")
        check(editor.get_by_role("alert")).to_contain_text("dwell_s")
        screenshot(page, "ops-zone-editor")

        rules.fill('{"loitering": {"dwell_s": 45}}')
        editor.get_by_role("button", name="Save settings").click()
        check(editor).to_be_hidden()
        check(page.get_by_role("status")).to_contain_text("Settings of High St saved")

    saved = served.api("GET", "/api/v1/cameras/cam1/settings", OPS).json()
    assert saved["version"] == 1 and saved["created_by"] == "omar"
    assert saved["reason"] == "door moved after the refit"
    (zone,) = saved["settings"]["zones"]
    assert zone["name"] == "Front door" and zone["rules"]["loitering"]["dwell_s"] == 45
    assert zone["polygon"] == [[0.1, 0.1], [0.9, 0.1], [0.9, 0.8], [0.1, 0.8]]


def test_admin_manages_accounts_and_api_keys(chromium: Any, served: ServedApp) -> None:
    check = expect()
    with page_on(chromium, served) as (page, _log):
        log_in(page, "ada")
        show(page, "admin", "Users and API keys")
        page.get_by_role("button", name="New account").click()
        dialog = page.get_by_role("dialog", name="New account")
        dialog.get_by_label("Username").fill("ravi")
        dialog.get_by_label("Display name").fill("Ravi Night Shift")
        dialog.get_by_label("Role").select_option("operator")
        dialog.get_by_label("Initial password").fill("night shift password 1")
        dialog.get_by_label("Cameras (comma-separated; empty: all)").fill("cam1")
        dialog.get_by_role("button", name="Create").click()
        check(page.get_by_role("table", name="Accounts")).to_contain_text("Ravi Night Shift")

        page.get_by_role("button", name="New API key").click()
        dialog = page.get_by_role("dialog", name="New API key")
        dialog.get_by_label("Name (the service that uses it)").fill("grafana")
        dialog.get_by_role("button", name="Create").click()
        shown = page.get_by_role("dialog", name=re.compile("Key grafana created"))
        secret = shown.get_by_label("Secret").input_value()
        assert secret.startswith("cctv_k_")
        shown.get_by_role("button", name="Done").click()
        page.get_by_role("button", name="Revoke grafana").click()
        check(
            page.get_by_role("table", name="API keys").get_by_role("row", name=re.compile("grafana"))
        ).to_contain_text("revoked")
        screenshot(page, "admin-users-keys")

    users = {u["username"]: u for u in served.api("GET", "/api/v1/users", ADMIN).json()}
    assert users["ravi"]["role"] == "operator" and users["ravi"]["cameras"] == ["cam1"]
    assert (
        served.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )
    with page_on(chromium, served) as (page, _log):
        page.goto("/")
        page.get_by_label("Username").fill("ravi")
        page.get_by_label("Password").fill("night shift password 1")
        page.get_by_role("button", name="Log in").click()
        check(page.get_by_role("heading", name="Alerts", level=1)).to_be_visible()
        check(page.get_by_label("Camera")).to_contain_text("High St")
        check(page.get_by_label("Camera")).not_to_contain_text("Car park")
