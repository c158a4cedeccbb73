"""RFC 3161 trusted timestamps for evidence manifests: ask a TSA, verify the token offline.

A timestamp token proves to a third party that the manifest (by its SHA-256)
existed no later than the TSA's ``genTime``; our own clock and our own
Ed25519 key cannot prove that. What is stored as ``manifest.tsr`` is the bare
TimeStampToken (a CMS ContentInfo), the same object ``openssl ts -verify
-token_in`` reads, not the whole TimeStampResp.

Verification needs nothing but the token, the manifest hash and the PEM of the
CA that issued the TSA certificate: no network, no revocation lookups. Every
failed check is reported as a sentence naming what failed, never as an
exception, because the export verifier prints them to a court audience.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    h.name: h for h in (hashes.SHA1, hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512)
}
NO_TRUSTED_CA = "no trusted TSA certificate supplied: the token's signature was checked but not who signed it"


class TimestampError(RuntimeError):
    """Getting a token failed; the message names the TSA and the reason."""


class _TimeStampResp(core.Sequence):
    # asn1crypto 1.5 declares timeStampToken mandatory, but RFC 3161 §2.4.2 makes it
    # OPTIONAL and a rejection carries none: with the stock class every rejection
    # would read as a parse error and its failInfo would be lost.
    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _digest_bytes(sha256_hex: str) -> bytes:
    if len(sha256_hex) != 64:
        raise ValueError(f"not a SHA-256 hex digest: {sha256_hex!r}")
    return bytes.fromhex(sha256_hex)


def build_request(sha256_hex: str, nonce: int, *, policy: str | None = None) -> bytes:
    """DER TimeStampReq v1 over a SHA-256 imprint, with a nonce and certReq=True.

    certReq makes the TSA embed its certificate, so the stored token verifies
    offline without fetching anything.
    """
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": _digest_bytes(sha256_hex),
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    if policy is not None:
        request["req_policy"] = policy
    return request.dump()


def request_token(url: str, sha256_hex: str, timeout_s: float) -> bytes:
    """POST a request to the TSA; the DER TimeStampToken (CMS ContentInfo) it granted."""
    nonce = secrets.randbits(63)  # positive and within int64, which some TSAs store it as
    body = build_request(sha256_hex, nonce)
    headers = {"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"}
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise TimestampError(f"TSA {url} unreachable: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        snippet = response.text[:200].strip()
        raise TimestampError(f"TSA {url} answered HTTP {response.status_code}: {snippet!r}")
    return parse_response(response.content, sha256_hex, nonce, source=f"TSA {url}")


def parse_response(response: bytes, sha256_hex: str, nonce: int, *, source: str = "TSA") -> bytes:
    """The token from a DER TimeStampResp, after checking it answers *this* request."""
    try:
        resp = _TimeStampResp.load(response)
        status = resp["status"]
        code = status["status"].native
        token = resp["time_stamp_token"]
    except (ValueError, TypeError) as exc:
        raise TimestampError(f"{source} answer is not a TimeStampResp: {exc}") from exc
    if code not in ("granted", "granted_with_mods"):
        fail_info = sorted(map(str, _native(status["fail_info"]) or ()))
        text = " ".join(_native(status["status_string"]) or ())
        raise TimestampError(
            f"{source} refused the timestamp: PKIStatus {code}, "
            f"failInfo {', '.join(fail_info) or 'none'}, statusString {text!r}"
        )
    if isinstance(token, core.Void):
        raise TimestampError(f"{source} granted the request but sent no timestamp token")
    try:
        tst = _tst_info(token)
    except (ValueError, TypeError, KeyError) as exc:
        raise TimestampError(f"{source} sent an unreadable timestamp token: {exc}") from exc
    problem = _imprint_problem(tst, sha256_hex)
    if problem:
        raise TimestampError(f"{source}: {problem}")
    if tst["nonce"].native != nonce:
        raise TimestampError(
            f"{source} answered with nonce {tst['nonce'].native}, asked {nonce}: "
            "the reply is not for this request"
        )
    return token.dump()


def _native(value: core.Asn1Value) -> Any:
    return None if isinstance(value, core.Void) else value.native


@dataclass(frozen=True)
class TimestampVerification:
    ok: bool
    gen_time: dt.datetime | None  # UTC
    tsa_name: str | None  # signer certificate subject, RFC 4514
    serial_number: int | None
    policy: str | None
    problems: tuple[str, ...]  # each names exactly what failed


def verify_token(token: bytes, sha256_hex: str, trusted_ca_pem: bytes | None) -> TimestampVerification:
    """Check a stored token against the manifest hash and the trusted TSA CA, offline."""
    try:
        info = cms.ContentInfo.load(token, strict=True)  # trailing bytes are tampering too
        tst = _tst_info(info)
        signed_data = info["content"]
        gen_time = tst["gen_time"].native.astimezone(dt.UTC)
        serial, policy = tst["serial_number"].native, tst["policy"].dotted
    except Exception as exc:  # never raise on malformed input: say it does not parse
        return TimestampVerification(
            False, None, None, None, None, (f"not an RFC 3161 timestamp token: {exc}",)
        )
    problems: list[str] = []
    tsa_name = None
    try:
        imprint_problem = _imprint_problem(tst, sha256_hex)
        problems += [imprint_problem] if imprint_problem else []
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            raise ValueError(f"expected exactly one SignerInfo (the TSA's), found {len(signer_infos)}")
        signer_info = signer_infos[0]
        cert = _signer_certificate(signed_data, signer_info)
        if cert is None:
            problems.append(
                "signer certificate is not in the token (requested with certReq): cannot check who signed"
            )
        else:
            tsa_name = cert.subject.rfc4514_string()
        problems += _check_signed_attrs(signed_data, signer_info, cert)
        if cert is not None:
            problems += _check_tsa_certificate(cert, gen_time)
            problems += _check_chain(cert, trusted_ca_pem, gen_time)
    except Exception as exc:  # a verifier reports malformed input, it never crashes on it
        problems.append(f"malformed timestamp token: {type(exc).__name__}: {exc}")
    return TimestampVerification(not problems, gen_time, tsa_name, serial, policy, tuple(problems))


def token_covers(token: bytes, sha256_hex: str) -> bool:
    """Whether ``token`` parses and its imprint is ``sha256_hex`` (no signature check: for lookups only)."""
    try:
        return _imprint_problem(_tst_info(cms.ContentInfo.load(token, strict=True)), sha256_hex) is None
    except Exception:  # asn1crypto raises many types on malformed input; any of them means "no"
        return False


def _tst_info(info: cms.ContentInfo) -> tsp.TSTInfo:
    if info["content_type"].native != "signed_data":
        raise ValueError(f"content type is {info['content_type'].native}, not CMS SignedData")
    encap = info["content"]["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise ValueError(f"signed content type is {encap['content_type'].dotted}, not id-ct-TSTInfo")
    tst = encap["content"].parsed
    if not isinstance(tst, tsp.TSTInfo):
        raise ValueError("signed content is not a TSTInfo")
    tst.native  # noqa: B018 (asn1crypto parses lazily: force it so a broken TSTInfo fails here)
    return tst


def _imprint_problem(tst: tsp.TSTInfo, sha256_hex: str) -> str | None:
    imprint = tst["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if algorithm != "sha256":
        return f"timestamp imprint uses {algorithm}, expected sha256"
    token_hex = imprint["hashed_message"].native.hex()
    if token_hex != sha256_hex.lower():
        return (
            f"timestamp covers a different document: token imprint {token_hex}, manifest sha256 {sha256_hex}"
        )
    return None


def _signer_certificate(signed_data: cms.SignedData, signer_info: cms.SignerInfo) -> x509.Certificate | None:
    """The embedded certificate the SignerInfo's sid points at."""
    sid = signer_info["sid"]
    certificates = signed_data["certificates"]
    for choice in [] if isinstance(certificates, core.Void) else certificates:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            match = (cert.issuer, cert.serial_number) == (
                sid.chosen["issuer"],
                sid.chosen["serial_number"].native,
            )
        else:
            match = cert.key_identifier == sid.chosen.native
        if match:
            try:
                return x509.load_der_x509_certificate(cert.dump())
            except ValueError as exc:
                raise ValueError(f"the signer certificate in the token does not parse: {exc}") from exc
    return None


