"""Object Lock conformance in COMPLIANCE mode against the real S3 store (SeaweedFS here, MinIO in production).

These tests are the proof behind "nothing stored as evidence can be altered or
deleted before its time": each one drives the store through the plain S3 API
(``minio`` client) on a bucket made by ``cctv.objectstore.ensure_evidence_bucket``
and checks what the store actually kept. Locks that must expire use explicit
retention of a few seconds and the tests poll, so the whole file stays quick.

Also here: ``evidence_store.retention`` (extend retention, legal holds) against
the same store, including refusal to shorten and part-way failures.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.retention import Retention
from minio.versioningconfig import SUSPENDED, VersioningConfig

from cctv.config import Settings
from cctv.contracts import sha256_hex
from cctv.objectstore import ensure_evidence_bucket, make_client
from evidence_store.retention import (
    LockStatus,
    ObjectVersion,
    RetentionError,
    extend_retention,
    lock_status,
    set_legal_hold,
)
from evidence_store.store import retain_until_for

pytestmark = pytest.mark.service

SHORT_LOCK_S = 3  # retention of objects that must expire during a test
EXPIRY_GRACE_S = 5.0  # how long past retain_until the store may still refuse (it keeps whole seconds)


@pytest.fixture
def client(settings: Settings) -> Minio:
    return make_client(settings.s3)


@pytest.fixture
def bucket(client: Minio, settings: Settings) -> str:
    """The test's own evidence bucket: Object Lock, versioning, COMPLIANCE default retention of 1 day."""
    ensure_evidence_bucket(client, settings.s3)
    return settings.s3.evidence_bucket


def put(
    client: Minio, bucket: str, key: str, data: bytes, retention: Retention | None = None
) -> ObjectVersion:
    result = client.put_object(bucket, key, io.BytesIO(data), len(data), retention=retention)
    assert result.version_id, "the store returned no version id: versioning is off"
    return ObjectVersion(key, result.version_id)


def read(client: Minio, bucket: str, version: ObjectVersion) -> bytes:
    response = client.get_object(bucket, version.key, version_id=version.version_id)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def new_key() -> str:
    return f"evidence/{uuid.uuid4().hex}.bin"


def short_lock() -> tuple[Retention, datetime]:
    """COMPLIANCE retention ending a few whole seconds from now."""
    until = retain_until_for(datetime.now(UTC) + timedelta(seconds=SHORT_LOCK_S), 0)
    return Retention(COMPLIANCE, until), until


def refusal_code(action: Callable[[], object]) -> str:
    with pytest.raises(S3Error) as refused:
        action()
    return str(refused.value.code)


def bypass_delete_errors(client: Minio, bucket: str, version: ObjectVersion) -> list[str]:
    """Multi-object delete with x-amz-bypass-governance-retention; the result is lazy, so drain it."""
    deletion = client.remove_objects(
        bucket, [DeleteObject(version.key, version.version_id)], bypass_governance_mode=True
    )
    return [str(error.code) for error in deletion]


def delete_once_expired(client: Minio, bucket: str, version: ObjectVersion, until: datetime) -> float:
    """Wait for ``until``, then delete the version, retrying briefly; returns the seconds past ``until``."""
    while datetime.now(UTC) <= until:
        time.sleep(0.1)
    deadline = time.monotonic() + EXPIRY_GRACE_S
    while True:
        try:
            client.remove_object(bucket, version.key, version_id=version.version_id)
            return (datetime.now(UTC) - until).total_seconds()
        except S3Error as exc:
            if exc.code != "AccessDenied" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def assert_gone(client: Minio, bucket: str, version: ObjectVersion) -> None:
    code = refusal_code(lambda: read(client, bucket, version))
    assert code in {"NoSuchVersion", "NoSuchKey"}
    listed = {o.version_id for o in client.list_objects(bucket, prefix=version.key, include_version=True)}
    assert version.version_id not in listed


# --------------------------------------------------------------------------- the bucket itself


