"""Ed25519 signatures over the canonical manifest bytes.

Key file (``settings.evidence.signing_key_path``): the 32-byte Ed25519 *seed*
(private key), stored either as 64 hex characters or as standard base64 (44
characters), surrounding whitespace ignored; a file of exactly 32 raw bytes is
accepted too. Generated keys are written as hex with a trailing newline, mode
0600, in a directory created 0700.

- ``development``: a missing key file is generated and the event logged with
  the key id, so a laptop or demo seals out of the box;
- ``production``: a missing or unreadable key is an error; a key must be
  provisioned (e.g. a Kubernetes secret mounted at that path), never invented.

Key id: the first 16 hex characters of SHA-256 over the raw 32-byte public key.
The signature is over the exact manifest bytes (not over their hash); the
signature artifact carries the manifest's SHA-256 so a reader can tell which
manifest it belongs to before verifying.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from cctv.config import Settings
from cctv.contracts import sha256_hex

log = logging.getLogger(__name__)

ALGORITHM = "ed25519"
SEED_BYTES = 32


class SigningKeyError(RuntimeError):
    """The signing key is missing or unusable; the message says which file and why."""


def key_id_for(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:16]


def parse_seed(raw: bytes, source: str = "key") -> bytes:
    """The 32-byte seed from a key file's content (hex, base64 or raw bytes)."""
    if len(raw) == SEED_BYTES:
        return raw
    text = raw.strip()
    for decoder in (bytes.fromhex, lambda t: base64.b64decode(t, validate=True)):
        try:
            seed = decoder(text.decode("ascii"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if len(seed) == SEED_BYTES:
            return seed
    raise SigningKeyError(
        f"{source}: not an Ed25519 seed; expected 32 bytes as 64 hex characters or base64 (44 characters)"
    )


@dataclass(frozen=True)
class ManifestSigner:
    signing_key: SigningKey

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def key_id(self) -> str:
        return key_id_for(self.public_key)

    def sign(self, manifest: bytes) -> bytes:
        """The signature artifact (canonical JSON) for the exact ``manifest`` bytes."""
        signature = self.signing_key.sign(manifest).signature
        document = {
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "manifest_sha256": sha256_hex(manifest),
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "signature": base64.b64encode(signature).decode("ascii"),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def generate(cls) -> ManifestSigner:
        return cls(SigningKey.generate())


def _write_new_key(path: Path) -> SigningKey:
    key = SigningKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # O_EXCL: if another worker generated it first, use theirs instead of overwriting it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(bytes(key).hex() + "\n")
    return key


def load_signer(settings: Settings) -> ManifestSigner:
    """The signer for ``settings.evidence.signing_key_path``; generates one only in development."""
    path = settings.evidence.signing_key_path
    if not path.exists():
        if settings.environment != "development":
            raise SigningKeyError(
                f"evidence signing key {path} does not exist; provision an Ed25519 seed there "
                "(64 hex characters or base64) or set CCTV_EVIDENCE__SIGNING_KEY_PATH"
            )
        try:
            signer = ManifestSigner(_write_new_key(path))
        except FileExistsError:
            return load_signer(settings)
        log.warning(
            "generated a new development evidence signing key %s (key id %s); "
            "production needs a provisioned key",
            path,
            signer.key_id,
        )
        return signer
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"evidence signing key {path} cannot be read: {exc}") from exc
    if path.stat().st_mode & 0o077:
        log.warning("evidence signing key %s is readable by group/others; chmod 600 it", path)
    signer = ManifestSigner(SigningKey(parse_seed(raw, str(path))))
    log.info("evidence signing key %s loaded (key id %s)", path, signer.key_id)
    return signer


def public_key_bytes(public_key: bytes | str) -> bytes:
    if isinstance(public_key, bytes) and len(public_key) == SEED_BYTES:
        return public_key
    text = public_key.decode("ascii") if isinstance(public_key, bytes) else public_key
    try:
        return bytes.fromhex(text) if len(text.strip()) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("public key must be 32 raw bytes, 64 hex characters or base64") from exc


def verify_manifest(
    manifest: bytes, signature: bytes | str | dict[str, Any], public_key: bytes | str
) -> bool:
    """True only if ``signature`` (the signature artifact) is a valid Ed25519 signature of ``manifest``
    by ``public_key``, the artifact names that key, and its manifest hash matches.

    ``public_key`` must come from a trusted source (the operator's published key),
    not from the signature artifact itself, or anyone could re-sign a forgery.
    """
    try:
        document = signature if isinstance(signature, dict) else json.loads(signature)
        key = public_key_bytes(public_key)
        if document.get("algorithm") != ALGORITHM or document.get("key_id") != key_id_for(key):
            return False
        if document.get("manifest_sha256") != sha256_hex(manifest):
            return False
        VerifyKey(key).verify(manifest, base64.b64decode(document["signature"], validate=True))
    except (BadSignatureError, ValueError, KeyError, TypeError, binascii.Error):
        return False
    return True