def _check_signed_attrs(
    signed_data: cms.SignedData, signer_info: cms.SignerInfo, cert: x509.Certificate | None
) -> list[str]:
    """messageDigest binds the TSTInfo to the signed attributes; the signature covers those."""
    attrs = signer_info["signed_attrs"]
    if isinstance(attrs, core.Void) or not len(attrs):
        return ["token has no signed attributes, so its signature does not cover a message digest"]
    values = {attr["type"].native: attr["values"] for attr in attrs}
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        return [f"unsupported digest algorithm {digest_name} in the signer info"]
    problems: list[str] = []
    content_type = values.get("content_type")
    if content_type is None or content_type[0].native != "tst_info":
        problems.append("content-type signed attribute missing or not id-ct-TSTInfo")
    econtent = bytes(signed_data["encap_content_info"]["content"])
    actual = hashlib.new(digest_name, econtent).hexdigest()
    signed = values.get("message_digest")
    if signed is None:
        problems.append("message-digest signed attribute missing: the TSTInfo is not bound to the signature")
    elif signed[0].native.hex() != actual:
        problems.append(
            f"message digest mismatch: the TSTInfo was altered after signing "
            f"(signed {digest_name} {signed[0].native.hex()}, TSTInfo hashes to {actual})"
        )
    if cert is not None:
        # RFC 5652 §5.4: the signature is over the DER of the attributes as a SET OF
        # (tag 0x31), not over the IMPLICIT [0] (0xA0) form they travel in. The
        # received bytes are re-tagged rather than re-encoded so that a TSA's
        # ordering is kept exactly as it signed it.
        signed_attrs_der = b"\x31" + attrs.dump()[1:]
        problems += _check_signature(signer_info, signed_attrs_der, cert, digest_name)
        problems += _check_ess_cert_id(values, cert)
    return problems