def test_new_versions_get_the_bucket_default_compliance_retention(client: Minio, bucket: str) -> None:
    before = datetime.now(UTC)
    version = put(client, bucket, new_key(), b"default lock")
    status = lock_status(client, bucket, version)
    assert status.mode == COMPLIANCE and status.legal_hold is False
    assert status.retain_until is not None
    # The fixture's retention_days=1; the store computes the date itself and keeps whole seconds.
    assert before + timedelta(days=1) - timedelta(seconds=2) <= status.retain_until
    assert status.retain_until <= datetime.now(UTC) + timedelta(days=1, seconds=2)


def test_versioning_cannot_be_suspended_on_the_lock_bucket(client: Minio, bucket: str) -> None:
    # Suspended versioning would let a PUT replace the "null" version in place; Object Lock forbids it.
    assert refusal_code(lambda: client.set_bucket_versioning(bucket, VersioningConfig(SUSPENDED))) == (
        "InvalidBucketState"
    )
    assert client.get_bucket_versioning(bucket).status == "Enabled"


# --------------------------------------------------------------------------- deleting


def test_deleting_a_locked_version_is_refused(client: Minio, bucket: str) -> None:
    data = b"locked master bytes"
    version = put(client, bucket, new_key(), data)
    assert refusal_code(lambda: client.remove_object(bucket, version.key, version_id=version.version_id)) == (
        "AccessDenied"
    )
    errors = list(client.remove_objects(bucket, [DeleteObject(version.key, version.version_id)]))
    assert [e.code for e in errors] == ["AccessDenied"]
    assert read(client, bucket, version) == data


def test_deleting_a_locked_version_with_governance_bypass_is_refused(client: Minio, bucket: str) -> None:
    data = b"locked even against the bypass header"
    version = put(client, bucket, new_key(), data)
    assert bypass_delete_errors(client, bucket, version) == ["AccessDenied"]
    assert read(client, bucket, version) == data


def test_deleting_without_a_version_id_only_adds_a_delete_marker(client: Minio, bucket: str) -> None:
    data = b"still here after a plain DELETE"
    version = put(client, bucket, new_key(), data)
    client.remove_object(bucket, version.key)  # allowed by S3: it hides the key, it removes nothing
    listed = list(client.list_objects(bucket, prefix=version.key, include_version=True))
    markers = [o for o in listed if o.is_delete_marker]
    assert len(markers) == 1 and markers[0].is_latest
    assert [o.version_id for o in listed if not o.is_delete_marker] == [version.version_id]
    assert refusal_code(lambda: client.stat_object(bucket, version.key)) in {"NoSuchKey", "MethodNotAllowed"}
    assert read(client, bucket, version) == data
    assert lock_status(client, bucket, version).mode == COMPLIANCE


def test_deletion_works_only_after_expiry(client: Minio, bucket: str) -> None:
    retention, until = short_lock()
    version = put(client, bucket, new_key(), b"expires in seconds", retention)
    assert lock_status(client, bucket, version) == LockStatus(COMPLIANCE, until, legal_hold=False)
    assert refusal_code(lambda: client.remove_object(bucket, version.key, version_id=version.version_id)) == (
        "AccessDenied"
    )
    late_by = delete_once_expired(client, bucket, version, until)
    assert late_by < EXPIRY_GRACE_S
    assert_gone(client, bucket, version)


def test_legal_hold_blocks_deletion_after_retention_ends(client: Minio, bucket: str) -> None:
    retention, until = short_lock()
    held = put(client, bucket, new_key(), b"held for the case", retention)
    control = put(client, bucket, new_key(), b"same lock, no hold", retention)
    set_legal_hold(client, bucket, [held], on=True)

    # The control version's deletion succeeding proves the store considers the retention over.
    delete_once_expired(client, bucket, control, until)
    assert_gone(client, bucket, control)
    status = lock_status(client, bucket, held)
    assert status.legal_hold is True and status.retain_until is not None
    assert status.retain_until < datetime.now(UTC)
    assert refusal_code(lambda: client.remove_object(bucket, held.key, version_id=held.version_id)) == (
        "AccessDenied"
    )
    assert bypass_delete_errors(client, bucket, held) == ["AccessDenied"]
    assert read(client, bucket, held) == b"held for the case"

    set_legal_hold(client, bucket, [held], on=False)
    client.remove_object(bucket, held.key, version_id=held.version_id)
    assert_gone(client, bucket, held)


