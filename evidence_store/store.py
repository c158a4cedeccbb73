"""Writes evidence packages to the Object Lock bucket and finds ones already sealed.

Layout: ``incidents/<camera_id>/<YYYY>/<MM>/<DD>/<incident_id>/`` (date of the
incident's start, UTC, so the prefix is known before anything is built) with
``master.tar``, ``working.mp4``, ``manifest.sig.json``, ``manifest.tsr`` (the RFC 3161
timestamp token over the manifest's SHA-256, when a TSA is configured and
answered) and ``manifest.json``.

Why this order: the manifest is written last and is the commit marker. If a
worker dies halfway, the incident is redelivered, no manifest exists yet, and
it is sealed again (the earlier partial objects stay locked but unreferenced).
If the manifest exists, the incident is sealed: the ``EvidenceSealed`` message
is rebuilt from the stored manifest and signature and nothing new is written.

Every put carries ``Retention(COMPLIANCE, sealed_at + retention_days)`` and the
object's SHA-256 as user metadata (``x-amz-meta-sha256``); after each put the
version is read back and its SHA-256, size and retention are compared.
"""

from __future__ import annotations

import io
import json
import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.datatypes import Object
from minio.retention import Retention

from cctv.config import S3Settings
from cctv.contracts import ArtifactKind, EvidenceSealed, IncidentMessage, StoredArtifact, sha256_hex
from cctv.objectstore import ensure_evidence_bucket
from evidence_store.package import ARTIFACT_NAMES, CONTENT_TYPES, EvidencePackage
from evidence_store.timestamp import token_covers

log = logging.getLogger(__name__)

SHA256_META = "sha256"
ARTIFACT_ORDER = (
    ArtifactKind.MASTER,
    ArtifactKind.WORKING_COPY,
    ArtifactKind.MANIFEST,
    ArtifactKind.SIGNATURE,
    ArtifactKind.TIMESTAMP,
)


class EvidenceStoreError(RuntimeError):
    """The store did not keep what was written, or holds an inconsistent evidence item."""


def incident_prefix(incident: IncidentMessage) -> str:
    day = incident.started_at.astimezone(UTC)
    return f"incidents/{incident.camera_id}/{day:%Y/%m/%d}/{incident.incident_id}"


def retain_until_for(sealed_at: datetime, retention_days: int) -> datetime:
    """Retention end, rounded up to a whole second (S3 keeps seconds; never shorten a lock)."""
    until = sealed_at.astimezone(UTC) + timedelta(days=retention_days)
    return until.replace(microsecond=0) + timedelta(seconds=math.ceil(until.microsecond / 1e6))


def _meta(obj: Object, name: str) -> str | None:
    for key, value in (obj.metadata or {}).items():
        if key.lower() == f"x-amz-meta-{name}":
            return str(value)
    return None


def sealed_message(
    document: dict[str, Any],
    manifest_sha256: str,
    artifacts: Iterable[StoredArtifact],
    bucket: str,
    key_id: str,
) -> EvidenceSealed:
    """The ``EvidenceSealed`` event, built only from the manifest so a rebuild gives the same message."""
    by_kind = {a.kind: a for a in artifacts}
    return EvidenceSealed(
        evidence_id=document["evidence_id"],
        incident_id=document["incident"]["incident_id"],
        camera_id=document["camera"]["camera_id"],
        bucket=bucket,
        artifacts=tuple(by_kind[k] for k in ARTIFACT_ORDER if k in by_kind),
        manifest_sha256=manifest_sha256,
        frame_count=document["frame_count"],
        first_capture_ts=document["first_capture_ts"],
        last_capture_ts=document["last_capture_ts"],
        sealed_at=document["created_at"],
        retain_until=document["retention"]["retain_until"],
        signing_key_id=key_id,
    )


