"""The demo's accounts: one person per role and a console API key, made once per data directory.

Passwords and the key are random, kept in ``<data_dir>/demo-credentials.json``
(mode 0600) so a rerun of the demo reuses them, and printed in the banner: this
is a local demonstration, not a deployment (production creates its first admin
with ``cctv users add``).
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from api import auth
from api.db import make_engine, make_sessions, run_migrations
from api.models import ApiKeyRow, UserRow
from cctv.config import Settings
from evidence_store.custody import ActorRole

DEMO_PEOPLE = {
    "operator": ("Control Room Operator", ActorRole.OPERATOR),
    "legal": ("Council Solicitor", ActorRole.LEGAL),
    "ops": ("Platform Engineer", ActorRole.OPS),
    "admin": ("Demo Administrator", ActorRole.ADMIN),
}
CONSOLE_KEY = "demo-console"
CREDENTIALS_FILE = "demo-credentials.json"


def ensure_demo_accounts(settings: Settings, database_url: str) -> dict[str, str]:
    """Usernames -> passwords, plus ``"api_key"``; created in the database if missing."""
    path = settings.data_dir / CREDENTIALS_FILE
    saved: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    engine = make_engine(database_url)
    try:
        run_migrations(engine)
        with make_sessions(engine).begin() as session:
            now = datetime.now(UTC)
            for username, (display, role) in DEMO_PEOPLE.items():
                password = saved.get(username) or secrets.token_urlsafe(12)
                user = session.scalar(select(UserRow).where(UserRow.username == username))
                if user is None:
                    auth.create_user(
                        session,
                        settings.api.auth,
                        username=username,
                        display_name=display,
                        role=role,
                        password=password,
                        cameras=None,
                        created_by="cctv demo",
                        now=now,
                    )
                elif username not in saved:  # the file was lost: a fresh password
                    auth.set_password(session, settings.api.auth, user, password, actor="cctv demo", now=now)
                saved[username] = password
            key = session.scalar(select(ApiKeyRow).where(ApiKeyRow.name == CONSOLE_KEY))
            if key is None or "api_key" not in saved:
                if key is not None:
                    key.revoked_at = now
                    key.name = f"{CONSOLE_KEY}-revoked-{key.key_id.hex[:8]}"
                    session.flush()
                _row, issued = auth.create_api_key(
                    session,
                    name=CONSOLE_KEY,
                    role=ActorRole.LEGAL,
                    cameras=None,
                    created_by="cctv demo",
                    now=now,
                )
                saved["api_key"] = issued.token
    finally:
        engine.dispose()
    _write_private(path, json.dumps(saved, indent=2))
    return saved


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
