"""The fixity job against the real S3 store: untouched evidence, export bundles, redactions and
custody checkpoints are recorded ok; a changed or lost version is recorded, alerted and makes
``cctv fixity`` exit 1; an unreachable store is an error that writes nothing.

How a mismatch is produced: a WORM bucket will not let anyone change the bytes of a
locked version, so the test does what a corrupted or tampered record amounts to: it
writes a NEW version with different bytes over the working copy's key and points
the database row's ``version_id`` at it (the sealed SHA-256 and size stay). The
fixity job then really reads different bytes from the store for the recorded
version. A version id that the store never issued stands for a lost version. Export bundles,
redaction videos and checkpoint documents are tampered with the same way; a checkpoint's
signature is replaced by a valid signature of other bytes (it then verifies with no key).
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import urllib3
from minio import Minio

from api.checkpoints import published_keys
from api.fixity import run_fixity
from api.metrics import ApiMetrics
from api.models import CustodyCheckpointRow, EvidenceArtifactRow, ExportRow, RedactionRow
from cctv import cli
from cctv.config import Settings
from cctv.objectstore import make_client
from tests.api_support import LEGAL, ApiUnderTest, api_under_test, custody_chain, free_port, seal_sim

pytestmark = pytest.mark.service


def _point_at(api: ApiUnderTest, evidence_id: uuid.UUID, kind: str, version_id: str) -> None:
    with api.context.engine.begin() as conn:
        conn.execute(
            sqlalchemy.update(EvidenceArtifactRow)
            .where(EvidenceArtifactRow.evidence_id == evidence_id, EvidenceArtifactRow.kind == kind)
            .values(version_id=version_id)
        )


def _cli_environment(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    env = {
        "CCTV_DATA_DIR": str(settings.data_dir),
        "CCTV_API__DATABASE_URL": settings.api.database_url,
        "CCTV_S3__ENDPOINT": settings.s3.endpoint,
        "CCTV_S3__ACCESS_KEY": settings.s3.access_key,
        "CCTV_S3__SECRET_KEY": settings.s3.secret_key.get_secret_value(),
        "CCTV_S3__EVIDENCE_BUCKET": settings.s3.evidence_bucket,
        "CCTV_EVIDENCE__SIGNING_KEY_PATH": str(settings.evidence.signing_key_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_fixity_records_ok_then_alerts_on_mismatch_and_missing(
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        settings, context = api.settings, api.context
        changed, lost = api.sealed(), api.sealed()
        assert api.client.post("/api/v1/custody/checkpoints", headers=LEGAL).status_code == 201
        keys = published_keys(context.signer, settings)
        store = make_client(settings.s3)

        clean = run_fixity(context.sessions, store, settings, keys, ApiMetrics())
        assert clean.ok and [i.result for i in clean.items] == ["ok", "ok"]
        for sealed in (changed, lost):
            entry = custody_chain(api.client, sealed.message.evidence_id)[-1]
            assert (entry.action, entry.actor, entry.role) == ("fixity_checked", "fixity-job", "system")
            assert entry.details["result"] == "ok" and len(entry.details["artifacts"]) == 3
            assert all(a["actual_sha256"] == a["expected_sha256"] for a in entry.details["artifacts"])

        clip = next(a for a in changed.message.artifacts if a.kind.value == "working_copy")
        other = b"\x00\x00\x00\x18ftypmp42 a different video"
        put = store.put_object(settings.s3.evidence_bucket, clip.key, io.BytesIO(other), len(other))
        _point_at(api, changed.message.evidence_id, "working_copy", put.version_id or "")
        _point_at(api, lost.message.evidence_id, "master", "3f0c0000000000000000000000000000")

        metrics = ApiMetrics()
        with caplog.at_level(logging.ERROR, logger="api.fixity"):
            report = run_fixity(context.sessions, store, settings, keys, metrics)
        assert not report.ok
        assert {str(i.evidence_id): i.result for i in report.items} == {
            str(changed.message.evidence_id): "mismatch",
            str(lost.message.evidence_id): "missing",
        }
        alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FIXITY ALERT")]
        assert any(str(changed.message.evidence_id) in a and "working_copy" in a for a in alerts)
        assert any(str(lost.message.evidence_id) in a and "missing" in a for a in alerts)
        assert metrics.fixity_mismatches.labels(kind="working_copy")._value.get() == 1
        assert metrics.fixity_mismatches.labels(kind="master")._value.get() == 1
        recorded = custody_chain(api.client, changed.message.evidence_id)[-1]
        [wc] = [a for a in recorded.details["artifacts"] if a["kind"] == "working_copy"]
        assert recorded.details["result"] == "mismatch" and wc["result"] == "mismatch"
        assert wc["expected_sha256"] == clip.sha256 and wc["actual_size"] == len(other)
        assert report.custody is not None and report.custody.ok  # the log itself is intact

        _cli_environment(monkeypatch, settings)
        capsys.readouterr()
        exit_code = cli.main(["fixity", "--evidence-id", str(changed.message.evidence_id)])
        out = capsys.readouterr().out
        assert exit_code == 1, out
        assert f"evidence {changed.message.evidence_id}  MISMATCH" in out
        assert "working_copy mismatch, master ok" in out or "master ok, working_copy mismatch" in out
        assert "custody log:" in out and "-> ALERT" in out
        assert str(lost.message.evidence_id) not in out  # only the item asked for
        assert [e.action for e in custody_chain(api.client, changed.message.evidence_id)][-2:] == [
            "fixity_checked",
            "fixity_checked",
        ]


def test_fixity_cli_exits_zero_when_everything_is_intact(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        sealed = api.sealed()
        _cli_environment(monkeypatch, api.settings)
        capsys.readouterr()
        assert cli.main(["fixity"]) == 0
        out = capsys.readouterr().out
        assert f"evidence {sealed.message.evidence_id}  OK" in out and "-> OK" in out
        assert "no checkpoint in the bucket yet" in out  # warned, not failed


# --------------------------------------------------------------------------- exports, redactions, checkpoints

WHY = "disclosure to the council's solicitors for the injunction hearing"


@dataclass(frozen=True)
class Disclosed:
    """A real sealed sim item with a finished redaction, a stored export bundle and checkpoints."""

    evidence_id: uuid.UUID
    redaction: dict[str, Any]
    export: dict[str, Any]


def _disclosed(api: ApiUnderTest) -> Disclosed:
    client = api.client
    item = seal_sim(api, count=4)
    box = {"frame_from": 0, "frame_to": 3, "x1": 100, "y1": 80, "x2": 200, "y2": 300}
    made = client.post(
        f"/api/v1/evidence/{item.evidence_id}/redactions",
        json={"request": {"mode": "boxes", "boxes": [box]}, "reason": WHY},
        headers=LEGAL,
    )
    assert made.status_code == 202, made.text
    url = f"/api/v1/evidence/{item.evidence_id}/redactions/{made.json()['redaction_id']}"
    deadline = time.monotonic() + 60
    while (redaction := client.get(url, headers=LEGAL).json())["status"] == "pending":
        assert time.monotonic() < deadline, "redaction still pending after 60s"
        time.sleep(0.2)
    assert redaction["status"] == "done", redaction["error"]
    export = client.post(
        "/api/v1/exports", json={"evidence_ids": [str(item.evidence_id)], "reason": WHY}, headers=LEGAL
    )
    assert export.status_code == 201, export.text
    assert client.post("/api/v1/custody/checkpoints", headers=LEGAL).status_code == 201
    return Disclosed(item.evidence_id, redaction, export.json())


def _put_over(api: ApiUnderTest, key: str, data: bytes) -> str:
    """A new version over ``key`` (the locked original stays); its version id."""
    store = make_client(api.settings.s3)
    put = store.put_object(api.settings.s3.evidence_bucket, key, io.BytesIO(data), len(data))
    assert put.version_id
    return put.version_id


def _update(api: ApiUnderTest, statement: Any) -> None:
    with api.context.engine.begin() as conn:
        conn.execute(statement)


def _fixity_entries(api: ApiUnderTest, evidence_id: uuid.UUID, target: str) -> list[Any]:
    return [
        e
        for e in custody_chain(api.client, evidence_id)
        if e.action.value == "fixity_checked" and e.details.get("object") == target
    ]


def test_fixity_covers_export_bundles_redactions_and_checkpoints(
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        settings, context = api.settings, api.context
        disclosed = _disclosed(api)
        export_id, redaction_id = disclosed.export["export_id"], disclosed.redaction["redaction_id"]
        keys = published_keys(context.signer, settings)
        store = make_client(settings.s3)

        clean = run_fixity(context.sessions, store, settings, keys, ApiMetrics())
        assert clean.ok, clean.render()
        assert {(d.target, str(d.target_id), d.result) for d in clean.derived} == {
            ("export", export_id, "ok"),
            ("redaction", redaction_id, "ok"),
        }
        assert len(clean.checkpoints) >= 2 and all(
            c.result == "ok" and c.signature_ok for c in clean.checkpoints
        )
        [bundle_entry] = _fixity_entries(api, disclosed.evidence_id, "export")
        assert bundle_entry.details["export_id"] == export_id and bundle_entry.details["result"] == "ok"
        assert (bundle_entry.object_key, bundle_entry.object_version, bundle_entry.object_sha256) == (
            disclosed.export["key"],
            disclosed.export["version_id"],
            disclosed.export["sha256"],
        )
        [redaction_entry] = _fixity_entries(api, disclosed.evidence_id, "redaction")
        assert redaction_entry.details["redaction_id"] == redaction_id
        assert [o["kind"] for o in redaction_entry.details["objects"]] == [
            "redacted_copy",
            "redaction_record",
            "redaction_signature",
        ]
        assert all(o["result"] == "ok" for o in redaction_entry.details["objects"])
        assert redaction_entry.object_key == disclosed.redaction["record"]["key"]

        # Tamper one object of each kind: a new version over the key, the database pointed at it.
        other = b"PK\x03\x04 not the bundle that was exported"
        _update(
            api,
            sqlalchemy.update(ExportRow)
            .where(ExportRow.export_id == uuid.UUID(export_id))
            .values(version_id=_put_over(api, disclosed.export["key"], other)),
        )
        video_key = disclosed.redaction["video"]["key"]
        _update(
            api,
            sqlalchemy.update(RedactionRow)
            .where(RedactionRow.redaction_id == uuid.UUID(redaction_id))
            .values(video_version=_put_over(api, video_key, b"\x00\x00\x00\x18ftypmp42 other")),
        )
        with context.sessions() as session:
            first, second = session.scalars(
                sqlalchemy.select(CustodyCheckpointRow).order_by(CustodyCheckpointRow.at).limit(2)
            ).all()
        _update(
            api,
            sqlalchemy.update(CustodyCheckpointRow)
            .where(CustodyCheckpointRow.id == first.id)
            .values(version_id=_put_over(api, first.object_key, b'{"items":{}}')),
        )
        forged = context.signer.sign(b'{"items":{}}')  # a real signature, of other bytes
        _update(
            api,
            sqlalchemy.update(CustodyCheckpointRow)
            .where(CustodyCheckpointRow.id == second.id)
            .values(signature_version_id=_put_over(api, second.signature_key, forged)),
        )

        metrics = ApiMetrics()
        with caplog.at_level(logging.ERROR, logger="api.fixity"):
            report = run_fixity(context.sessions, store, settings, keys, metrics)
        assert not report.ok
        assert [i.result for i in report.items] == ["ok"]  # the sealed artifacts are untouched
        assert {d.target: d.result for d in report.derived} == {"export": "mismatch", "redaction": "mismatch"}
        by_key = {c.key: c for c in report.checkpoints}
        assert by_key[first.object_key].result == "mismatch"
        assert (
            by_key[second.object_key].result == "mismatch" and by_key[second.object_key].signature_ok is False
        )
        assert all(
            c.result == "ok" for k, c in by_key.items() if k not in (first.object_key, second.object_key)
        )

        # The custody verification reads the bucket's FIRST versions: both overwrites are named there.
        assert report.custody is not None and sorted(report.custody.problems) == [
            f"{first.object_key}: 2 versions stored (written over after sealing)",
            f"{second.object_key}: signature 2 versions stored (written over after sealing)",
        ]
        alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("FIXITY ALERT")]
        assert any(f"export {export_id}" in a and "export_bundle" in a for a in alerts), alerts
        assert any(f"redaction {redaction_id}" in a and video_key in a for a in alerts), alerts
        assert any(f"checkpoint {first.object_key}" in a and "mismatch" in a for a in alerts), alerts
        assert any(
            f"checkpoint {second.object_key}" in a and "signature does not verify" in a for a in alerts
        )
        for kind in ("export_bundle", "redacted_copy", "custody_checkpoint"):
            assert metrics.fixity_mismatches.labels(kind=kind)._value.get() == 1, kind
        # The changed document no longer verifies either: its signature is over the original bytes.
        assert by_key[first.object_key].signature_ok is False
        assert metrics.fixity_mismatches.labels(kind="custody_checkpoint_signature")._value.get() == 2
        assert metrics.fixity_checks.labels(target="export", result="mismatch")._value.get() == 1
        assert metrics.fixity_checks.labels(target="checkpoint", result="mismatch")._value.get() == 2

        bundle_entry = _fixity_entries(api, disclosed.evidence_id, "export")[-1]
        [bundle] = bundle_entry.details["objects"]
        assert bundle_entry.details["result"] == "mismatch" and bundle_entry.details["export_id"] == export_id
        assert bundle["expected_sha256"] == disclosed.export["sha256"] and bundle["actual_size"] == len(other)
        redaction_entry = _fixity_entries(api, disclosed.evidence_id, "redaction")[-1]
        assert redaction_entry.details["result"] == "mismatch"
        assert [o["result"] for o in redaction_entry.details["objects"]] == ["mismatch", "ok", "ok"]

        _cli_environment(monkeypatch, settings)
        capsys.readouterr()
        assert cli.main(["fixity"]) == 1
        out = capsys.readouterr().out
        assert f"export {export_id}  MISMATCH  export_bundle mismatch" in out
        assert f"redaction {redaction_id}  MISMATCH  redacted_copy mismatch" in out
        assert f"checkpoint {first.object_key}  MISMATCH" in out
        assert f"checkpoint {second.object_key}  MISMATCH" in out and "signature does not verify" in out
        assert "1 export bundle(s): 0 ok, 1 mismatch" in out and out.rstrip().endswith("-> ALERT")


def _unreachable_store(settings: Settings) -> Minio:
    """A client of a port nothing listens on (no retries: the outage is reported at once)."""
    port = free_port()
    return Minio(
        f"127.0.0.1:{port}",
        access_key=settings.s3.access_key,
        secret_key=settings.s3.secret_key.get_secret_value(),
        secure=False,
        http_client=urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2, read=2)),
    )


def test_an_unreachable_store_is_an_error_and_writes_nothing(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with api_under_test(settings, f"sqlite:///{tmp_path / 'cctv.db'}") as api:
        disclosed = _disclosed(api)
        before = custody_chain(api.client, disclosed.evidence_id)
        keys = published_keys(api.context.signer, api.settings)
        metrics = ApiMetrics()
        with caplog.at_level(logging.ERROR, logger="api.fixity"):
            report = run_fixity(
                api.context.sessions, _unreachable_store(api.settings), api.settings, keys, metrics
            )
        assert not report.ok and report.custody is None and report.custody_error
        assert [i.result for i in report.items] == ["error"]
        assert sorted(d.target for d in report.derived if d.result == "error") == ["export", "redaction"]
        assert report.checkpoints and all(c.result == "error" for c in report.checkpoints)
        assert custody_chain(api.client, disclosed.evidence_id) == before  # nothing recorded
        messages = [r.getMessage() for r in caplog.records]
        assert not any(m.startswith("FIXITY ALERT") for m in messages)
        assert any(m.startswith(f"FIXITY ERROR export {disclosed.export['export_id']}") for m in messages)
        assert metrics.fixity_checks.labels(target="redaction", result="error")._value.get() == 1
        assert "1 redaction(s): 0 ok, 0 mismatch, 0 missing, 1 error" in report.render()
