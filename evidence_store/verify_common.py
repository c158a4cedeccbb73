"""What every part of the offline verifier shares: the :class:`Check` result, the trusted keys and
the signature check that names which key signed and which keys were trusted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from cctv.contracts import sha256_hex
from evidence_store.custody import canonical
from evidence_store.signing import SEED_BYTES, key_id_for, public_key_bytes, verify_manifest

SIGNATURE_FIELDS = frozenset({"algorithm", "key_id", "manifest_sha256", "public_key", "signature"})

TrustedKeys = Mapping[str, bytes]  # key id -> raw 32-byte Ed25519 public key


@dataclass(frozen=True)
class Check:
    """One named verification step; ``detail`` says what was found, precisely enough to act on."""

    name: str
    ok: bool
    detail: str


def guarded(name: str, run: Callable[[], Check]) -> Check:
    """Last line of defence: data shaped in a way no check anticipated is a FAIL, never a crash."""
    try:
        return run()
    except Exception as exc:  # the bundle is untrusted input; the verifier must always report
        return Check(name, False, f"could not be checked: malformed data ({type(exc).__name__}: {exc})")


def parse_public_key(value: str | bytes) -> bytes:
    """A raw Ed25519 public key from 32 raw bytes, 64 hex characters or base64 (whitespace ignored)."""
    if isinstance(value, bytes) and len(value) == SEED_BYTES:
        raw = value
    else:
        try:
            text = (value.decode("ascii") if isinstance(value, bytes) else value).strip()
        except UnicodeDecodeError as exc:
            raise ValueError("public key must be 32 raw bytes, 64 hex characters or base64") from exc
        raw = public_key_bytes(text)
    if len(raw) != SEED_BYTES:
        raise ValueError(f"an Ed25519 public key has {SEED_BYTES} bytes, this one {len(raw)}")
    try:
        VerifyKey(raw)
    except (CryptoError, ValueError, TypeError) as exc:
        raise ValueError(f"not an Ed25519 public key: {exc}") from exc
    return raw


def trusted_keys(public_keys: Sequence[str | bytes]) -> dict[str, bytes]:
    """Key id -> key for every trusted key; ValueError if none is given or one is unusable."""
    if not public_keys:
        raise ValueError("at least one trusted public key is needed")
    keys = [parse_public_key(key) for key in public_keys]
    return {key_id_for(key): key for key in keys}


def _signed_by_embedded_key(data: bytes, document: dict[str, Any]) -> bool:
    """Whether the signature is genuine for the key the artifact itself carries (proves nothing
    about trust, but tells "re-signed with another key" apart from "altered")."""
    try:
        embedded = base64.b64decode(document["public_key"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        return False
    return (
        len(embedded) == SEED_BYTES
        and key_id_for(embedded) == document.get("key_id")
        and (verify_manifest(data, document, embedded))
    )


def _signature_document(signature: bytes, sig_name: str) -> tuple[dict[str, Any] | None, str]:
    try:
        document = json.loads(signature)
    except (ValueError, UnicodeDecodeError):
        return None, f"{sig_name} is not valid JSON"
    if not isinstance(document, dict) or set(document) != SIGNATURE_FIELDS:
        fields = sorted(document) if isinstance(document, dict) else type(document).__name__
        return None, f"{sig_name} has fields {fields}, expected {sorted(SIGNATURE_FIELDS)}"
    if canonical(document) != signature:
        return None, f"{sig_name} is not in its canonical form (altered after signing)"
    return document, ""


def signature_check(
    name: str,
    data: bytes | None,
    signature: bytes | None,
    trusted: TrustedKeys,
    what: str,
    sig_name: str,
) -> Check:
    """Does ``signature`` (a signature artifact) sign exactly ``data`` with one of ``trusted``?"""
    if data is None or signature is None:
        return Check(name, False, f"{what if data is None else sig_name} is missing")
    document, problem = _signature_document(signature, sig_name)
    if document is None:
        return Check(name, False, problem)
    for key_id, key in trusted.items():
        if verify_manifest(data, document, key):
            if document["public_key"] != base64.b64encode(key).decode("ascii"):
                return Check(name, False, f"{sig_name} carries a public key other than key {key_id}")
            return Check(name, True, f"valid Ed25519 signature of {what} by trusted key {key_id}")
    signer = document.get("key_id")
    trusted_ids = ", ".join(trusted)
    if not isinstance(signer, str) or signer not in trusted:
        genuine = (
            " (the signature is genuine for that key)" if _signed_by_embedded_key(data, document) else ""
        )
        return Check(
            name,
            False,
            f"{what} is signed by key {signer}{genuine}, which is not trusted; trusted key id(s): "
            f"{trusted_ids}",
        )
    digest = sha256_hex(data)
    if document.get("manifest_sha256") != digest:
        return Check(
            name,
            False,
            f"{what} altered: it hashes to {digest}, the signature by key {signer} is for "
            f"{document.get('manifest_sha256')}",
        )
    return Check(
        name, False, f"the signature by trusted key {signer} does not verify: {sig_name} was altered"
    )