def _check_signature(
    signer_info: cms.SignerInfo, data: bytes, cert: x509.Certificate, digest_name: str
) -> list[str]:
    algorithm = signer_info["signature_algorithm"]
    name = algorithm.signature_algo
    signature = signer_info["signature"].native
    key = cert.public_key()
    try:
        if name == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[digest_name]())
        elif name == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = algorithm["parameters"]
            pss_hash = _hash(params["hash_algorithm"]["algorithm"].native)
            mgf_hash = _hash(params["mask_gen_algorithm"]["parameters"]["algorithm"].native)
            pss = padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=params["salt_length"].native)
            key.verify(signature, data, pss, pss_hash)
        elif name == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_HASHES[digest_name]()))
        else:
            return [f"signature algorithm {name} does not fit the signer's {type(key).__name__} key"]
    except InvalidSignature:
        return [
            "TSA signature does not verify: the signed attributes or the signature value were altered, "
            f"or {cert.subject.rfc4514_string()} did not sign them"
        ]
    return []


def _hash(name: str) -> hashes.HashAlgorithm:
    if name not in _HASHES:
        raise ValueError(f"unsupported hash algorithm {name}")
    return _HASHES[name]()


def _check_ess_cert_id(values: dict[str, cms.SetOfAny], cert: x509.Certificate) -> list[str]:
    """ESS signing-certificate(-v2) pins the signer certificate so it cannot be substituted."""
    if "signing_certificate_v2" in values:
        cert_id = values["signing_certificate_v2"][0]["certs"][0]
        algorithm = cert_id["hash_algorithm"]["algorithm"].native
    elif "signing_certificate" in values:
        cert_id, algorithm = values["signing_certificate"][0]["certs"][0], "sha1"
    else:
        return []
    der = cert.public_bytes(Encoding.DER)
    if hashlib.new(algorithm, der).digest() != cert_id["cert_hash"].native:
        return [
            "signing-certificate attribute names a different certificate than the signer's "
            f"({algorithm} ESSCertID hash mismatch for {cert.subject.rfc4514_string()})"
        ]
    return []


def _check_tsa_certificate(cert: x509.Certificate, gen_time: dt.datetime) -> list[str]:
    """RFC 3161 §2.3: only timeStamping, as a critical EKU; and valid when it signed."""
    problems: list[str] = []
    subject = cert.subject.rfc4514_string()
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        problems.append(f"signer certificate {subject} has no extended key usage timeStamping")
    else:
        if ExtendedKeyUsageOID.TIME_STAMPING not in eku.value:
            problems.append(f"signer certificate {subject} lacks extended key usage timeStamping")
        elif not eku.critical:
            problems.append(f"signer certificate {subject}: timeStamping key usage is not marked critical")
    if not cert.not_valid_before_utc <= gen_time <= cert.not_valid_after_utc:
        problems.append(
            f"signer certificate {subject} was not valid at genTime {gen_time.isoformat()} "
            f"(valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})"
        )
    return problems


def _check_chain(cert: x509.Certificate, trusted_ca_pem: bytes | None, gen_time: dt.datetime) -> list[str]:
    """The signer must be issued by (or be) one of the trusted certificates.

    Only direct issuance is followed: an operator who trusts an intermediate CA
    puts that intermediate in the PEM, and a pinned TSA certificate works too.
    """
    if trusted_ca_pem is None:
        return [NO_TRUSTED_CA]
    try:
        trusted = x509.load_pem_x509_certificates(trusted_ca_pem)
    except ValueError as exc:
        return [f"trusted TSA CA file holds no readable PEM certificate: {exc}"]
    for ca in trusted:
        if ca == cert:
            return []
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        if not ca.not_valid_before_utc <= gen_time <= ca.not_valid_after_utc:
            return [
                f"issuing CA {ca.subject.rfc4514_string()} was not valid at genTime {gen_time.isoformat()}"
            ]
        return []
    names = "; ".join(ca.subject.rfc4514_string() for ca in trusted)
    return [
        f"signer certificate {cert.subject.rfc4514_string()} (issuer {cert.issuer.rfc4514_string()}) "
        f"is not issued by a trusted TSA CA ({names})"
    ]
