"""A real RFC 3161 time-stamping authority on 127.0.0.1, backed by ``openssl ts -reply``.

Tests and the local demo need a TSA that signs exactly like a production one, so
the tokens they store can be checked by an independent implementation
(``openssl ts -verify``). Rather than re-implementing a TSA, each POSTed
TimeStampReq is handed to the OpenSSL CLI and its full TimeStampResp (granted or
rejection) is returned, as RFC 3161 §3.4 (HTTP transport) describes.

The directory keeps the CA, the TSA certificate and key, the OpenSSL config and
the serial file. Existing keys and certificates are reused on restart so tokens
issued earlier keep verifying against the same ``ca.pem``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

KeyType = Literal["rsa", "ec"]
OPENSSL = "/usr/bin/openssl"
TSA_CN = "CCTV Local Test TSA"
CA_CN = "CCTV Local Test TSA Root CA"
DEFAULT_POLICY = "1.3.6.1.4.1.99999.3161.1"
MAX_QUERY_BYTES = 64 * 1024  # a TimeStampReq is a few hundred bytes; refuse anything absurd
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# Relative file names: openssl runs with cwd = the directory, so the config never
# has to quote a path ($, # and spaces are special in OpenSSL config syntax).
_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
serial = ./tsaserial
crypto_device = builtin
signer_cert = ./tsa.pem
certs = ./ca.pem
signer_key = ./tsa.key
signer_digest = sha256
default_policy = {policy}
digests = sha256, sha384, sha512
accuracy = secs:1
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = {ess_cert_id_alg}
"""


class LocalTsaError(RuntimeError):
    """The local TSA cannot start (e.g. the OpenSSL CLI is missing)."""


def _new_key(key_type: KeyType) -> PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _load_key(path: Path) -> PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise LocalTsaError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cctv")]
    )


def _make_ca(key: PrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(CA_CN))
        .issuer_name(_name(CA_CN))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _make_tsa_cert(key: PrivateKey, ca: x509.Certificate, ca_key: PrivateKey) -> x509.Certificate:
    """RFC 3161 §2.3: the signing certificate carries only timeStamping, as a *critical* EKU."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(TSA_CN))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # tolerate a TSA clock slightly behind ours
        .not_valid_after(now + dt.timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class LocalTsa:
    """RFC 3161 TSA over HTTP for tests and the demo; use as a context manager.

    ``key_type`` and ``ess_cert_id_alg`` ("sha256" -> ESSCertIDv2, "sha1" ->
    ESSCertID) only matter when the directory has no keys yet.
    """

    def __init__(
        self,
        directory: Path,
        port: int = 0,
        *,
        key_type: KeyType = "rsa",
        ess_cert_id_alg: Literal["sha1", "sha256"] = "sha256",
        policy: str = DEFAULT_POLICY,
    ) -> None:
        self.directory = Path(directory)
        self._port = port
        self._key_type: KeyType = key_type
        self._ess_cert_id_alg = ess_cert_id_alg
        self.policy = policy
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # openssl rewrites the serial file on each reply: one reply at a time.
        self._reply_lock = threading.Lock()

    @property
    def url(self) -> str:
        if self._server is None:
            raise LocalTsaError("local TSA is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}/tsa"

    @property
    def ca_pem_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def config_path(self) -> Path:
        return self.directory / "tsa.cnf"

    def start(self) -> LocalTsa:
        if not Path(OPENSSL).is_file() and shutil.which("openssl") is None:
            raise LocalTsaError(f"the OpenSSL CLI ({OPENSSL}) is missing; the local TSA runs `openssl ts`")
        self._ensure_pki()
        server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="local-tsa", daemon=True)
        self._thread.start()
        log.info("local TSA serving %s (CA %s)", self.url, self.ca_pem_path)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalTsa:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reply(self, query: bytes) -> bytes | None:
        """The DER TimeStampResp openssl gives for ``query``; None when openssl produced no reply."""
        openssl = OPENSSL if Path(OPENSSL).is_file() else (shutil.which("openssl") or OPENSSL)
        with self._reply_lock, tempfile.TemporaryDirectory(dir=self.directory) as tmp:
            query_path, reply_path = Path(tmp) / "query.tsq", Path(tmp) / "reply.tsr"
            query_path.write_bytes(query)
            cmd = [openssl, "ts", "-reply", "-config", "tsa.cnf", "-queryfile", str(query_path)]
            result = subprocess.run(
                [*cmd, "-out", str(reply_path)], cwd=self.directory, capture_output=True, timeout=30
            )
            if result.returncode != 0 or not reply_path.is_file():
                log.warning("openssl ts -reply failed: %s", result.stderr.decode(errors="replace")[-500:])
                return None
            return reply_path.read_bytes()

    def _ensure_pki(self) -> None:
        """Create the CA and TSA certificate once; reuse them on every later start."""
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        if (d / "ca.key").is_file() and (d / "ca.pem").is_file():
            ca_key = _load_key(d / "ca.key")
            ca = x509.load_pem_x509_certificate((d / "ca.pem").read_bytes())
        else:
            ca_key = _new_key(self._key_type)
            ca = _make_ca(ca_key)
            _write_key(d / "ca.key", ca_key)
            (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        if not ((d / "tsa.key").is_file() and (d / "tsa.pem").is_file()):
            tsa_key = _new_key(self._key_type)
            _write_key(d / "tsa.key", tsa_key)
            tsa_cert = _make_tsa_cert(tsa_key, ca, ca_key)
            (d / "tsa.pem").write_bytes(tsa_cert.public_bytes(serialization.Encoding.PEM))
        if not (d / "tsaserial").is_file():
            (d / "tsaserial").write_text("01\n")
        config = _CONFIG.format(policy=self.policy, ess_cert_id_alg=self._ess_cert_id_alg)
        self.config_path.write_text(config)


def _handler_for(tsa: LocalTsa) -> type[BaseHTTPRequestHandler]:
    class _TsaHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            declared = self.headers.get("Content-Length", "")
            length = int(declared) if declared.isdigit() else 0
            if not 0 < length <= MAX_QUERY_BYTES:
                self._answer(400, b"expected a DER TimeStampReq body", "text/plain")
                return
            answer = tsa.reply(self.rfile.read(length))
            if answer is None:
                self._answer(500, b"openssl ts -reply produced no response", "text/plain")
                return
            self._answer(200, answer, "application/timestamp-reply")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("local TSA: " + format, *args)

    return _TsaHandler
