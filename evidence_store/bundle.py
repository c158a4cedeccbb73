"""The court export bundle: one ZIP holding everything needed to check an evidence item (or a
whole case) offline with nothing but the bundle and the operator's public key. Pure: bytes in,
bytes out, so the API builds it in memory and :mod:`evidence_store.verify` checks it anywhere.

Layout::

    README.txt              plain-language verification instructions
    exhibit_report.txt      human-readable exhibit report (:mod:`evidence_store.exhibit_report`)
    bundle.json             the index (below), canonical JSON
    bundle.sig.json         Ed25519 signature artifact of bundle.json's exact bytes
    public_key.txt          the signing public key, base64 (informational: trust comes from the
                            key given to ``cctv verify``, never from the bundle)
    tsa-ca.pem              optional: the timestamp authority's CA certificate(s)
    items/<exhibit ref, path-safe>/
        manifest.json       the signed evidence manifest, exactly as sealed
        manifest.sig.json   its signature artifact
        manifest.tsr        optional: RFC 3161 timestamp token over the manifest's SHA-256
        master.tar          the frames exactly as ingested (not in a redacted bundle)
        working.mp4         optional: the H.264 working copy with burn-in (not in a redacted bundle)
        custody.jsonl       the item's whole custody chain, one canonical-JSON entry per line
        checkpoint.json     optional: the latest signed custody checkpoint covering the item
        checkpoint.sig.json its signature artifact
        redactions/*        optional: redacted derivatives, each with a signed record
                            ``<stem>.json`` + ``<stem>.sig.json`` naming the master's SHA-256
                            and the derivative's SHA-256

``bundle.json``: ``bundle_version``, ``export_id``, ``created_at`` (UTC), ``produced_by``
{actor, role}, ``reason``, ``recipient``, ``organisation``, ``case`` {reference, title} or
null, ``signing_key_id``, ``items`` [{evidence_id, exhibit_ref, path, manifest_sha256,
custody_head {seq, hash} or null, contents, withheld}] and ``files`` {path: {sha256, size}}
for every member except bundle.json and bundle.sig.json. Signing the index therefore seals
every byte of the bundle; ``custody_head`` makes a chain cut short at its tail detectable,
which the hash chain alone cannot show.

Two profiles (``ExportRequest.contents``), recorded per item in the signed index:

- ``full``: the master (and working copy) are in the bundle; ``withheld`` is ``{}``.
- ``redacted``: a disclosure to a third party (insurer, member of the public), where the ICO's
  CCTV guidance wants people other than the subjects obscured. The item carries its manifest,
  signatures, timestamp, custody and checkpoint and its redacted copies with their signed
  records, but NOT master.tar or working.mp4; ``withheld`` {file: {sha256, size}} says, from
  the signed manifest, what the withheld files hash to. Because the index is signed, a verifier
  can tell "withheld on purpose" from "deleted from a full bundle", and flipping ``contents``
  breaks the signature. A missing ``contents`` (older bundles) reads as ``full``.

Deterministic: fixed member order, every member dated ``created_at``, mode 0444, Unix
attributes; master/working copy (already compressed or large binary) are stored, text deflated.
"""

from __future__ import annotations

import base64
import json
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, Literal, get_args

from cctv.contracts import sha256_hex
from evidence_store.custody import CustodyEntry, canonical
from evidence_store.exhibit_report import ItemSummary, render_exhibit_report, render_readme
from evidence_store.signing import ManifestSigner

BUNDLE_VERSION = 1
README = "README.txt"
EXHIBIT_REPORT = "exhibit_report.txt"
INDEX = "bundle.json"
INDEX_SIGNATURE = "bundle.sig.json"
PUBLIC_KEY = "public_key.txt"
TSA_CA = "tsa-ca.pem"
UNLISTED = frozenset({INDEX, INDEX_SIGNATURE})  # the index cannot list itself or its signature

MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig.json"
TIMESTAMP_TOKEN = "manifest.tsr"  # noqa: S105 - a file name, not a secret
MASTER = "master.tar"
WORKING_COPY = "working.mp4"
CUSTODY = "custody.jsonl"
CHECKPOINT = "checkpoint.json"
CHECKPOINT_SIGNATURE = "checkpoint.sig.json"
REDACTIONS = "redactions"
SIGNATURE_SUFFIX = ".sig.json"
RECORD_SUFFIX = ".json"

