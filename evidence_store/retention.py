"""Extending COMPLIANCE retention and placing legal holds on stored evidence versions.

Everything goes through the plain S3 Object Lock API of an injected ``minio.Minio``
client, so the same code runs against MinIO in production and SeaweedFS in tests.

Rules that make the lock mean something in court:

- retention is only ever extended, never shortened: a request that would shorten
  any version is refused before anything is changed, even though the store would
  refuse it too (our error says which version and both dates; the store's says
  only "Access Denied");
- every change is read back and verified, because a store that silently ignored a
  lock request must not let us record "retention extended" in the custody log;
- a failure part-way through a batch names the versions already changed and the
  ones not changed. Both operations are idempotent (an extension to the same date
  and a hold already in the wanted state are no-ops), so retrying the whole batch
  after a failure is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import S3Error
from minio.retention import Retention

from evidence_store.store import retain_until_for

# "Not configured" answers. minio-py only recognises NoSuchObjectLockConfiguration (AWS, MinIO);
# SeaweedFS answers ObjectLockConfigurationNotFoundError for a version without retention and
# NoSuchObjectLegalHold for a version that never had a hold.
_NO_RETENTION_CODES = frozenset({"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"})
_NO_LEGAL_HOLD_CODES = frozenset({"NoSuchObjectLockConfiguration", "NoSuchObjectLegalHold"})


@dataclass(frozen=True)
class ObjectVersion:
    """One immutable version of an object; locks apply per version, never per key."""

    key: str
    version_id: str

    def __str__(self) -> str:
        return f"{self.key}@{self.version_id}"


@dataclass(frozen=True)
class LockStatus:
    """What the store says protects a version: retention mode and end, and the legal hold."""

    mode: str | None
    retain_until: datetime | None
    legal_hold: bool


class RetentionError(RuntimeError):
    """A retention or legal-hold request was refused, failed or not applied by the store.

    ``changed`` lists the versions verified in the wanted state before the failure and
    ``unchanged`` the ones not (or not verifiably) changed, so a caller can log
    custody entries for exactly what happened.
    """

    def __init__(
        self,
        message: str,
        *,
        changed: Sequence[ObjectVersion] = (),
        unchanged: Sequence[ObjectVersion] = (),
    ) -> None:
        super().__init__(message)
        self.changed = tuple(changed)
        self.unchanged = tuple(unchanged)


def _where(bucket: str, version: ObjectVersion) -> str:
    return f"{bucket}/{version}"


def _s3_reason(exc: Exception) -> str:
    if isinstance(exc, S3Error):
        return f"{exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _retention(client: Minio, bucket: str, version: ObjectVersion) -> Retention | None:
    try:
        return client.get_object_retention(bucket, version.key, version_id=version.version_id)
    except S3Error as exc:
        if exc.code in _NO_RETENTION_CODES:
            return None
        raise


def _legal_hold(client: Minio, bucket: str, version: ObjectVersion) -> bool:
    try:
        return bool(client.is_object_legal_hold_enabled(bucket, version.key, version_id=version.version_id))
    except S3Error as exc:
        if exc.code in _NO_LEGAL_HOLD_CODES:
            return False
        raise


def lock_status(client: Minio, bucket: str, version: ObjectVersion) -> LockStatus:
    """The version's retention and legal hold as the store reports them now."""
    try:
        retention = _retention(client, bucket, version)
        hold = _legal_hold(client, bucket, version)
    except S3Error as exc:
        raise RetentionError(
            f"{_where(bucket, version)}: cannot read its lock status ({_s3_reason(exc)})"
        ) from exc
    if retention is None:
        return LockStatus(mode=None, retain_until=None, legal_hold=hold)
    return LockStatus(mode=retention.mode, retain_until=retention.retain_until_date, legal_hold=hold)


def _whole_seconds(at: datetime) -> datetime:
    """``at`` in UTC rounded UP to a whole second: stores keep seconds, and truncating would shorten."""
    if at.tzinfo is None:
        raise ValueError(f"retain_until must be timezone-aware, got naive {at.isoformat()}")
    return retain_until_for(at, 0)


