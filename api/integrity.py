"""Hash-checked reads of evidence objects: bytes leave the API only if they match the recorded SHA-256.

Why spool first: a streamed response cannot be taken back once bytes are on
the wire, so the object is read completely (memory, then disk past a few MB)
while hashing, compared with the hash sealed at evidence time, and only then
streamed to the client.
"""

from __future__ import annotations

import base64
import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from minio import Minio

CHUNK = 1024 * 1024
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024


class StoreUnavailable(RuntimeError):
    """The object could not be read from the store (network, missing key or version)."""


class IntegrityFailure(RuntimeError):
    """The stored bytes differ from what was recorded when the evidence was sealed."""

    def __init__(self, expected: str, actual: str, size: int) -> None:
        super().__init__(f"stored object hashes to {actual} ({size} bytes), sealed as {expected}")
        self.expected, self.actual, self.size = expected, actual, size


@dataclass
class VerifiedObject:
    file: IO[bytes]
    sha256: str
    size: int

    @property
    def repr_digest(self) -> str:
        """RFC 9530 ``Repr-Digest`` value."""
        return "sha-256=:" + base64.b64encode(bytes.fromhex(self.sha256)).decode("ascii") + ":"

    def iter_and_close(self) -> Iterator[bytes]:
        try:
            self.file.seek(0)
            while chunk := self.file.read(CHUNK):
                yield chunk
        finally:
            self.file.close()


def fetch_verified(
    store: Minio, bucket: str, key: str, version_id: str | None, expected_sha256: str
) -> VerifiedObject:
    """Read one object version fully while hashing; raise unless its SHA-256 is the expected one."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - closed by caller
    digest, size = hashlib.sha256(), 0
    try:
        try:
            response = store.get_object(bucket, key, version_id=version_id)
        except Exception as exc:
            raise StoreUnavailable(f"cannot read s3://{bucket}/{key} version {version_id}: {exc}") from exc
        try:
            for chunk in response.stream(CHUNK):
                digest.update(chunk)
                spool.write(chunk)
                size += len(chunk)
        except Exception as exc:
            raise StoreUnavailable(f"reading s3://{bucket}/{key} failed: {exc}") from exc
        finally:
            response.close()
            response.release_conn()
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise IntegrityFailure(expected_sha256, actual, size)
    except BaseException:
        spool.close()
        raise
    return VerifiedObject(spool, actual, size)