Contents = Literal["full", "redacted"]
FULL: Contents = "full"
REDACTED: Contents = "redacted"
CONTENTS: tuple[str, ...] = get_args(Contents)
# What a redacted bundle leaves out, and the manifest artifact that records each file's hash.
WITHHELD_ARTIFACTS = {MASTER: "master", WORKING_COPY: "working_copy"}
STORED_SUFFIXES = (".tar", ".mp4", ".jpg", ".jpeg", ".png", ".tsr")  # compressed or binary: no deflate

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ZIP_EPOCH = datetime(1980, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BundleItem:
    """One evidence item as read back (and hash-checked) from the store.

    ``master`` and ``working_copy`` are None for a redacted bundle: the builder refuses their
    bytes there, so unredacted footage cannot reach a third party by mistake."""

    evidence_id: str
    exhibit_ref: str
    manifest: bytes
    signature: bytes
    master: bytes | None
    working_copy: bytes | None
    timestamp_token: bytes | None
    custody: Sequence[CustodyEntry]
    checkpoint: tuple[bytes, bytes] | None  # (checkpoint.json, checkpoint.sig.json)
    derivatives: Mapping[str, bytes] = field(default_factory=dict)  # name -> bytes, under redactions/


@dataclass(frozen=True)
class ExportRequest:
    """Who exports, when, for whom and why: recorded in the index and the exhibit report."""

    export_id: str
    created_at: datetime
    actor: str
    role: str
    reason: str
    recipient: str | None
    organisation: str | None
    case_reference: str | None
    case_title: str | None
    contents: Contents = FULL  # "redacted": redacted copies only, master and working copy withheld


def path_safe(name: str) -> str:
    """A single path component from an exhibit reference (``JS/1`` -> ``JS_1``); never empty or dotted."""
    safe = _UNSAFE.sub("_", name.strip()).lstrip(".")
    if not safe:
        raise ValueError(f"{name!r} gives an empty file name")
    return safe


def custody_jsonl(entries: Sequence[CustodyEntry]) -> bytes:
    """One canonical-JSON entry per line: the exact field values that were hashed."""
    return b"".join(canonical(entry.model_dump(mode="json")) + b"\n" for entry in entries)


def string_values(document: Any) -> Iterator[str]:
    """Every string anywhere in a JSON document: a redaction record names the master and its
    derivative by SHA-256, wherever its format puts them."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for value in document.values():
            yield from string_values(value)
    elif isinstance(document, list):
        for value in document:
            yield from string_values(value)


def redaction_links(derivatives: Mapping[str, bytes], master_sha256: str) -> list[tuple[str, str]]:
    """(derivative, record) for every redacted copy whose record (with a signature file beside it)
    names both the copy's SHA-256 and ``master_sha256``; signatures are not checked here (the
    verifier does), this only says which record belongs to which copy."""
    records: dict[str, set[str]] = {}
    for name in sorted(derivatives):
        stem = name[: -len(RECORD_SUFFIX)]
        if name.endswith(SIGNATURE_SUFFIX) or not name.endswith(RECORD_SUFFIX):
            continue
        if stem + SIGNATURE_SUFFIX not in derivatives:
            continue
        try:
            records[name] = set(string_values(json.loads(derivatives[name])))
        except (ValueError, UnicodeDecodeError):
            continue
    links = []
    for name in sorted(n for n in derivatives if not n.endswith(RECORD_SUFFIX)):
        digest = sha256_hex(derivatives[name])
        record = next((r for r, values in records.items() if {digest, master_sha256} <= values), None)
        if record is not None:
            links.append((name, record))
    return links


def manifest_document(manifest: bytes) -> dict[str, Any]:
    document = json.loads(manifest)
    if not isinstance(document, dict) or not isinstance(document.get("artifacts"), dict):
        raise ValueError("the manifest is not a JSON object with artifacts")
    return document


def withheld_files(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{file: {sha256, size}} of what a redacted bundle leaves out, as the signed manifest records."""
    withheld = {}
    for file_name, kind in WITHHELD_ARTIFACTS.items():
        artifact = manifest["artifacts"].get(kind)
        if isinstance(artifact, dict):
            withheld[file_name] = {"sha256": artifact["sha256"], "size": artifact["size"]}
    return withheld


def _check_item(item: BundleItem, contents: str) -> None:
    """Refuse what must never be bundled: a full item without its master; a redacted item with
    unredacted bytes, or with no redacted copy linked to its master."""
    if contents == FULL:
        if item.master is None:
            raise ValueError(f"item {item.exhibit_ref}: a full bundle needs the master")
        return
    if item.master is not None or item.working_copy is not None:
        raise ValueError(
            f"item {item.exhibit_ref}: master/working copy bytes given for a redacted bundle; "
            "the unredacted footage must be withheld"
        )
    master_sha = manifest_document(item.manifest)["artifacts"]["master"]["sha256"]
    if not redaction_links(item.derivatives, master_sha):
        raise ValueError(
            f"item {item.exhibit_ref}: a redacted bundle needs a redaction: a redacted copy with its "
            f"signed record naming master sha256 {master_sha}; none given"
        )


def _derivative_name(name: str) -> str:
    if name != path_safe(name):
        raise ValueError(f"derivative name {name!r} is not a plain file name")
    return name


def item_members(item: BundleItem, folder: str) -> list[tuple[str, bytes]]:
    """The item's files in their fixed bundle order."""
    members = [(MANIFEST, item.manifest), (MANIFEST_SIGNATURE, item.signature)]
    if item.timestamp_token is not None:
        members.append((TIMESTAMP_TOKEN, item.timestamp_token))
    if item.master is not None:
        members.append((MASTER, item.master))
    if item.working_copy is not None:
        members.append((WORKING_COPY, item.working_copy))
    members.append((CUSTODY, custody_jsonl(item.custody)))
    if item.checkpoint is not None:
        members += [(CHECKPOINT, item.checkpoint[0]), (CHECKPOINT_SIGNATURE, item.checkpoint[1])]
    for name in sorted(item.derivatives):
        members.append((f"{REDACTIONS}/{_derivative_name(name)}", item.derivatives[name]))
    return [(f"{folder}/{name}", data) for name, data in members]