def _apply_all(
    bucket: str,
    versions: Sequence[ObjectVersion],
    action: str,
    apply_one: Callable[[ObjectVersion], LockStatus],
) -> list[LockStatus]:
    """Run ``apply_one`` per version; on failure say which versions changed and which did not."""
    done: list[LockStatus] = []
    for index, version in enumerate(versions):
        try:
            done.append(apply_one(version))
        except Exception as exc:
            changed, unchanged = list(versions[:index]), list(versions[index:])
            raise RetentionError(
                f"{action} failed on {_where(bucket, version)} ({_s3_reason(exc)}); "
                f"done and verified: {[str(v) for v in changed] or 'none'}; "
                f"not done: {[str(v) for v in unchanged]} "
                f"(the failed version may or may not have been changed). "
                f"The operation is idempotent: retry it with the same versions.",
                changed=changed,
                unchanged=unchanged,
            ) from exc
    return done


def _read_all(client: Minio, bucket: str, versions: Sequence[ObjectVersion]) -> list[LockStatus]:
    """Every version's status before changing any, so a bad version list changes nothing."""
    try:
        return [lock_status(client, bucket, v) for v in versions]
    except RetentionError as exc:
        raise RetentionError(f"{exc}; nothing was changed", unchanged=versions) from exc


def _refuse_shortening(
    bucket: str, versions: Sequence[ObjectVersion], before: Sequence[LockStatus], target: datetime
) -> None:
    shortened = [
        f"{_where(bucket, v)} is locked until {s.retain_until.isoformat()}"
        for v, s in zip(versions, before, strict=True)
        if s.retain_until is not None and s.retain_until > target
    ]
    if shortened:
        raise RetentionError(
            "retention can be extended, never shortened: "
            f"{'; '.join(shortened)}, asked for {target.isoformat()}; nothing was changed",
            unchanged=versions,
        )


def extend_retention(
    client: Minio, bucket: str, versions: Sequence[ObjectVersion], retain_until: datetime
) -> list[LockStatus]:
    """Lock every version in COMPLIANCE mode until at least ``retain_until``; returns the new statuses.

    ``retain_until`` (timezone-aware) is rounded up to a whole second. All versions
    are read first; if any is already locked beyond the requested date nothing is
    changed and ``RetentionError`` names it, since shortening a COMPLIANCE lock is
    exactly what the lock exists to prevent. A version already locked until that
    very second is left as it is. Each changed version is read back and must show
    COMPLIANCE until at least the requested date.

    Idempotent: after a part-way failure (the error lists what was done and what
    was not) calling again with the same arguments is safe and finishes the job.
    """
    target = _whole_seconds(retain_until)
    versions = list(versions)
    before = _read_all(client, bucket, versions)
    _refuse_shortening(bucket, versions, before, target)
    if target <= datetime.now(UTC) and any(s.retain_until != target for s in before):
        raise RetentionError(
            f"cannot lock {bucket} versions until {target.isoformat()}: that is not in the future; "
            "nothing was changed",
            unchanged=versions,
        )
    current = dict(zip(versions, before, strict=True))

    def extend_one(version: ObjectVersion) -> LockStatus:
        status = current[version]
        if status.mode == COMPLIANCE and status.retain_until == target:
            return status
        client.set_object_retention(
            bucket, version.key, Retention(COMPLIANCE, target), version_id=version.version_id
        )
        after = lock_status(client, bucket, version)
        if after.mode != COMPLIANCE or after.retain_until is None or after.retain_until < target:
            raise RetentionError(
                f"{_where(bucket, version)}: the store accepted the extension but reports "
                f"{after.mode} until {after.retain_until}, expected {COMPLIANCE} until {target.isoformat()}"
            )
        return after

    return _apply_all(bucket, versions, f"extending retention to {target.isoformat()}", extend_one)


def set_legal_hold(
    client: Minio, bucket: str, versions: Sequence[ObjectVersion], on: bool
) -> list[LockStatus]:
    """Place (``on=True``) or release the legal hold on every version; returns the new statuses.

    A hold blocks deletion regardless of retention, so it is how a case keeps
    evidence beyond its retention date. Each version is read back and must show
    the wanted hold state. Idempotent: setting a hold that is already in place is
    a no-op for the store, so a retry after a part-way failure is safe.
    """
    versions = list(versions)

    def hold_one(version: ObjectVersion) -> LockStatus:
        if on:
            client.enable_object_legal_hold(bucket, version.key, version_id=version.version_id)
        else:
            client.disable_object_legal_hold(bucket, version.key, version_id=version.version_id)
        after = lock_status(client, bucket, version)
        if after.legal_hold != on:
            raise RetentionError(
                f"{_where(bucket, version)}: the store accepted the request but reports the legal hold "
                f"{'ON' if after.legal_hold else 'OFF'}, expected {'ON' if on else 'OFF'}"
            )
        return after

    return _apply_all(bucket, versions, f"setting the legal hold {'ON' if on else 'OFF'}", hold_one)
