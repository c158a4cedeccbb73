"""The offline checks of one evidence item inside an export bundle (``item[<exhibit ref>].…``).

In a redacted disclosure (the signed index says ``contents: redacted``) the master and working
copy checks instead check that those files were withheld as the index and manifest record, and
the redactions check requires a redacted copy linked to the master
(:mod:`evidence_store.verify_redactions`).

Each check names its cause precisely: which frame (index and camera seq) is missing, out of
order or altered; which custody entry broke the chain and how; which key signed what. The frame
check reads the master tar itself rather than trusting its hash alone, so even a master whose
manifest was re-signed by someone holding the key is still compared frame by frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cctv.contracts import sha256_hex
from evidence_store.bundle import (
    CHECKPOINT,
    CHECKPOINT_SIGNATURE,
    CUSTODY,
    MANIFEST,
    MANIFEST_SIGNATURE,
    MASTER,
    REDACTED,
    REDACTIONS,
    TIMESTAMP_TOKEN,
    WORKING_COPY,
)
from evidence_store.custody import CustodyEntry, problems_against_checkpoint, verify_chain
from evidence_store.verify_common import Check, TrustedKeys, guarded, signature_check
from evidence_store.verify_frames import frame_problems
from evidence_store.verify_redactions import redactions_check, withheld_check


@dataclass(frozen=True)
class ItemContext:
    """One item's files (paths relative to its folder) and its entry in bundle.json, if usable."""

    ref: str
    evidence_id: str | None
    folder: str
    files: Mapping[str, bytes]
    index_entry: Mapping[str, Any] | None


@dataclass(frozen=True)
class _Item:
    """An item with its manifest parsed (None when unreadable) and its custody entries parsed."""

    context: ItemContext
    manifest: dict[str, Any] | None
    custody: list[CustodyEntry]
    custody_problems: list[str]

    def name(self, check: str) -> str:
        return f"item[{self.context.ref}].{check}"

    @property
    def evidence_id(self) -> str | None:
        if self.manifest is not None and isinstance(self.manifest.get("evidence_id"), str):
            return str(self.manifest["evidence_id"])
        return self.context.evidence_id

    def artifact(self, kind: str) -> Any:
        artifacts = (self.manifest or {}).get("artifacts")
        return artifacts.get(kind) if isinstance(artifacts, dict) else None

    @property
    def redacted(self) -> bool:
        """What the signed index says; without a usable index an item is held to the full profile."""
        return (self.context.index_entry or {}).get("contents") == REDACTED

    def withheld(self, kind: str, file_name: str, check: str, frames: bool) -> Check:
        listed = (self.context.index_entry or {}).get("withheld")
        return withheld_check(
            self.name(check),
            file_name,
            self.artifact(kind),
            listed if isinstance(listed, dict) else {},
            self.context.files.get(file_name),
            (self.manifest or {}).get("frame_count") if frames else None,
        )


# --------------------------------------------------------------------------- manifest


def _parse_manifest(files: Mapping[str, bytes]) -> dict[str, Any] | None:
    try:
        document = json.loads(files[MANIFEST])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _manifest_check(item: _Item) -> Check:
    files, name = item.context.files, item.name("manifest")
    if MANIFEST not in files:
        return Check(name, False, f"{MANIFEST} is missing")
    document = item.manifest
    if document is None:
        return Check(name, False, f"{MANIFEST} is not a JSON object")
    problems = []
    if item.context.evidence_id is not None and document.get("evidence_id") != item.context.evidence_id:
        problems.append(
            f"manifest is for evidence {document.get('evidence_id')}, "
            f"bundle.json lists {item.context.evidence_id}"
        )
    if not isinstance(document.get("frames"), list) or not isinstance(document.get("artifacts"), dict):
        problems.append("manifest lacks its frames list or artifacts")
    if problems:
        return Check(name, False, "; ".join(problems))
    camera: dict[str, Any] = document["camera"] if isinstance(document.get("camera"), dict) else {}
    return Check(
        name,
        True,
        f"evidence {document.get('evidence_id')}, camera {camera.get('camera_id')}, "
        f"{len(document['frames'])} frames, sealed {document.get('created_at')}",
    )


def _manifest_digest_check(item: _Item) -> Check:
    """The signature artifact and bundle.json must both name the manifest that is in the bundle."""
    name, files = item.name("manifest.sha256"), item.context.files
    manifest = files.get(MANIFEST)
    if manifest is None:
        return Check(name, False, f"{MANIFEST} is missing")
    digest, problems = sha256_hex(manifest), []
    try:
        signed = json.loads(files.get(MANIFEST_SIGNATURE, b"")).get("manifest_sha256")
    except (ValueError, UnicodeDecodeError, AttributeError):
        signed = None
    if signed != digest:
        problems.append(f"{MANIFEST_SIGNATURE} names manifest sha256 {signed}, {MANIFEST} hashes to {digest}")
    listed = (item.context.index_entry or {}).get("manifest_sha256", digest)
    if listed != digest:
        problems.append(f"bundle.json names manifest sha256 {listed}, {MANIFEST} hashes to {digest}")
    return Check(name, not problems, "; ".join(problems) or f"manifest sha256 {digest}")