def _folders(items: Sequence[BundleItem]) -> list[str]:
    if not items:
        raise ValueError("an export bundle needs at least one evidence item")
    refs = [item.exhibit_ref for item in items]
    folders = [f"items/{path_safe(ref)}" for ref in refs]
    for values, what in ((refs, "exhibit reference"), (folders, "item folder")):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(f"duplicate {what}(s) in one bundle: {', '.join(dupes)}")
    return folders


def file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": sha256_hex(data), "size": len(data)}


def bundle_index(
    request: ExportRequest,
    signer_key_id: str,
    items: Sequence[BundleItem],
    folders: Sequence[str],
    files: Mapping[str, bytes],
) -> dict[str, Any]:
    case = None
    if request.case_reference is not None or request.case_title is not None:
        case = {"reference": request.case_reference, "title": request.case_title}
    return {
        "bundle_version": BUNDLE_VERSION,
        "export_id": request.export_id,
        "created_at": request.created_at.astimezone(UTC).isoformat(),
        "produced_by": {"actor": request.actor, "role": request.role},
        "reason": request.reason,
        "recipient": request.recipient,
        "organisation": request.organisation,
        "case": case,
        "signing_key_id": signer_key_id,
        "items": [
            {
                "evidence_id": item.evidence_id,
                "exhibit_ref": item.exhibit_ref,
                "path": folder,
                "manifest_sha256": sha256_hex(item.manifest),
                "custody_head": (
                    {"seq": item.custody[-1].seq, "hash": item.custody[-1].entry_hash}
                    if item.custody
                    else None
                ),
                "contents": request.contents,
                "withheld": (
                    withheld_files(manifest_document(item.manifest)) if request.contents == REDACTED else {}
                ),
            }
            for item, folder in zip(items, folders, strict=True)
        ],
        "files": {name: file_entry(data) for name, data in files.items()},
    }


def _zip(members: Sequence[tuple[str, bytes]], created_at: datetime) -> bytes:
    moment = max(created_at.astimezone(UTC), _ZIP_EPOCH)
    stamp = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3  # Unix, whatever the building machine: same bytes everywhere
            info.external_attr = (0o100444 & 0xFFFF) << 16
            stored = name.lower().endswith(STORED_SUFFIXES)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=None if stored else 9)
    return buffer.getvalue()


def _summary(item: BundleItem, folder: str, contents: Contents) -> ItemSummary:
    if contents == FULL:
        return ItemSummary(
            item.evidence_id, item.exhibit_ref, folder, item.manifest, item.custody, item.timestamp_token
        )
    document = manifest_document(item.manifest)
    links = redaction_links(item.derivatives, document["artifacts"]["master"]["sha256"])
    return ItemSummary(
        item.evidence_id,
        item.exhibit_ref,
        folder,
        item.manifest,
        item.custody,
        item.timestamp_token,
        contents=contents,
        withheld=withheld_files(document),
        redactions=[(f"{REDACTIONS}/{video}", f"{REDACTIONS}/{record}") for video, record in links],
    )


def build_bundle(
    items: Sequence[BundleItem],
    request: ExportRequest,
    signer: ManifestSigner,
    tsa_ca_pem: bytes | None = None,
) -> bytes:
    """The signed export ZIP of ``items`` (in the given order) for ``request``; deterministic."""
    if request.created_at.tzinfo is None:
        raise ValueError("export time must be timezone-aware")
    if request.contents not in CONTENTS:
        raise ValueError(f"contents {request.contents!r}: one of {', '.join(CONTENTS)}")
    folders = _folders(items)
    for item in items:
        _check_item(item, request.contents)
    pairs = list(zip(items, folders, strict=True))
    item_files = [item_members(item, folder) for item, folder in pairs]
    summaries = [_summary(item, folder, request.contents) for item, folder in pairs]
    listed: dict[str, bytes] = {
        README: render_readme(request, signer.key_id, folders, tsa_ca_pem is not None).encode("utf-8"),
        EXHIBIT_REPORT: render_exhibit_report(
            summaries, request, signer.key_id, [dict(files) for files in item_files], tsa_ca_pem
        ).encode("utf-8"),
        PUBLIC_KEY: base64.b64encode(signer.public_key) + b"\n",
    }
    if tsa_ca_pem is not None:
        listed[TSA_CA] = tsa_ca_pem
    for files in item_files:
        listed.update(files)
    index = canonical(bundle_index(request, signer.key_id, items, folders, listed))
    head = [(README, listed[README]), (EXHIBIT_REPORT, listed[EXHIBIT_REPORT])]
    head += [(INDEX, index), (INDEX_SIGNATURE, signer.sign(index))]
    rest = [(name, data) for name, data in listed.items() if name not in {README, EXHIBIT_REPORT}]
    return _zip(head + rest, request.created_at)