# --------------------------------------------------------------------------- overwriting


def test_overwrite_creates_a_new_version_and_keeps_the_original(client: Minio, bucket: str) -> None:
    key = new_key()
    original_bytes = b"the original recording"
    original = put(client, bucket, key, original_bytes)
    replacement = put(client, bucket, key, b"a forged replacement of the same length")
    assert replacement.version_id != original.version_id
    assert read(client, bucket, original) == original_bytes
    assert sha256_hex(read(client, bucket, original)) == sha256_hex(original_bytes)
    listed = {o.version_id for o in client.list_objects(bucket, prefix=key, include_version=True)}
    assert listed == {original.version_id, replacement.version_id}
    assert lock_status(client, bucket, original).mode == COMPLIANCE


# --------------------------------------------------------------------------- retention changes, store level


def test_store_refuses_to_shorten_retention(client: Minio, bucket: str) -> None:
    version = put(client, bucket, new_key(), b"cannot be unlocked early")
    before = lock_status(client, bucket, version)
    assert before.retain_until is not None
    earlier = Retention(COMPLIANCE, before.retain_until - timedelta(hours=1))
    code = refusal_code(
        lambda: client.set_object_retention(bucket, version.key, earlier, version_id=version.version_id)
    )
    assert code == "AccessDenied"
    assert lock_status(client, bucket, version) == before


def test_store_extends_retention(client: Minio, bucket: str) -> None:
    version = put(client, bucket, new_key(), b"kept longer")
    before = lock_status(client, bucket, version)
    assert before.retain_until is not None
    later = before.retain_until + timedelta(days=30)
    client.set_object_retention(
        bucket, version.key, Retention(COMPLIANCE, later), version_id=version.version_id
    )
    assert lock_status(client, bucket, version) == LockStatus(COMPLIANCE, later, legal_hold=False)


def test_store_refuses_switching_compliance_to_governance(client: Minio, bucket: str) -> None:
    version = put(client, bucket, new_key(), b"compliance for good")
    before = lock_status(client, bucket, version)
    assert before.retain_until is not None
    same_date, later = before.retain_until, before.retain_until + timedelta(days=1)

    def switch(until: datetime) -> None:
        governance = Retention(GOVERNANCE, until)
        client.set_object_retention(bucket, version.key, governance, version_id=version.version_id)

    codes = [refusal_code(lambda: switch(same_date)), refusal_code(lambda: switch(later))]
    assert codes == ["AccessDenied", "AccessDenied"]
    assert lock_status(client, bucket, version) == before


# --------------------------------------------------------------------------- evidence_store.retention


def test_extend_retention_extends_rounds_up_and_reads_back(client: Minio, bucket: str) -> None:
    versions = [put(client, bucket, new_key(), f"item {i}".encode()) for i in range(2)]
    asked = datetime.now(UTC).replace(microsecond=250_000) + timedelta(days=40)
    whole = asked.replace(microsecond=0) + timedelta(seconds=1)
    statuses = extend_retention(client, bucket, versions, asked)
    assert statuses == [LockStatus(COMPLIANCE, whole, legal_hold=False)] * 2
    assert [lock_status(client, bucket, v) for v in versions] == statuses
    # The same date again is a no-op, which is what makes a retry after a part-way failure safe.
    assert extend_retention(client, bucket, versions, whole) == statuses


def test_extend_retention_refuses_to_shorten_and_changes_nothing(client: Minio, bucket: str) -> None:
    versions = [put(client, bucket, new_key(), f"item {i}".encode()) for i in range(3)]
    far = retain_until_for(datetime.now(UTC) + timedelta(days=90), 0)
    extend_retention(client, bucket, versions[1:2], far)
    before = [lock_status(client, bucket, v) for v in versions]

    middle = far - timedelta(days=30)
    with pytest.raises(RetentionError) as refused:
        extend_retention(client, bucket, versions, middle)
    message = str(refused.value)
    assert "extended, never shortened" in message and "nothing was changed" in message
    assert str(versions[1]) in message and far.isoformat() in message and middle.isoformat() in message
    assert str(versions[0]) not in message and str(versions[2]) not in message
    assert refused.value.changed == () and refused.value.unchanged == tuple(versions)
    assert [lock_status(client, bucket, v) for v in versions] == before