def _artifact_check(item: _Item, kind: str, file_name: str, optional: bool) -> Check:
    name = item.name(f"{kind}.sha256")
    if item.manifest is None:
        return Check(name, False, "manifest unreadable: nothing to compare with")
    if item.redacted:
        return item.withheld(kind, file_name, f"{kind}.sha256", frames=kind == "master")
    expected, data = item.artifact(kind), item.context.files.get(file_name)
    if expected is None and optional:
        if data is None:
            return Check(name, True, f"no {file_name} (the manifest lists none)")
        return Check(name, False, f"{file_name} is in the bundle but the manifest lists no such artifact")
    if not isinstance(expected, dict):
        return Check(name, False, f"the manifest lists no {kind} artifact")
    if data is None:
        return Check(name, False, f"{file_name} is missing")
    digest = sha256_hex(data)
    if (digest, len(data)) != (expected.get("sha256"), expected.get("size")):
        return Check(
            name,
            False,
            f"{file_name} altered: sha256 {digest} size {len(data)}, the manifest records "
            f"sha256 {expected.get('sha256')} size {expected.get('size')}",
        )
    return Check(name, True, f"{file_name} sha256 {digest}, {len(data)} bytes, as in the manifest")


# --------------------------------------------------------------------------- frames


def _frames_check(item: _Item) -> Check:
    name, master = item.name("master.frames"), item.context.files.get(MASTER)
    if item.redacted and item.manifest is not None:
        return item.withheld("master", MASTER, "master.frames", frames=True)
    if master is None:
        return Check(name, False, f"{MASTER} is missing")
    frames = (item.manifest or {}).get("frames")
    if not isinstance(frames, list):
        return Check(name, False, "manifest unreadable or without a frame list: frames cannot be checked")
    try:
        problems = frame_problems(master, frames)
        count = item.manifest.get("frame_count") if item.manifest else None
    except (KeyError, TypeError) as exc:
        return Check(name, False, f"manifest frame list is malformed ({exc!r})")
    if count != len(frames):
        problems.append(f"manifest frame_count {count} but it lists {len(frames)} frames")
    if problems:
        return Check(name, False, "; ".join(problems))
    return Check(name, True, f"{len(frames)} frames present in manifest order, every frame's sha256 matches")


# --------------------------------------------------------------------------- custody


