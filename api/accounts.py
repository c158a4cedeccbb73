"""`cctv users ...`: accounts from the command line, chiefly the first admin on a fresh install.

Runs against ``settings.api.database_url`` directly (migrating it to head
first), so it works before any API instance is up and needs no credentials:
whoever can run it already holds the database's credentials. Each change is in
the auth log with the actor ``cli:<os user>``.
"""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime

from sqlalchemy import select

from api import auth
from api.db import make_engine, make_sessions, run_migrations
from api.models import UserRow
from cctv.config import Settings
from evidence_store.custody import ActorRole


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


def read_password(from_stdin: bool, prompt: str = "Password: ") -> str:
    """From stdin (one line, for scripts and Kubernetes Jobs) or asked twice at a terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(prompt)
    if getpass.getpass("Again: ") != first:
        raise auth.AuthError("the two passwords differ")
    return first


def run(settings: Settings, action: str, name: str, **options: object) -> str:
    """Do ``action`` (add, passwd, unlock, disable, key) for ``name``; returns what to print."""
    engine = make_engine(settings.api.database_url)
    try:
        run_migrations(engine)
        with make_sessions(engine).begin() as session:
            now, actor = datetime.now(UTC), _actor()
            if action == "key":
                cameras = options.get("cameras")
                row, issued = auth.create_api_key(
                    session,
                    name=name,
                    role=ActorRole(str(options["role"])),
                    cameras=list(cameras) if isinstance(cameras, list | tuple) else None,
                    created_by=actor,
                    now=now,
                    secret=str(options["secret"]) if options.get("secret") else None,
                )
                return f"API key {row.name!r} ({row.role}): {issued.token}\nIt is shown only this once."
            if action == "add":
                cameras = options.get("cameras")
                user = auth.create_user(
                    session,
                    settings.api.auth,
                    username=name,
                    display_name=str(options.get("display_name") or ""),
                    role=ActorRole(str(options["role"])),
                    password=str(options["password"]),
                    cameras=list(cameras) if isinstance(cameras, list | tuple) else None,
                    created_by=actor,
                    now=now,
                )
                return f"user {user.username!r} created with role {user.role}"
            user_row = session.scalar(select(UserRow).where(UserRow.username == name.strip().lower()))
            if user_row is None:
                raise auth.AuthError(f"no user {name!r}")
            if action == "passwd":
                auth.set_password(
                    session, settings.api.auth, user_row, str(options["password"]), actor=actor, now=now
                )
                return f"password of {user_row.username!r} changed; their sessions ended"
            if action == "unlock":
                user_row.locked_until, user_row.failed_logins = None, 0
                auth.record(
                    session, "user_updated", now, username=user_row.username, actor=actor, detail="unlocked"
                )
                return f"{user_row.username!r} unlocked"
            raise auth.AuthError(f"unknown action {action!r}")
    finally:
        engine.dispose()
