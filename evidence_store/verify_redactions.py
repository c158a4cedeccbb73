"""The offline checks that concern redactions: the redacted copies of an item, and, in a redacted
disclosure, the unredacted files the signed index says were withheld.

Why separate checks for "withheld": a redacted disclosure (ICO CCTV guidance: people other than
the subjects obscured before footage goes to a third party) must not carry the master, yet must
still prove what it is a redaction *of*. The proof is a chain of signatures: the signed index
says the item is redacted and what the withheld files hash to; the signed manifest records the
same hashes; a signed redaction record names the master's hash and the redacted video's hash;
the video in the bundle has that hash. A full bundle whose master was removed is still a FAIL,
because its signed index says ``full``, and flipping that word breaks the index's signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cctv.contracts import sha256_hex
from evidence_store.bundle import RECORD_SUFFIX, SIGNATURE_SUFFIX, string_values
from evidence_store.verify_common import Check, TrustedKeys, signature_check

WITHHELD = "withheld from this redacted disclosure"


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    derivatives: list[str] = field(default_factory=list)
    linked: list[tuple[str, str]] = field(default_factory=list)  # (copy, record) tied to the master


def _valid_records(
    files: Mapping[str, bytes], trusted: TrustedKeys, master_sha: str | None, found: _Findings
) -> tuple[set[str], dict[str, set[str]]]:
    """Strings of every validly signed record (``covered``), and of those naming the master."""
    covered: set[str] = set()
    of_master: dict[str, set[str]] = {}
    records = sorted(n for n in files if n.endswith(RECORD_SUFFIX) and not n.endswith(SIGNATURE_SUFFIX))
    for record in records:
        sig_name = record[: -len(RECORD_SUFFIX)] + SIGNATURE_SUFFIX
        signed = signature_check("", files[record], files.get(sig_name), trusted, record, sig_name)
        if not signed.ok:
            found.problems.append(f"{record}: {signed.detail}")
            continue
        try:
            values = set(string_values(json.loads(files[record])))
        except (ValueError, UnicodeDecodeError):
            found.problems.append(f"{record} is not valid JSON")
            continue
        if master_sha is None or master_sha not in values:
            found.problems.append(f"{record} does not name this item's master sha256 {master_sha}")
        else:
            of_master[record] = values
        covered |= values
    return covered, of_master


def _findings(files: Mapping[str, bytes], trusted: TrustedKeys, master_sha: str | None) -> _Findings:
    found = _Findings()
    covered, of_master = _valid_records(files, trusted, master_sha, found)
    for sig_name in sorted(n for n in files if n.endswith(SIGNATURE_SUFFIX)):
        if sig_name[: -len(SIGNATURE_SUFFIX)] + RECORD_SUFFIX not in files:
            found.problems.append(
                f"{sig_name} has no record {sig_name[: -len(SIGNATURE_SUFFIX)]}{RECORD_SUFFIX}"
            )
    found.derivatives = sorted(n for n in files if not n.endswith(RECORD_SUFFIX))
    for name in found.derivatives:
        digest = sha256_hex(files[name])
        if digest not in covered:
            found.problems.append(f"{name} (sha256 {digest}) is named by no valid signed record")
        record = next((r for r, values in of_master.items() if digest in values), None)
        if record is not None:
            found.linked.append((name, record))
    return found


def redactions_check(
    name: str, files: Mapping[str, bytes], master_sha: str | None, trusted: TrustedKeys, *, redacted: bool
) -> Check:
    """Every redacted copy is named by a validly signed record that names this item's master.

    ``files``: the item's ``redactions/`` folder (names relative to it). In a redacted disclosure
    at least one copy must be so linked: the copies are then the only footage disclosed."""
    if not files:
        if redacted:
            return Check(
                name,
                False,
                "this redacted disclosure carries no redacted copy: nothing links it to master sha256 "
                f"{master_sha}",
            )
        return Check(name, True, "no redacted copies in this item")
    found = _findings(files, trusted, master_sha)
    if redacted and not found.linked:
        found.problems.append(
            "no redacted copy in this redacted disclosure has a valid signed record naming both its "
            f"sha256 and master sha256 {master_sha}"
        )
    if found.problems:
        return Check(name, False, "; ".join(found.problems))
    count = len(found.derivatives)
    plural = "y" if count == 1 else "ies"
    if redacted:
        pairs = ", ".join(f"{video} (record {record})" for video, record in found.linked)
        return Check(
            name,
            True,
            f"{count} redacted cop{plural} disclosed in place of the withheld master, each a derivative "
            f"named by a signed record linked to master sha256 {master_sha}: {pairs}",
        )
    return Check(
        name, True, f"{count} redacted cop{plural}, each named by a signed record linked to the master"
    )


def withheld_check(
    name: str,
    file_name: str,
    artifact: Any,
    listed: Mapping[str, Any],
    data: bytes | None,
    frame_count: Any = None,
) -> Check:
    """A file the signed index says was withheld: absent, and recorded alike by index and manifest.

    ``artifact``: the manifest's record of it (None: the manifest lists none); ``listed``: the
    index's ``withheld`` map; ``frame_count``: given for the master (the frames check)."""
    if data is not None:
        return Check(
            name,
            False,
            f"{file_name} is in a bundle whose signed index says it was {WITHHELD}: "
            "unredacted footage disclosed",
        )
    entry = listed.get(file_name)
    if not isinstance(artifact, dict):
        if entry is None:
            return Check(name, True, f"no {file_name} (the manifest lists none)")
        return Check(name, False, f"bundle.json lists {file_name} as withheld but the manifest lists none")
    recorded = {"sha256": artifact.get("sha256"), "size": artifact.get("size")}
    if not isinstance(entry, dict) or {k: entry.get(k) for k in recorded} != recorded:
        return Check(
            name,
            False,
            f"bundle.json records withheld {file_name} as {entry}, the signed manifest records {recorded}",
        )
    frames = f" ({frame_count} frames)" if frame_count is not None else f", {recorded['size']} bytes"
    return Check(
        name,
        True,
        f"{file_name} {WITHHELD}; the signed manifest records sha256 {recorded['sha256']}{frames}",
    )