class EvidenceStore:
    def __init__(self, client: Minio, settings: S3Settings) -> None:
        self.client, self.settings = client, settings
        self.bucket = settings.evidence_bucket
        self._bucket_ready = False

    def ensure_bucket(self) -> None:
        if not self._bucket_ready:
            ensure_evidence_bucket(self.client, self.settings)
            self._bucket_ready = True

    # ------------------------------------------------------------------ write

    def write(
        self,
        incident: IncidentMessage,
        package: EvidencePackage,
        signature: bytes,
        timestamp_token: bytes | None = None,
    ) -> EvidenceSealed:
        document = package.manifest_document
        retain_until = datetime.fromisoformat(document["retention"]["retain_until"])
        prefix = incident_prefix(incident)
        blobs: list[tuple[ArtifactKind, bytes]] = [(ArtifactKind.MASTER, package.master)]
        if package.working_copy is not None:
            blobs.append((ArtifactKind.WORKING_COPY, package.working_copy.data))
        blobs.append((ArtifactKind.SIGNATURE, signature))
        if timestamp_token is not None:
            blobs.append((ArtifactKind.TIMESTAMP, timestamp_token))
        blobs.append((ArtifactKind.MANIFEST, package.manifest))  # last: the sealed marker
        stored = [
            self.put_locked(kind, f"{prefix}/{ARTIFACT_NAMES[kind]}", data, retain_until)
            for kind, data in blobs
        ]
        key_id = json.loads(signature)["key_id"]
        log.info(
            "sealed incident %s as evidence %s under %s", incident.incident_id, package.evidence_id, prefix
        )
        return sealed_message(document, package.manifest_sha256, stored, self.bucket, key_id)

    def put_locked(self, kind: ArtifactKind, key: str, data: bytes, retain_until: datetime) -> StoredArtifact:
        """Put one object, COMPLIANCE-locked, with its SHA-256; then read the version back to check it."""
        digest = sha256_hex(data)
        result = self.client.put_object(
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=CONTENT_TYPES[kind],
            metadata={SHA256_META: digest},
            retention=Retention(COMPLIANCE, retain_until),
        )
        if result.version_id is None:
            raise EvidenceStoreError(
                f"{self.bucket}/{key}: the store returned no version id (versioning off?)"
            )
        self._verify(key, result.version_id, digest, len(data), retain_until)
        return StoredArtifact(
            kind=kind,
            key=key,
            version_id=result.version_id,
            sha256=digest,
            size=len(data),
            content_type=CONTENT_TYPES[kind],
        )

    def _verify(self, key: str, version_id: str, digest: str, size: int, retain_until: datetime) -> None:
        """Read the written version back: the store must hold exactly these bytes, locked."""
        response = self.client.get_object(self.bucket, key, version_id=version_id)
        try:
            stored = response.read()
        finally:
            response.close()
            response.release_conn()
        if len(stored) != size or sha256_hex(stored) != digest:
            raise EvidenceStoreError(
                f"{self.bucket}/{key}@{version_id}: read back {len(stored)} bytes "
                f"sha256 {sha256_hex(stored)}, wrote {size} bytes sha256 {digest}"
            )
        retention = self.client.get_object_retention(self.bucket, key, version_id=version_id)
        until = retention.retain_until_date if retention is not None else None
        if retention is None or retention.mode != COMPLIANCE or until is None or until < retain_until:
            raise EvidenceStoreError(
                f"{self.bucket}/{key}@{version_id}: retention is "
                f"{getattr(retention, 'mode', None)} until {until}, expected COMPLIANCE until {retain_until}"
            )

    # ------------------------------------------------------------------ find

    def _versions(self, key: str) -> list[Object]:
        """Object versions of exactly ``key`` (delete markers excluded), oldest first."""
        found = [
            obj
            for obj in self.client.list_objects(self.bucket, prefix=key, include_version=True)
            if obj.object_name == key and not obj.is_delete_marker
        ]
        return sorted(found, key=lambda o: o.last_modified or datetime.min.replace(tzinfo=UTC))

    def _read(self, key: str, version_id: str | None) -> bytes:
        response = self.client.get_object(self.bucket, key, version_id=version_id)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def find_sealed(self, incident: IncidentMessage) -> EvidenceSealed | None:
        """The incident's evidence if its manifest is already stored (the first manifest version wins)."""
        prefix = incident_prefix(incident)
        manifest_key = f"{prefix}/{ARTIFACT_NAMES[ArtifactKind.MANIFEST]}"
        versions = self._versions(manifest_key)
        if not versions:
            return None
        first = versions[0]
        manifest = self._read(manifest_key, first.version_id)
        manifest_sha = sha256_hex(manifest)
        document = json.loads(manifest)
        stored = [self._artifact(ArtifactKind.MANIFEST, manifest_key, first.version_id, manifest)]
        signature_key = f"{prefix}/{ARTIFACT_NAMES[ArtifactKind.SIGNATURE]}"
        key_id = None
        for version in reversed(self._versions(signature_key)):
            signature = self._read(signature_key, version.version_id)
            if json.loads(signature).get("manifest_sha256") == manifest_sha:
                stored.append(
                    self._artifact(ArtifactKind.SIGNATURE, signature_key, version.version_id, signature)
                )
                key_id = json.loads(signature)["key_id"]
                break
        if key_id is None:
            raise EvidenceStoreError(f"{self.bucket}/{manifest_key}: no stored signature for this manifest")
        timestamp_key = f"{prefix}/{ARTIFACT_NAMES[ArtifactKind.TIMESTAMP]}"
        for version in reversed(self._versions(timestamp_key)):
            token = self._read(timestamp_key, version.version_id)
            if token_covers(token, manifest_sha):
                found = self._artifact(ArtifactKind.TIMESTAMP, timestamp_key, version.version_id, token)
                stored.append(found)
                break
        for kind, entry in (
            (ArtifactKind.MASTER, document["artifacts"]["master"]),
            (ArtifactKind.WORKING_COPY, document["artifacts"]["working_copy"]),
        ):
            if entry is not None:
                stored.append(self._matching_version(kind, f"{prefix}/{entry['name']}", entry))
        log.info(
            "incident %s already sealed (manifest %s); nothing written", incident.incident_id, manifest_sha
        )
        return sealed_message(document, manifest_sha, stored, self.bucket, key_id)

    def _artifact(self, kind: ArtifactKind, key: str, version_id: str | None, data: bytes) -> StoredArtifact:
        return StoredArtifact(
            kind=kind,
            key=key,
            version_id=version_id,
            sha256=sha256_hex(data),
            size=len(data),
            content_type=CONTENT_TYPES[kind],
        )

    def _matching_version(self, kind: ArtifactKind, key: str, entry: dict[str, Any]) -> StoredArtifact:
        """The stored version whose recorded SHA-256 is the manifest's (newest first)."""
        for version in reversed(self._versions(key)):
            stat = self.client.stat_object(self.bucket, key, version_id=version.version_id)
            if _meta(stat, SHA256_META) == entry["sha256"] and stat.size == entry["size"]:
                return StoredArtifact(
                    kind=kind,
                    key=key,
                    version_id=stat.version_id,
                    sha256=entry["sha256"],
                    size=entry["size"],
                    content_type=CONTENT_TYPES[kind],
                )
        raise EvidenceStoreError(f"{self.bucket}/{key}: no stored version matches the manifest's sha256")
