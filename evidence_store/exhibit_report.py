"""The two human-readable files of an export bundle: ``exhibit_report.txt`` and ``README.txt``.

Written for a solicitor or a court, not for a programmer: every time in UTC *and* UK local
time (GMT/BST, which is what witnesses and the footage's burn-in refer to), every file with its
SHA-256 and size, who handled the evidence and why. Pure text from the same inputs as the
bundle, so it is as deterministic as the bundle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cctv.contracts import sha256_hex
from evidence_store.custody import CustodyEntry

if TYPE_CHECKING:
    from evidence_store.bundle import ExportRequest

UK_TIME = ZoneInfo("Europe/London")
RULE = "=" * 78


@dataclass(frozen=True)
class ItemSummary:
    """What the report needs of one item (a view of a ``BundleItem`` plus its bundle folder)."""

    evidence_id: str
    exhibit_ref: str
    folder: str
    manifest: bytes
    custody: Sequence[CustodyEntry]
    timestamp_token: bytes | None
    contents: str = "full"
    withheld: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # file -> {sha256, size}
    redactions: Sequence[tuple[str, str]] = ()  # (redacted copy, its signed record), item-relative


def both_times(value: str | datetime | None) -> str:
    """``2025-07-01 11:00:01.250 UTC (12:00:01.250 BST UK time)``; ``-`` when unknown."""
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return f"{moment.isoformat()} (no time zone recorded)"
    utc, local = moment.astimezone(UTC), moment.astimezone(UK_TIME)
    millis = f"{utc.microsecond // 1000:03d}"
    return (
        f"{utc:%Y-%m-%d %H:%M:%S}.{millis} UTC ({local:%Y-%m-%d %H:%M:%S}.{millis} {local.tzname()} UK time)"
    )


def _get(document: Any, *path: str) -> Any:
    for key in path:
        document = document.get(key) if isinstance(document, dict) else None
    return document


def _header(request: ExportRequest, key_id: str, count: int) -> list[str]:
    lines = [
        "EXHIBIT REPORT - CCTV EVIDENCE EXPORT",
        RULE,
        f"Export id:        {request.export_id}",
        f"Produced:         {both_times(request.created_at)}",
        f"Produced by:      {request.actor} (role: {request.role})",
        f"Produced for:     {request.recipient or '-'}"
        + (f", {request.organisation}" if request.organisation else ""),
        f"Reason:           {request.reason}",
    ]
    if request.case_reference is not None or request.case_title is not None:
        lines.append(f"Case:             {request.case_reference or '-'}: {request.case_title or '-'}")
    lines += [
        f"Signing key id:   {key_id} (Ed25519; manifests, checkpoints and bundle.json)",
        f"Exhibits:         {count}",
        "",
    ]
    return lines


def _timestamp_lines(token: bytes | None, manifest: bytes, tsa_ca_pem: bytes | None) -> list[str]:
    if token is None:
        return ["Timestamp:        none (no RFC 3161 timestamp was requested for this item)"]
    try:
        from evidence_store.timestamp import verify_token  # written separately; optional at build time
    except ImportError:
        return [f"Timestamp:        RFC 3161 token present ({len(token)} bytes); details: run cctv verify"]
    result = verify_token(token, sha256_hex(manifest), tsa_ca_pem)
    state = "verified" if result.ok else "NOT verified: " + "; ".join(result.problems)
    return [
        f"Timestamp:        RFC 3161 genTime {both_times(result.gen_time)}",
        f"                  TSA {result.tsa_name or '-'}; {state}",
    ]


def _clock(offset: float | None) -> str:
    if offset is None:
        return "offset not reported by the camera"
    return f"{offset:+.3f} s (camera clock minus ingest clock)"


def _incident_lines(document: Any) -> list[str]:
    camera, incident = _get(document, "camera") or {}, _get(document, "incident") or {}
    detector = _get(document, "detector") or {}
    lines = [
        f"Camera:           {camera.get('name', '-')} [{camera.get('camera_id', '-')}]",
        f"Location:         {camera.get('location') or '-'}",
        f"Camera clock:     {_clock(camera.get('clock_offset_s'))}",
        f"Incident:         {incident.get('incident_id', '-')}",
        f"Rule / zone:      {incident.get('rule', '-')} / {incident.get('zone_id') or '-'}",
        f"Summary:          {incident.get('summary') or '-'}",
        f"Started:          {both_times(incident.get('started_at'))}",
        f"Rule threshold:   {both_times(incident.get('threshold_at'))}",
        f"Ended:            {both_times(incident.get('ended_at'))}",
        f"First frame:      {both_times(_get(document, 'first_capture_ts'))}",
        f"Last frame:       {both_times(_get(document, 'last_capture_ts'))}",
        f"Frames:           {_get(document, 'frame_count')} (gaps in sequence: "
        f"{len(_get(document, 'gaps') or [])})",
        f"Detector:         {detector.get('model_name', '-')} ({detector.get('backend', '-')}), "
        f"weights sha256 {detector.get('weights_sha256') or '-'}, thresholds "
        f"{json.dumps(detector.get('thresholds', {}), sort_keys=True)}",
        f"Sealed:           {both_times(_get(document, 'created_at'))}",
        f"Software:         {_get(document, 'software', 'name')} {_get(document, 'software', 'version')}",
    ]
    return lines


def _custody_lines(entries: Sequence[CustodyEntry]) -> list[str]:
    lines = [f"Custody log ({len(entries)} entries, hash-chained; full log: custody.jsonl):"]
    for entry in entries:
        reason = f" - why: {entry.reason}" if entry.reason else ""
        lines.append(
            f"  #{entry.seq:<3} {both_times(entry.at)}  {entry.action.value} by {entry.actor} "
            f"({entry.role.value}){reason}"
        )
    return lines


WITHHELD_WHAT = {"master.tar": "the original frames", "working.mp4": "the viewing copy"}


def _disclosure_lines(summary: ItemSummary, frame_count: Any) -> list[str]:
    """For a redacted disclosure: what was withheld, what it hashes to, and what was given instead."""
    if summary.contents != "redacted":
        return []
    lines = [
        "Disclosure:       REDACTED COPY ONLY. The unredacted footage was WITHHELD from this",
        "                  disclosure and is not in this bundle. The signed manifest records it as:",
    ]
    for name, entry in summary.withheld.items():
        frames = f", {frame_count} frames" if name == "master.tar" else ""
        lines.append(
            f"  withheld        {name} ({WITHHELD_WHAT.get(name, name)}): sha256 {entry.get('sha256')}, "
            f"{entry.get('size')} bytes{frames}"
        )
    for video, record in summary.redactions:
        lines += [
            f"Redacted copy:    {video}",
            "                  a DERIVATIVE made from the master, not the original recording:",
            "                  people other than the subjects are obscured. Its signed record",
            f"                  {record} names the master's sha256 and this copy's sha256.",
        ]
    return lines


def _item_section(
    summary: ItemSummary, files: Mapping[str, bytes], key_id: str, tsa_ca_pem: bytes | None
) -> list[str]:
    try:
        document = json.loads(summary.manifest)
    except ValueError:
        document = {}
    lines = [
        RULE,
        f"EXHIBIT {summary.exhibit_ref}",
        RULE,
        f"Evidence id:      {summary.evidence_id}",
        f"Folder:           {summary.folder}/",
        *_incident_lines(document),
        *_disclosure_lines(summary, _get(document, "frame_count")),
        f"Manifest SHA-256: {sha256_hex(summary.manifest)}",
        f"Manifest signed:  key id {_get(document, 'signing_key_id') or key_id} (Ed25519)",
        *_timestamp_lines(summary.timestamp_token, summary.manifest, tsa_ca_pem),
        "Files (SHA-256, size in bytes, path):",
    ]
    lines += [f"  {sha256_hex(data)}  {len(data):>12}  {name}" for name, data in files.items()]
    return [*lines, *_custody_lines(summary.custody), ""]


def render_exhibit_report(
    items: Sequence[ItemSummary],
    request: ExportRequest,
    key_id: str,
    item_files: Sequence[Mapping[str, bytes]],
    tsa_ca_pem: bytes | None,
) -> str:
    """The exhibit report: export header, then one section per exhibit in bundle order."""
    lines = _header(request, key_id, len(items))
    for summary, files in zip(items, item_files, strict=True):
        lines += _item_section(summary, files, key_id, tsa_ca_pem)
    lines.append("End of exhibit report. To check every statement above, see README.txt.")
    return "\n".join(lines) + "\n"


# Run from an item's folder; tests run exactly these lines so the instructions cannot go stale.
HAND_CHECK_COMMANDS = (
    "(printf '\\060\\052\\060\\005\\006\\003\\053\\145\\160\\003\\041\\000'; "
    "base64 -d ../../public_key.txt) | openssl pkey -pubin -inform DER -out pub.pem",
    'python3 -c "import json,base64,sys; sys.stdout.buffer.write(base64.b64decode('
    "json.load(open('manifest.sig.json'))['signature']))\" > manifest.sig",
    "openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in manifest.json -sigfile manifest.sig",
    "openssl ts -verify -in manifest.tsr -token_in -data manifest.json -CAfile ../../tsa-ca.pem",
)

README_TEMPLATE = """\
CCTV EVIDENCE EXPORT {export_id}
{rule}

