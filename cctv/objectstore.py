"""S3 client construction and the evidence bucket's WORM set-up.

Only the S3 API is used (no MinIO admin calls) so the store can be swapped:
MinIO in production, SeaweedFS locally, any S3 with Object Lock elsewhere.
"""

from __future__ import annotations

from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.objectlockconfig import DAYS, ObjectLockConfig

from cctv.config import S3Settings


def make_client(settings: S3Settings) -> Minio:
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key.get_secret_value(),
        secure=settings.secure,
        region=settings.region,
    )


def ensure_evidence_bucket(client: Minio, settings: S3Settings) -> None:
    """Create the evidence bucket with Object Lock (implies versioning) and COMPLIANCE default retention.

    Object Lock can only be enabled when a bucket is created, so an existing
    bucket without it is refused rather than silently used.
    """
    bucket = settings.evidence_bucket
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket, object_lock=True)
        client.set_object_lock_config(bucket, ObjectLockConfig(COMPLIANCE, settings.retention_days, DAYS))
        return
    try:
        config = client.get_object_lock_config(bucket)
    except Exception as exc:  # S3Error when the bucket has no lock configuration
        raise RuntimeError(
            f"bucket {bucket!r} exists without Object Lock; evidence needs a bucket created with it"
        ) from exc
    if config.mode != COMPLIANCE:
        client.set_object_lock_config(bucket, ObjectLockConfig(COMPLIANCE, settings.retention_days, DAYS))
