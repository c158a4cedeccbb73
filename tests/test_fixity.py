"""The fixity job against the real S3 store: untouched evidence is recorded ok, a changed or lost
version is recorded, alerted and makes ``cctv fixity`` exit 1.

How a mismatch is produced: a WORM bucket will not let anyone change the bytes of a
locked version, so the test does what a corrupted or tampered record amounts to: it
writes a NEW version with different bytes over the working copy's key and points
the database row's ``version_id`` at it (the sealed SHA-256 and size stay). The
fixity job then really reads different bytes from the store for the recorded
version. A version id that the store never issued stands for a lost version.
"""

from __future__ import annotations

import io
import logging
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from api.checkpoints import published_keys
from api.fixity import run_fixity
from api.metrics import ApiMetrics
from api.models import EvidenceArtifactRow
from cctv import cli
from cctv.config import Settings
from cctv.objectstore import make_client
from tests.api_support import LEGAL, ApiUnderTest, api_under_test, custody_chain

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