This archive is a signed copy of {count} CCTV evidence item(s), exported on
{created} by {actor} ({role}).
Reason: {reason}
{disclosure}
WHAT EACH FILE IS
  README.txt            these instructions
  exhibit_report.txt    the exhibit report: exhibit references, camera, location,
                        incident times (UTC and UK time), hashes, custody history,
                        and who produced this export, when, for whom and why
  bundle.json           index: every other file with its SHA-256 and size
  bundle.sig.json       Ed25519 signature of bundle.json (key id {key_id})
  public_key.txt        the signing public key (base64). For information only: always
                        check against the key published by the evidence operator.
  tsa-ca.pem            (if present) certificate of the timestamp authority
  items/<exhibit>/      one folder per exhibit; in this bundle:
{folders}
    manifest.json       what was recorded: camera, times, detector, and the SHA-256
                        of every file and of every frame in order (signed)
    manifest.sig.json   Ed25519 signature of manifest.json
    manifest.tsr        (if present) RFC 3161 timestamp token for manifest.json
{original_files}
    custody.jsonl       custody log: every action on the item, who, when and why;
                        each entry carries the hash of the one before
    checkpoint.json     (if present) signed snapshot of the custody log's latest entry
    redactions/         (if present) redacted copies, each with a signed record
                        linking it to the master; the only footage in a redacted
                        disclosure

