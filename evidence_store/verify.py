"""``cctv verify``: checks an export bundle offline with nothing but the bundle and trusted public keys.

Pure (bytes in, report out) and light: it needs only the standard library, pydantic and PyNaCl
(no video or image libraries), so it runs on any machine a solicitor or expert witness has.

What is checked, each as a named :class:`Check` (the names are stable identifiers):

- ``bundle.archive``: the ZIP is readable, no member is corrupt or duplicated;
- ``bundle.index``: ``bundle.json`` is a well-formed index;
- ``bundle.signature``: ``bundle.json`` is signed by a trusted key (the index lists the SHA-256
  of every other file, so this signature seals the whole bundle);
- ``bundle.files``: every listed file is present with its SHA-256 and size; no file missing, no
  unlisted file added;
- per item, ``item[<exhibit ref>].…`` (see :mod:`evidence_store.verify_item`): the manifest, its
  signature and digest, master and working copy hashes, every frame of the master in order,
  the custody chain, the custody checkpoint, the RFC 3161 timestamp and the redactions. For an
  item the signed index marks ``redacted``, the master and working copy checks confirm they
  were withheld (and what the manifest says they hash to) and the redactions check requires a
  redacted copy linked by a signed record to the master (:mod:`evidence_store.verify_redactions`).

A malformed bundle never raises: every problem becomes a FAIL naming the file and the cause.
Trust comes only from the keys passed in, never from keys inside the bundle.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from cctv.contracts import sha256_hex
from evidence_store.bundle import BUNDLE_VERSION, CONTENTS, FULL, INDEX, INDEX_SIGNATURE, TSA_CA, UNLISTED
from evidence_store.verify_common import Check, TrustedKeys, guarded, signature_check, trusted_keys
from evidence_store.verify_item import ItemContext, verify_item

__all__ = ["Check", "VerificationReport", "trusted_keys", "verify_bundle"]


@dataclass
class VerificationReport:
    """Every check that was run, in order; ``ok`` only if there was at least one and all passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def add(self, check: Check) -> None:
        self.checks.append(check)

    def summary(self) -> str:
        if self.ok:
            return f"VERIFIED: all {len(self.checks)} checks passed"
        failed = self.failures
        names = ", ".join(check.name for check in failed)
        return f"NOT VERIFIED: {len(failed)} of {len(self.checks)} checks failed: {names}"

    def render(self) -> str:
        lines = [f"{'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        return "\n".join([*lines, self.summary()]) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


# --------------------------------------------------------------------------- archive


def _read_archive(bundle: bytes | Path) -> tuple[dict[str, bytes] | None, Check]:
    """Every member's bytes, or None when there is nothing to verify."""
    if isinstance(bundle, Path):
        try:
            data = bundle.read_bytes()
        except OSError as exc:
            return None, Check("bundle.archive", False, f"cannot read {bundle}: {exc}")
    else:
        data = bundle
    try:
        archive = zipfile.ZipFile(BytesIO(data))
    except Exception as exc:  # BadZipFile, struct.error, ...: whatever the container, never raise
        return None, Check("bundle.archive", False, f"not a readable ZIP archive: {exc}")
    members: dict[str, bytes] = {}
    problems: list[str] = []
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            if info.filename in members:
                problems.append(f"{info.filename} appears more than once")
                continue
            try:
                members[info.filename] = archive.read(info)
            except Exception as exc:  # zlib, struct, encryption...: any corrupt member is a FAIL
                problems.append(f"{info.filename} cannot be read ({exc})")
    if problems:
        return members, Check("bundle.archive", False, "; ".join(problems))
    return members, Check("bundle.archive", True, f"ZIP archive of {len(members)} files, all readable")


# --------------------------------------------------------------------------- index


def _index_problems(index: Any) -> list[str]:
    if not isinstance(index, dict):
        return ["bundle.json is not a JSON object"]
    problems = []
    if index.get("bundle_version") != BUNDLE_VERSION:
        problems.append(
            f"bundle_version {index.get('bundle_version')!r}, this verifier reads {BUNDLE_VERSION}"
        )
    items = index.get("items")
    if not isinstance(items, list) or not items:
        problems.append("no items listed")
    else:
        for position, item in enumerate(items):
            if not isinstance(item, dict) or not all(
                isinstance(item.get(key), str) for key in ("evidence_id", "exhibit_ref", "path")
            ):
                problems.append(f"item {position} lacks evidence_id, exhibit_ref or path")
            elif item.get("contents", FULL) not in CONTENTS:
                problems.append(
                    f"item {position} has contents {item.get('contents')!r}, not one of {', '.join(CONTENTS)}"
                )
            elif not isinstance(item.get("withheld", {}), dict):
                problems.append(f"item {position} has a 'withheld' that is not a map")
        paths = [
            item["path"] for item in items if isinstance(item, dict) and isinstance(item.get("path"), str)
        ]
        if len(set(paths)) != len(paths):
            problems.append("two items share one folder")
    files = index.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        problems.append("no valid 'files' map")
    return problems


def _read_index(members: Mapping[str, bytes]) -> tuple[dict[str, Any] | None, Check]:
    raw = members.get(INDEX)
    if raw is None:
        return None, Check("bundle.index", False, f"{INDEX} is missing")
    try:
        index = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, Check("bundle.index", False, f"{INDEX} is not valid JSON ({exc})")
    problems = _index_problems(index)
    if problems:
        return None, Check("bundle.index", False, "; ".join(problems))
    who = index["produced_by"] if isinstance(index.get("produced_by"), dict) else {}
    detail = (
        f"export {index.get('export_id')} created {index.get('created_at')} by {who.get('actor')} "
        f"({who.get('role')}), {len(index['items'])} item(s), {len(index['files'])} files listed"
    )
    return index, Check("bundle.index", True, detail)


def _bundle_files(members: Mapping[str, bytes], index: dict[str, Any] | None) -> Check:
    if index is None:
        return Check("bundle.files", False, f"{INDEX} unusable: the file list cannot be checked")
    listed: dict[str, Any] = index["files"]
    problems = []
    for name in sorted(listed):
        entry, data = listed[name], members.get(name)
        if data is None:
            problems.append(f"{name} is listed but missing")
        elif entry.get("sha256") != sha256_hex(data) or entry.get("size") != len(data):
            problems.append(
                f"{name} altered: sha256 {sha256_hex(data)} size {len(data)}, bundle.json lists "
                f"sha256 {entry.get('sha256')} size {entry.get('size')}"
            )
    problems += [
        f"{name} is an extra file not listed in bundle.json"
        for name in sorted(members)
        if name not in listed and name not in UNLISTED
    ]
    if problems:
        return Check("bundle.files", False, "; ".join(problems))
    return Check("bundle.files", True, f"all {len(listed)} listed files present, SHA-256 and size match")


# --------------------------------------------------------------------------- items


def _item_contexts(members: Mapping[str, bytes], index: dict[str, Any] | None) -> list[ItemContext]:
    """Items from the index; without a usable index, every ``items/<folder>/`` found in the ZIP."""
    if index is not None:
        entries = [
            (item["exhibit_ref"], item["evidence_id"], item["path"].rstrip("/"), item)
            for item in index["items"]
        ]
    else:
        folders = sorted(
            {"/".join(n.split("/")[:2]) for n in members if n.startswith("items/") and n.count("/") >= 2}
        )
        entries = [(folder.split("/", 1)[1], None, folder, None) for folder in folders]
    contexts = []
    for ref, evidence_id, folder, entry in entries:
        files = {
            name[len(folder) + 1 :]: data for name, data in members.items() if name.startswith(folder + "/")
        }
        contexts.append(ItemContext(ref, evidence_id, folder, files, entry))
    return contexts


def verify_bundle(
    bundle: bytes | Path, public_keys: Sequence[str | bytes], tsa_ca_pem: bytes | None = None
) -> VerificationReport:
    """Every check of ``bundle`` against ``public_keys`` (raw, hex or base64 Ed25519 public keys).

    ``tsa_ca_pem``: the trusted timestamp authority CA; without it the bundle's ``tsa-ca.pem`` is
    used and the report says so. Raises ValueError only for unusable *keys* (a caller error);
    anything wrong with the bundle is a FAIL in the report.
    """
    trusted: TrustedKeys = trusted_keys(public_keys)
    report = VerificationReport()
    members, archive_check = _read_archive(bundle)
    report.add(archive_check)
    if members is None:
        return report
    try:
        index, index_check = _read_index(members)
    except Exception as exc:  # untrusted input: an index shaped in a way no check anticipated
        index, index_check = None, Check("bundle.index", False, f"malformed ({type(exc).__name__}: {exc})")
    report.add(index_check)
    report.add(
        guarded(
            "bundle.signature",
            lambda: signature_check(
                "bundle.signature",
                members.get(INDEX),
                members.get(INDEX_SIGNATURE),
                trusted,
                INDEX,
                INDEX_SIGNATURE,
            ),
        )
    )
    report.add(guarded("bundle.files", lambda: _bundle_files(members, index)))
    contexts = _item_contexts(members, index)
    if not contexts:
        report.add(Check("bundle.items", False, "no evidence item found in the bundle"))
    for context in contexts:
        for check in verify_item(context, trusted, tsa_ca_pem, members.get(TSA_CA)):
            report.add(check)
    return report
