"""RFC 3161 timestamps against a real TSA (``openssl ts -reply``), cross-checked by ``openssl ts -verify``."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from asn1crypto import cms

from cctv.local_tsa import DEFAULT_POLICY, TSA_CN, LocalTsa
from evidence_store.timestamp import (
    NO_TRUSTED_CA,
    TimestampError,
    build_request,
    parse_response,
    request_token,
    verify_token,
)
from tests.api_support import free_port

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(
    OPENSSL is None, reason="the OpenSSL CLI (openssl) is missing: it runs the local TSA and the cross-check"
)

DIGEST = hashlib.sha256(b"manifest.json bytes of an evidence item").hexdigest()
OTHER_DIGEST = hashlib.sha256(b"a different manifest").hexdigest()
QUERY_HEADERS = {"Content-Type": "application/timestamp-query"}


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    with LocalTsa(tmp_path_factory.mktemp("tsa-rsa")) as running:
        yield running


@pytest.fixture(scope="module")
def ec_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    """A second, unrelated TSA: ECDSA key, ESSCertID (SHA-1) instead of ESSCertIDv2."""
    with LocalTsa(tmp_path_factory.mktemp("tsa-ec"), key_type="ec", ess_cert_id_alg="sha1") as running:
        yield running


@pytest.fixture(scope="module")
def token(tsa: LocalTsa) -> bytes:
    return request_token(tsa.url, DIGEST, timeout_s=10)


def _ca(tsa: LocalTsa) -> bytes:
    return tsa.ca_pem_path.read_bytes()


def _openssl(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    cmd = [OPENSSL, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd)


def _signer_info(token: bytes) -> cms.SignerInfo:
    return cms.ContentInfo.load(token)["content"]["signer_infos"][0]


def _replace_once(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1, "the bytes to tamper with must occur exactly once"
    return data.replace(old, new)


# ----------------------------------------------------------------------------- round trip


def test_round_trip_verifies(token: bytes, tsa: LocalTsa) -> None:
    result = verify_token(token, DIGEST, _ca(tsa))
    assert result.ok, result.problems
    assert result.problems == ()
    assert result.gen_time is not None and result.gen_time.tzinfo is not None
    assert abs(result.gen_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert result.tsa_name is not None and f"CN={TSA_CN}" in result.tsa_name
    assert result.policy == DEFAULT_POLICY
    assert isinstance(result.serial_number, int) and result.serial_number > 0
    # the stored object is the bare token, not the TimeStampResp around it
    assert cms.ContentInfo.load(token)["content_type"].native == "signed_data"


def test_openssl_verifies_the_token_we_stored(token: bytes, tsa: LocalTsa, tmp_path: Path) -> None:
    (tmp_path / "manifest.tsr").write_bytes(token)
    ok = _openssl(
        "ts", "-verify", "-digest", DIGEST, "-in", tmp_path / "manifest.tsr", "-token_in", "-CAfile",
        tsa.ca_pem_path,
    )  # fmt: skip
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    wrong = _openssl(
        "ts", "-verify", "-digest", OTHER_DIGEST, "-in", tmp_path / "manifest.tsr", "-token_in", "-CAfile",
        tsa.ca_pem_path,
    )  # fmt: skip
    assert wrong.returncode != 0


def test_we_verify_a_token_openssl_requested_and_extracted(tsa: LocalTsa, tmp_path: Path) -> None:
    query = _openssl("ts", "-query", "-digest", DIGEST, "-sha256", "-cert", "-out", tmp_path / "q.tsq")
    assert query.returncode == 0, query.stderr
    answer = httpx.post(tsa.url, content=(tmp_path / "q.tsq").read_bytes(), headers=QUERY_HEADERS)
    assert answer.status_code == 200
    (tmp_path / "r.tsr").write_bytes(answer.content)
    extract = _openssl("ts", "-reply", "-in", tmp_path / "r.tsr", "-token_out", "-out", tmp_path / "t.der")
    assert extract.returncode == 0, extract.stderr
    result = verify_token((tmp_path / "t.der").read_bytes(), DIGEST, _ca(tsa))
    assert result.ok, result.problems


def test_ecdsa_tsa_with_ess_cert_id_v1(ec_tsa: LocalTsa, tmp_path: Path) -> None:
    ec_token = request_token(ec_tsa.url, DIGEST, timeout_s=10)
    signer_info = _signer_info(ec_token)
    assert signer_info["signature_algorithm"].signature_algo == "ecdsa"
    assert "signing_certificate" in {a["type"].native for a in signer_info["signed_attrs"]}
    result = verify_token(ec_token, DIGEST, _ca(ec_tsa))
    assert result.ok, result.problems
    (tmp_path / "t.der").write_bytes(ec_token)
    ok = _openssl("ts", "-verify", "-digest", DIGEST, "-in", tmp_path / "t.der", "-token_in", "-CAfile",
                  ec_tsa.ca_pem_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr


def test_rsa_pss_signature_made_by_openssl_cms(token: bytes, tsa: LocalTsa, tmp_path: Path) -> None:
    """openssl ts cannot sign with PSS, so openssl cms re-signs the same TSTInfo with PSS."""
    tst_info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].contents
    (tmp_path / "tst.der").write_bytes(tst_info)
    signed = _openssl(
        "cms", "-sign", "-binary", "-nodetach", "-nosmimecap", "-outform", "DER",
        "-econtent_type", "1.2.840.113549.1.9.16.1.4", "-in", "tst.der", "-out", "pss.der",
        "-signer", tsa.directory / "tsa.pem", "-inkey", tsa.directory / "tsa.key", "-md", "sha256",
        "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:32",
        cwd=tmp_path,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    pss_token = (tmp_path / "pss.der").read_bytes()
    assert _signer_info(pss_token)["signature_algorithm"].signature_algo == "rsassa_pss"
    result = verify_token(pss_token, DIGEST, _ca(tsa))
    assert result.ok, result.problems


# ----------------------------------------------------------------------------- verification failures


def test_different_document_is_named(token: bytes, tsa: LocalTsa) -> None:
    result = verify_token(token, OTHER_DIGEST, _ca(tsa))
    assert not result.ok
    assert result.problems == (
        f"timestamp covers a different document: token imprint {DIGEST}, manifest sha256 {OTHER_DIGEST}",
    )


def test_flipped_signature_byte_fails_the_signature(token: bytes, tsa: LocalTsa) -> None:
    signature = _signer_info(token)["signature"].native
    middle = len(signature) // 2
    altered = signature[:middle] + bytes([signature[middle] ^ 0x01]) + signature[middle + 1 :]
    result = verify_token(_replace_once(token, signature, altered), DIGEST, _ca(tsa))
    assert not result.ok
    assert len(result.problems) == 1
    assert result.problems[0].startswith("TSA signature does not verify")


def test_altered_gen_time_is_a_message_digest_mismatch(token: bytes, tsa: LocalTsa) -> None:
    tst = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    gen_time = tst["gen_time"].dump()  # 0x18 len "YYYYMMDDHHMMSSZ"
    seconds_digit = gen_time[-2]
    moved = gen_time[:-2] + bytes([ord("0") + (seconds_digit - ord("0") + 1) % 10]) + gen_time[-1:]
    result = verify_token(_replace_once(token, gen_time, moved), DIGEST, _ca(tsa))
    assert not result.ok
    assert len(result.problems) == 1
    assert result.problems[0].startswith("message digest mismatch: the TSTInfo was altered after signing")


def test_another_ca_is_not_trusted(token: bytes, ec_tsa: LocalTsa) -> None:
    result = verify_token(token, DIGEST, _ca(ec_tsa))
    assert not result.ok
    assert len(result.problems) == 1
    assert "is not issued by a trusted TSA CA" in result.problems[0]
    assert TSA_CN in result.problems[0]


def test_no_ca_means_not_ok(token: bytes) -> None:
    result = verify_token(token, DIGEST, None)
    assert not result.ok
    assert result.problems == (NO_TRUSTED_CA,)
    assert result.tsa_name is not None  # the signature itself was checked


def test_garbage_is_a_parse_problem() -> None:
    result = verify_token(b"not a token at all", DIGEST, None)
    assert not result.ok and result.gen_time is None
    assert result.problems[0].startswith("not an RFC 3161 timestamp token:")


def test_signed_data_that_is_not_a_timestamp(tsa: LocalTsa, tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"some document")
    signed = _openssl(
        "cms", "-sign", "-binary", "-nodetach", "-outform", "DER", "-in", "data.bin", "-out", "s.der",
        "-signer", tsa.directory / "tsa.pem", "-inkey", tsa.directory / "tsa.key", cwd=tmp_path,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    result = verify_token((tmp_path / "s.der").read_bytes(), DIGEST, _ca(tsa))
    assert not result.ok
    assert "not id-ct-TSTInfo" in result.problems[0]


# ----------------------------------------------------------------------------- requesting


def test_closed_port_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/tsa"
    with pytest.raises(TimestampError, match=f"TSA {url} unreachable"):
        request_token(url, DIGEST, timeout_s=2)


def test_http_error_status_is_reported(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # answers POST with 501
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(TimestampError, match="answered HTTP 501"):
            request_token(f"http://127.0.0.1:{server.server_address[1]}/", DIGEST, timeout_s=5)
    finally:
        server.shutdown()
        server.server_close()


def test_unsupported_policy_is_a_rejection(tsa: LocalTsa) -> None:
    query = build_request(DIGEST, 7, policy="1.2.3.4.99")
    answer = httpx.post(tsa.url, content=query, headers=QUERY_HEADERS)
    assert answer.status_code == 200
    with pytest.raises(TimestampError, match=r"PKIStatus rejection, failInfo unaccepted_policy") as err:
        parse_response(answer.content, DIGEST, 7)
    assert "Requested policy is not supported" in str(err.value)


def test_malformed_request_is_a_rejection(tsa: LocalTsa) -> None:
    answer = httpx.post(tsa.url, content=b"\x30\x03garbage", headers=QUERY_HEADERS)
    assert answer.status_code == 200
    with pytest.raises(TimestampError, match=r"PKIStatus rejection, failInfo bad_data_format"):
        parse_response(answer.content, DIGEST, 7)


def test_reply_for_another_request_is_refused(tsa: LocalTsa) -> None:
    answer = httpx.post(tsa.url, content=build_request(DIGEST, 41), headers=QUERY_HEADERS)
    assert parse_response(answer.content, DIGEST, 41)  # the genuine pairing is accepted
    with pytest.raises(TimestampError, match="nonce 41, asked 42"):
        parse_response(answer.content, DIGEST, 42)
    with pytest.raises(TimestampError, match="timestamp covers a different document"):
        parse_response(answer.content, OTHER_DIGEST, 41)


def test_restart_reuses_the_ca(tmp_path: Path) -> None:
    with LocalTsa(tmp_path) as first:
        ca_before = _ca(first)
        earlier = request_token(first.url, DIGEST, timeout_s=10)
    with LocalTsa(tmp_path) as second:
        assert _ca(second) == ca_before
        later = request_token(second.url, DIGEST, timeout_s=10)
    assert verify_token(earlier, DIGEST, ca_before).ok
    later_result = verify_token(later, DIGEST, ca_before)
    assert later_result.ok, later_result.problems
    assert later_result.serial_number != verify_token(earlier, DIGEST, ca_before).serial_number