HOW TO VERIFY (AUTOMATIC)
  With the cctv software installed, and the operator's published public key:

      cctv verify this-bundle.zip --public-key <KEY or key file>{tsa_hint}

  Every check is listed as PASS or FAIL with the reason; the exit status is 0 only
  if every check passed.

HOW TO CHECK BY HAND (Linux/macOS shell, after unzipping)
  1. File hashes: `sha256sum <file>` for each file and compare with the "files"
     entries in bundle.json (and, for master.tar and working.mp4, with
     "artifacts" -> "master"/"working_copy" -> "sha256" in that item's manifest.json).
{frames_step}
  3. Signature and timestamp of one exhibit (OpenSSL 3, Python 3), in its folder:
{hand_check}
     The first command turns public_key.txt into a PEM key: use the operator's
     published key instead if they differ. The pkeyutl line prints "Signature
     Verified Successfully"; the same works for bundle.json with bundle.sig.json.
  4. The timestamp line (only if manifest.tsr is present) prints "Verification: OK".
  5. Custody log: each line's "entry_hash" is the SHA-256 of that line without its
     "entry_hash" field (keys sorted, no spaces); each "prev_hash" is the previous
     line's "entry_hash". `cctv verify` checks this for you.
"""


FULL_FILES = """\
    master.tar          the original frames exactly as recorded (JPEG, never altered)
    working.mp4         (if present) viewing copy with camera name and time burned in;
                        made from copies of the master frames
"""
FULL_FRAMES_STEP = """\
  2. Frames: `tar -xf master.tar` then `sha256sum frames/*` and compare, in order,
     with "frames" -> "sha256" in manifest.json. File frames/000012_345.jpg is frame
     index 12 with camera sequence number 345.
"""
REDACTED_DISCLOSURE = """
THIS IS A REDACTED DISCLOSURE
  The unredacted footage was WITHHELD: no exhibit's master.tar (the original
  frames) or working.mp4 (the viewing copy) is in this archive. What they hash
  to is recorded in each signed manifest.json ("artifacts" -> "master" and
  "working_copy") and under "withheld" in bundle.json, and is listed in
  exhibit_report.txt, so the originals can be produced later and checked.
  The videos under items/<exhibit>/redactions/ are redacted copies: derivatives
  made from the master with people other than the subjects obscured, NOT the
  original recording. Each has a signed record (<id>.json, signature
  <id>.sig.json) that names the SHA-256 of the master it was made from and of
  the redacted video itself, and says how and by whom it was made.
"""
REDACTED_FILES = """\
    master.tar          WITHHELD from this redacted disclosure (original frames)
    working.mp4         WITHHELD from this redacted disclosure (viewing copy)
"""
REDACTED_FRAMES_STEP = """\
  2. Frames: not possible from this bundle, the master is withheld. Check instead
     that `sha256sum redactions/<id>.mp4` equals "output" -> "sha256" in its
     record <id>.json, and that the record's "master_sha256" equals "artifacts"
     -> "master" -> "sha256" in manifest.json.
"""


def render_readme(request: ExportRequest, key_id: str, folders: Sequence[str], has_tsa_ca: bool) -> str:
    redacted = request.contents == "redacted"
    return README_TEMPLATE.format(
        disclosure=REDACTED_DISCLOSURE if redacted else "",
        original_files=(REDACTED_FILES if redacted else FULL_FILES).rstrip("\n"),
        frames_step=(REDACTED_FRAMES_STEP if redacted else FULL_FRAMES_STEP).rstrip("\n"),
        export_id=request.export_id,
        rule="=" * 78,
        count=len(folders),
        created=both_times(request.created_at),
        actor=request.actor,
        role=request.role,
        reason=request.reason,
        key_id=key_id,
        folders="\n".join(f"                        {folder}/" for folder in folders),
        tsa_hint=" [--tsa-ca tsa-ca.pem]" if has_tsa_ca else "",
        hand_check="\n".join(f"       {command}" for command in HAND_CHECK_COMMANDS),
    )