def _parse_custody(data: bytes | None) -> tuple[list[CustodyEntry], list[str]]:
    if data is None:
        return [], [f"{CUSTODY} is missing"]
    entries, problems = [], []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            if number != data.count(b"\n") + 1:  # the final newline leaves one empty tail
                problems.append(f"line {number} is empty")
            continue
        try:
            entries.append(CustodyEntry.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "line"
            problems.append(f"line {number} is not a valid custody entry ({where}: {first.get('msg')})")
    return entries, problems


def _custody_check(item: _Item) -> Check:
    name, entries, evidence_id = item.name("custody.chain"), item.custody, item.evidence_id
    problems = list(item.custody_problems)
    if evidence_id is None:
        return Check(name, False, "evidence id unknown (manifest and index unusable)")
    if not entries and not problems:
        problems.append(f"{CUSTODY} holds no entries")
    if entries and entries[0].evidence_id != evidence_id:
        problems.append(f"first entry is for evidence {entries[0].evidence_id}, this item is {evidence_id}")
    problems += [str(problem) for problem in verify_chain(evidence_id, entries)]
    head = (item.context.index_entry or {}).get("custody_head")
    if isinstance(head, dict) and entries:
        last = entries[-1]
        if head.get("seq") != last.seq or head.get("hash") != last.entry_hash:
            problems.append(
                f"bundle.json records the chain ending at entry {head.get('seq')} (hash {head.get('hash')}), "
                f"{CUSTODY} ends at entry {last.seq} (hash {last.entry_hash}): entries removed or altered"
            )
    if problems:
        return Check(name, False, "; ".join(problems))
    last = entries[-1]
    return Check(
        name,
        True,
        f"{len(entries)} entries, chain intact from genesis to entry {last.seq} ({last.entry_hash})",
    )


def _checkpoint_check(item: _Item, trusted: TrustedKeys) -> Check:
    name, files = item.name("custody.checkpoint"), item.context.files
    if CHECKPOINT not in files and CHECKPOINT_SIGNATURE not in files:
        return Check(name, True, "no custody checkpoint in this item (optional)")
    signed = signature_check(
        name,
        files.get(CHECKPOINT),
        files.get(CHECKPOINT_SIGNATURE),
        trusted,
        CHECKPOINT,
        CHECKPOINT_SIGNATURE,
    )
    if not signed.ok:
        return signed
    try:
        document = json.loads(files[CHECKPOINT])
        head = document["items"].get(item.evidence_id)
        if head is None:
            return Check(
                name,
                False,
                f"the checkpoint of {document.get('at')} does not name evidence {item.evidence_id}",
            )
        problems = problems_against_checkpoint(
            {**document, "items": {item.evidence_id: head}}, {str(item.evidence_id): item.custody}
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return Check(name, False, f"{CHECKPOINT} is malformed ({exc!r})")
    if problems:
        return Check(name, False, "; ".join(problems))
    return Check(
        name,
        True,
        f"checkpoint of {document['at']} records entry {head['seq']}; the chain passes through it; "
        f"{signed.detail}",
    )


# --------------------------------------------------------------------------- timestamp


def _timestamp_check(item: _Item, tsa_ca_pem: bytes | None, bundle_tsa_ca: bytes | None) -> Check:
    name, token = item.name("timestamp"), item.context.files.get(TIMESTAMP_TOKEN)
    manifest = item.context.files.get(MANIFEST)
    if token is None:
        return Check(name, True, "no RFC 3161 timestamp token in this item (optional)")
    if manifest is None:
        return Check(name, False, f"{MANIFEST} is missing: nothing to compare the token with")
    ca, source = (
        (tsa_ca_pem, "the TSA CA given")
        if tsa_ca_pem is not None
        else (bundle_tsa_ca, "the TSA CA from the bundle's tsa-ca.pem (not independently trusted)")
    )
    if ca is None:
        source = "no TSA CA given or in the bundle: the TSA certificate chain was not checked"
    try:
        from evidence_store.timestamp import verify_token  # lazily: the verifier works without it otherwise
    except ImportError as exc:
        return Check(name, False, f"cannot check the token: evidence_store.timestamp is unavailable ({exc})")
    try:
        result = verify_token(token, sha256_hex(manifest), ca)
    except Exception as exc:  # a hostile token must become a FAIL, whatever the parser raises
        return Check(name, False, f"{TIMESTAMP_TOKEN} unreadable ({type(exc).__name__}: {exc})")
    if not result.ok:
        return Check(name, False, f"{'; '.join(result.problems) or 'token does not verify'}; {source}")
    return Check(
        name, True, f"manifest sha256 timestamped at {result.gen_time} by TSA {result.tsa_name}; {source}"
    )


# --------------------------------------------------------------------------- redactions


def _redactions_check(item: _Item, trusted: TrustedKeys) -> Check:
    prefix = REDACTIONS + "/"
    files = {n[len(prefix) :]: d for n, d in item.context.files.items() if n.startswith(prefix)}
    master = item.artifact("master")
    master_sha = master.get("sha256") if isinstance(master, dict) else None
    return redactions_check(
        item.name("redactions"),
        files,
        master_sha if isinstance(master_sha, str) else None,
        trusted,
        redacted=item.redacted,
    )


# --------------------------------------------------------------------------- item


def verify_item(
    context: ItemContext, trusted: TrustedKeys, tsa_ca_pem: bytes | None, bundle_tsa_ca: bytes | None
) -> list[Check]:
    """Every check of one item, in a fixed order."""
    files = context.files
    entries, custody_problems = _parse_custody(files.get(CUSTODY))
    item = _Item(context, _parse_manifest(files), entries, custody_problems)
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("manifest", lambda: _manifest_check(item)),
        (
            "manifest.signature",
            lambda: signature_check(
                item.name("manifest.signature"),
                files.get(MANIFEST),
                files.get(MANIFEST_SIGNATURE),
                trusted,
                MANIFEST,
                MANIFEST_SIGNATURE,
            ),
        ),
        ("manifest.sha256", lambda: _manifest_digest_check(item)),
        ("master.sha256", lambda: _artifact_check(item, "master", MASTER, optional=False)),
        ("master.frames", lambda: _frames_check(item)),
        ("working_copy.sha256", lambda: _artifact_check(item, "working_copy", WORKING_COPY, optional=True)),
        ("custody.chain", lambda: _custody_check(item)),
        ("custody.checkpoint", lambda: _checkpoint_check(item, trusted)),
        ("timestamp", lambda: _timestamp_check(item, tsa_ca_pem, bundle_tsa_ca)),
        ("redactions", lambda: _redactions_check(item, trusted)),
    ]
    return [guarded(item.name(name), run) for name, run in checks]