def test_extend_retention_with_an_unknown_version_changes_nothing(client: Minio, bucket: str) -> None:
    real = [put(client, bucket, new_key(), f"item {i}".encode()) for i in range(2)]
    missing = ObjectVersion(real[0].key, "0" * 32)
    before = [lock_status(client, bucket, v) for v in real]
    with pytest.raises(RetentionError) as refused:
        extend_retention(client, bucket, [real[0], missing, real[1]], datetime.now(UTC) + timedelta(days=60))
    message = str(refused.value)
    assert (
        str(missing) in message
        and "cannot read its lock status" in message
        and "nothing was changed" in message
    )
    assert refused.value.changed == () and refused.value.unchanged == (real[0], missing, real[1])
    assert [lock_status(client, bucket, v) for v in real] == before


def test_extend_retention_refuses_a_naive_date(client: Minio, bucket: str) -> None:
    version = put(client, bucket, new_key(), b"dates must be unambiguous")
    before = lock_status(client, bucket, version)
    with pytest.raises(ValueError, match="timezone-aware"):
        extend_retention(client, bucket, [version], datetime.now() + timedelta(days=60))
    assert lock_status(client, bucket, version) == before


def test_extend_retention_relocks_an_expired_version_but_never_into_the_past(
    client: Minio, bucket: str
) -> None:
    retention, until = short_lock()
    version = put(client, bucket, new_key(), b"expired, then needed again", retention)
    while datetime.now(UTC) <= until + timedelta(seconds=1):
        time.sleep(0.1)
    past = until + timedelta(seconds=1)  # later than its lock, but already over
    with pytest.raises(RetentionError, match="not in the future") as refused:
        extend_retention(client, bucket, [version], past)
    assert refused.value.unchanged == (version,)
    assert lock_status(client, bucket, version).retain_until == until

    later = retain_until_for(datetime.now(UTC) + timedelta(days=7), 0)
    assert extend_retention(client, bucket, [version], later) == [LockStatus(COMPLIANCE, later, False)]
    assert refusal_code(lambda: client.remove_object(bucket, version.key, version_id=version.version_id)) == (
        "AccessDenied"
    )


def test_set_legal_hold_on_and_off_reads_back(client: Minio, bucket: str) -> None:
    versions = [put(client, bucket, new_key(), f"case item {i}".encode()) for i in range(3)]
    assert [lock_status(client, bucket, v).legal_hold for v in versions] == [False] * 3  # never held

    held = set_legal_hold(client, bucket, versions, on=True)
    assert [s.legal_hold for s in held] == [True] * 3 and all(s.mode == COMPLIANCE for s in held)
    assert [lock_status(client, bucket, v) for v in versions] == held
    assert set_legal_hold(client, bucket, versions, on=True) == held  # idempotent

    released = set_legal_hold(client, bucket, versions, on=False)
    assert [s.legal_hold for s in released] == [False] * 3
    assert [lock_status(client, bucket, v).legal_hold for v in versions] == [False] * 3


def test_set_legal_hold_part_way_failure_names_what_changed(client: Minio, bucket: str) -> None:
    versions = [put(client, bucket, new_key(), f"case item {i}".encode()) for i in range(3)]
    missing = ObjectVersion(versions[0].key, "0" * 32)
    batch = [versions[0], versions[1], missing, versions[2]]  # the 3rd of 4 fails
    with pytest.raises(RetentionError) as failed:
        set_legal_hold(client, bucket, batch, on=True)
    assert failed.value.changed == tuple(batch[:2]) and failed.value.unchanged == tuple(batch[2:])
    message = str(failed.value)
    assert f"failed on {bucket}/{missing}" in message and "retry" in message
    assert str(versions[2]) in message.split("not done:")[1]
    assert [lock_status(client, bucket, v).legal_hold for v in versions] == [True, True, False]
