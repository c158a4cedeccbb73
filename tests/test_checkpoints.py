"""Custody checkpoint writers and the links between checkpoints.

- Concurrent writers (two engines with their own sessions and store clients, standing in for two
  API replicas) writing at the same moment still form ONE linear chain of checkpoints in the real
  S3 store: on PostgreSQL the advisory lock serialises them, on SQLite the in-process lock.
- A fork written before writers were serialised (two checkpoints linking to the same previous
  one) verifies with a named ``checkpoint fork`` warning, not a problem and not a crash.
- :func:`link_findings` on synthetic checkpoints: linear, sibling fork, a link skipping the
  checkpoint before it, a link to nothing known, and an unsigned "fork" (a problem).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from api import custody
from api.checkpoints import (
    FORK,
    StoredCheckpoint,
    checkpoint_key,
    latest_keys,
    link_findings,
    published_keys,
    signature_key,
    verify_against_checkpoints,
    write_checkpoint,
)
from api.db import make_engine, make_sessions
from cctv.config import Settings
from cctv.contracts import ArtifactKind
from cctv.objectstore import make_client
from evidence_store.custody import canonical, checkpoint_document
from evidence_store.store import EvidenceStore, retain_until_for
from tests.api_support import OPERATOR, ApiUnderTest, api_under_test, isolated_database

ROUNDS = 6  # checkpoints per writer


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with isolated_database(request.param, tmp_path, request) as url:
        yield url


def _read(store: Minio, bucket: str, key: str) -> bytes:
    response = store.get_object(bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def _documents(api: ApiUnderTest) -> list[tuple[str, bytes]]:
    """Every checkpoint in the bucket, oldest first, as stored."""
    store, bucket = make_client(api.settings.s3), api.settings.s3.evidence_bucket
    return [(k, _read(store, bucket, k)) for k in reversed(latest_keys(store, bucket, 1000))]


@pytest.mark.service
def test_concurrent_writers_form_one_linear_chain_of_checkpoints(settings: Settings, db_url: str) -> None:
    with api_under_test(settings, db_url) as api:
        api.sealed()
        engines = [make_engine(api.settings.api.database_url) for _ in range(2)]  # two "replicas"
        start, errors = threading.Barrier(2), []

        def replica(n: int) -> None:
            sessions, store = make_sessions(engines[n]), make_client(api.settings.s3)
            try:
                start.wait(timeout=10)
                for _ in range(ROUNDS):
                    with sessions() as session:
                        write_checkpoint(session, store, api.settings, api.context.signer)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=replica, args=(n,)) for n in range(2)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        finally:
            for engine in engines:
                engine.dispose()
        assert not errors, errors

        stored = _documents(api)
        assert len(stored) == 2 * ROUNDS
        links = [json.loads(data)["previous_checkpoint_sha256"] for _, data in stored]
        assert links[0] is None
        assert links[1:] == [hashlib.sha256(data).hexdigest() for _, data in stored[:-1]]  # no fork
        with api.context.sessions() as session:
            result = verify_against_checkpoints(
                session,
                make_client(api.settings.s3),
                api.settings,
                published_keys(api.context.signer, api.settings),
            )
        assert result.ok and result.warnings == [], (result.problems, result.warnings)


@pytest.mark.service
def test_a_writer_with_a_slow_clock_still_writes_after_the_newest_checkpoint(
    settings: Settings, tmp_path: Path
) -> None:
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        api.sealed()
        store, signer = make_client(api.settings.s3), api.context.signer
        with api.context.sessions() as session:
            newest = write_checkpoint(session, store, api.settings, signer)
            behind = write_checkpoint(
                session, store, api.settings, signer, now=newest.at - timedelta(hours=1)
            )
        assert behind.at == newest.at + timedelta(microseconds=1) and behind.object_key > newest.object_key
        [(_, first), (_, second)] = _documents(api)
        assert json.loads(second)["previous_checkpoint_sha256"] == hashlib.sha256(first).hexdigest()


# --------------------------------------------------------------------------- a fork from before the fix


def _put_checkpoint(api: ApiUnderTest, previous_sha: str | None, at: datetime) -> str:
    """A signed, locked checkpoint linking to ``previous_sha``, as an unserialised writer wrote one."""
    with api.context.sessions() as session:
        heads = custody.heads(session)
    data = canonical(checkpoint_document(heads, at=at, previous_checkpoint_sha256=previous_sha))
    store, key = EvidenceStore(make_client(api.settings.s3), api.settings.s3), checkpoint_key(at)
    until = retain_until_for(at, 1)
    store.put_locked(
        ArtifactKind.CUSTODY_CHECKPOINT_SIGNATURE, signature_key(key), api.context.signer.sign(data), until
    )
    store.put_locked(ArtifactKind.CUSTODY_CHECKPOINT, key, data, until)
    return hashlib.sha256(data).hexdigest()


@pytest.mark.service
def test_a_fork_from_before_writers_were_serialised_is_a_named_warning(
    settings: Settings, tmp_path: Path
) -> None:
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        api.sealed()
        store = make_client(api.settings.s3)
        with api.context.sessions() as session:
            base = write_checkpoint(session, store, api.settings, api.context.signer)
        at = datetime.now(UTC)
        # Two racing writers both read `base` as the newest; a third then read only the first of them.
        first = _put_checkpoint(api, base.sha256, at + timedelta(milliseconds=1))
        _put_checkpoint(api, base.sha256, at + timedelta(milliseconds=2))
        _put_checkpoint(api, first, at + timedelta(milliseconds=3))
        with api.context.sessions() as session:
            write_checkpoint(session, store, api.settings, api.context.signer)  # links to the newest

        # The newest three (the two newest writes and the second sibling) do not explain the skip:
        # the verification reads older checkpoints to find where it links.
        verified = api.client.get("/api/v1/custody/verify", headers=OPERATOR).json()
        assert verified["ok"] is True, verified["problems"]
        forks = [w for w in verified["warnings"] if w.startswith(f"{FORK}:")]
        assert len(forks) == 1 and "two writers wrote checkpoints at once" in forks[0]
        assert checkpoint_key(at + timedelta(milliseconds=1)) in forks[0]  # where the skipping link goes
        assert all(not c["problems"] for c in verified["checkpoints"])


# --------------------------------------------------------------------------- link_findings, pure


def _checkpoint(name: str, previous: str | None, signed: bool = True) -> StoredCheckpoint:
    document: dict[str, Any] = {"previous_checkpoint_sha256": previous, "items": {}}
    return StoredCheckpoint(name, None, f"sha-{name}", document, signed, "k" if signed else None)


def test_a_linear_chain_has_no_findings() -> None:
    a, b, c = _checkpoint("a", None), _checkpoint("b", "sha-a"), _checkpoint("c", "sha-b")
    findings = link_findings([c, b, a])
    assert findings.broken == {} and findings.forks == []


def test_siblings_linking_to_the_same_checkpoint_are_a_fork() -> None:
    a = _checkpoint("a", None)
    b1, b2 = _checkpoint("b1", "sha-a"), _checkpoint("b2", "sha-a")
    findings = link_findings([_checkpoint("c", "sha-b2"), b2, b1, a])
    assert findings.broken == {}
    [fork] = findings.forks
    assert fork.startswith(f"{FORK}: b2 links to a as b1 does")


def test_a_link_skipping_the_checkpoint_before_is_a_fork_only_with_its_target_known() -> None:
    a, b1, b2 = _checkpoint("a", None), _checkpoint("b1", "sha-a"), _checkpoint("b2", "sha-a")
    c = _checkpoint("c", "sha-b1")
    window = [_checkpoint("d", "sha-c"), c, b2]
    assert link_findings(window).broken == {"c": "c: does not link to the checkpoint before it (b2)"}
    explained = link_findings(window, [b1, a])
    assert explained.broken == {} and explained.forks[0].startswith(f"{FORK}: c links to b1, not to b2")


def test_a_link_to_nothing_known_or_an_unsigned_fork_is_a_problem() -> None:
    a, b = _checkpoint("a", None), _checkpoint("b", "sha-a")
    assert link_findings([_checkpoint("c", "sha-elsewhere"), b, a]).broken == {
        "c": "c: does not link to the checkpoint before it (b)"
    }
    forged = _checkpoint("b2", "sha-a", signed=False)
    assert link_findings([forged, b, a]).broken == {"b2": "b2: does not link to the checkpoint before it (b)"}
