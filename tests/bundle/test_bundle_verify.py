"""Export bundle + offline verifier: real evidence items (sim camera frames -> master, H.264 working
copy, signed manifest, RFC 3161 token from a local ``openssl ts`` TSA, hash-chained custody log,
signed checkpoint, a signed redaction record) are bundled, then tampered with in every way the
issue names; each tamper must fail *and* the failing check must name the cause.

Pure: no broker, object store or database. The TSA is the project's local ``openssl ts`` one.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from cctv.contracts import sha256_hex
from evidence_store.bundle import BundleItem, build_bundle
from evidence_store.custody import (
    canonical,
)
from evidence_store.exhibit_report import HAND_CHECK_COMMANDS
from evidence_store.package import EvidencePackage
from evidence_store.signing import ManifestSigner
from evidence_store.verify import verify_bundle
from tests.bundle_support import (
    CAUSE,
    CUSTODY_STEPS,
    ITEM,
    ITEM2,
    ITEM_CHECKS,
    MEMBERS,
    REF,
    REF2,
    REPO,
    TarEdit,
    add_member,
    bundle_item,
    custody_lines,
    details,
    drop_frame,
    failed,
    master_of,
    members,
    rebuild_tar,
    replace_frame,
    request,
    resealed,
    swap_frames,
    tampered,
    with_custody,
)

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the OpenSSL CLI (openssl) is missing: it runs the local TSA"
)
# --------------------------------------------------------------------------- the untouched bundle


def test_untouched_bundle_verifies(bundle: bytes, signer: ManifestSigner, tsa_ca: bytes) -> None:
    report = verify_bundle(bundle, [signer.public_key])
    assert report.ok and not report.failures, report.render()
    names = [check.name for check in report.checks]
    assert names == ["bundle.archive", "bundle.index", "bundle.signature", "bundle.files"] + [
        f"item[{REF}].{name}" for name in ITEM_CHECKS
    ]
    found = details(report)
    assert signer.key_id in found["bundle.signature"]
    assert "10 frames present in manifest order" in found[f"item[{REF}].master.frames"]
    assert "from the bundle's tsa-ca.pem" in found[f"item[{REF}].timestamp"]
    assert "CCTV Local Test TSA" in found[f"item[{REF}].timestamp"]
    assert "records entry 4" in found[f"item[{REF}].custody.checkpoint"]
    assert "1 redacted copy" in found[f"item[{REF}].redactions"]
    rendered = report.render().splitlines()
    assert rendered[0].startswith("PASS bundle.archive: ")
    assert rendered[-1] == f"VERIFIED: all {len(names)} checks passed"
    given = verify_bundle(bundle, [signer.public_key.hex()], tsa_ca_pem=tsa_ca)  # hex key, CA given
    assert given.ok and "the TSA CA given" in details(given)[f"item[{REF}].timestamp"]


def test_layout_is_fixed_and_deterministic(
    bundle: bytes, item: BundleItem, signer: ManifestSigner, tsa_ca: bytes
) -> None:
    assert build_bundle([item], request(), signer, tsa_ca) == bundle  # byte-for-byte reproducible
    files = members(bundle)
    assert tuple(files) == MEMBERS
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
        stamps = {info.date_time for info in archive.infolist()}
    assert kinds[f"{ITEM}/master.tar"] == kinds[f"{ITEM}/working.mp4"] == zipfile.ZIP_STORED
    assert kinds["README.txt"] == kinds[f"{ITEM}/custody.jsonl"] == zipfile.ZIP_DEFLATED
    assert stamps == {(2025, 7, 2, 9, 15, 0)}
    index = json.loads(files["bundle.json"])
    assert set(index["files"]) == set(MEMBERS) - {"bundle.json", "bundle.sig.json"}
    assert index["items"] == [
        {
            "evidence_id": item.evidence_id,
            "exhibit_ref": REF,
            "path": ITEM,
            "manifest_sha256": sha256_hex(item.manifest),
            "custody_head": {"seq": 5, "hash": item.custody[-1].entry_hash},
            "contents": "full",
            "withheld": {},
        }
    ]
    assert index["produced_by"] == {"actor": "legal.smith", "role": "legal"} and index["case"] is None
    assert index["signing_key_id"] == signer.key_id
    assert files[f"{ITEM}/custody.jsonl"].count(b"\n") == len(CUSTODY_STEPS)
    assert files["public_key.txt"] == base64.b64encode(signer.public_key) + b"\n"


def test_exhibit_report_and_readme_say_what_a_court_needs(
    bundle: bytes, item: BundleItem, signer: ManifestSigner
) -> None:
    files = members(bundle)
    report = files["exhibit_report.txt"].decode()
    for expected in (
        f"EXHIBIT {REF}",
        "High Street North [cam-hs-n]",
        "12 High Street, Exampleton",
        "loitering / bench",
        "Frames:           10",
        "2025-07-01 12:00:00.400 UTC (2025-07-01 13:00:00.400 BST UK time)",  # incident start
        f"{sha256_hex(master_of(item))}  {len(master_of(item)):>12}  {ITEM}/master.tar",
        f"{sha256_hex(item.working_copy or b'')}",
        f"key id {signer.key_id}",
        "RFC 3161 genTime 20",
        "CN=CCTV Local Test TSA",
        "downloaded by legal.smith (legal) - why: review for injunction application",
        "Produced by:      legal.smith (role: legal)",
        "Produced for:     A. Solicitor, Exampleton Borough Council Legal Services",
        "Reason:           disclosure to the council's solicitors",
        "2025-07-02 09:15:00.000 UTC (2025-07-02 10:15:00.000 BST UK time)",
    ):
        assert expected in report, expected
    readme = files["README.txt"].decode()
    assert "cctv verify this-bundle.zip --public-key" in readme and "sha256sum" in readme
    assert all(command in readme for command in HAND_CHECK_COMMANDS)


def test_hand_check_instructions_work_with_openssl(
    bundle: bytes, redacted_bundle: bytes, tmp_path: Path
) -> None:
    """The README's by-hand commands, run exactly as written, verify the signature and timestamp
    (of a redacted disclosure too: it keeps the manifest, its signature and token)."""
    script = ["bash", "-ec", "\n".join(HAND_CHECK_COMMANDS)]
    for folder, data in (("redacted", redacted_bundle), ("", bundle)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(tmp_path / folder)
        result = subprocess.run(
            script, cwd=tmp_path / folder / ITEM, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert "Signature Verified Successfully" in result.stdout and "Verification: OK" in result.stdout
    manifest = tmp_path / ITEM / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"loitering", b"Loitering"))
    assert subprocess.run(script, cwd=tmp_path / ITEM, capture_output=True, timeout=60).returncode != 0


def test_refuses_empty_and_duplicate_exhibits(item: BundleItem, signer: ManifestSigner) -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_bundle([], request(), signer)
    with pytest.raises(ValueError, match="duplicate exhibit reference"):
        build_bundle([item, item], request(), signer)
    with pytest.raises(ValueError, match="duplicate item folder"):
        build_bundle([item, replace(item, exhibit_ref="JS 1")], request(), signer)  # both JS_1
    with pytest.raises(ValueError, match="not a plain file name"):
        build_bundle([replace(item, derivatives={"../escape.jpg": b"x"})], request(), signer)


# --------------------------------------------------------------------------- tamper: every byte


@pytest.mark.parametrize("position", ["first", "middle", "last"])
@pytest.mark.parametrize("member", MEMBERS)
def test_flipping_one_byte_of_any_file_fails_and_names_it(
    bundle: bytes, signer: ManifestSigner, member: str, position: str
) -> None:
    original = members(bundle)[member]
    at = {"first": 0, "middle": len(original) // 2, "last": len(original) - 1}[position]
    flipped = bytearray(original)
    flipped[at] ^= 0x01
    report = verify_bundle(tampered(bundle, {member: bytes(flipped)}), [signer.public_key])
    failures = failed(report)
    assert not report.ok and failures
    if member not in ("bundle.json", "bundle.sig.json"):
        assert f"{member} altered" in failures["bundle.files"], report.render()
    if member in CAUSE:
        assert CAUSE[member] in failures, report.render()


def test_corrupt_zip_container_and_garbage_never_raise(bundle: bytes, signer: ManifestSigner) -> None:
    data = bytearray(bundle)
    data[bundle.index(b"frames/000003")] ^= 0x01  # inside the stored (uncompressed) master tar
    corrupt = failed(verify_bundle(bytes(data), [signer.public_key]))
    assert f"{ITEM}/master.tar cannot be read" in corrupt["bundle.archive"]
    assert f"{ITEM}/master.tar is listed but missing" in corrupt["bundle.files"]
    for garbage in (b"", b"not a zip at all", bundle[: len(bundle) // 2]):
        report = verify_bundle(garbage, [signer.public_key])
        assert not report.ok and "not a readable ZIP archive" in failed(report)["bundle.archive"]
    broken_index = verify_bundle(tampered(bundle, {"bundle.json": b"{not json"}), [signer.public_key])
    failures = failed(broken_index)
    assert "not valid JSON" in failures["bundle.index"] and "bundle.signature" in failures
    assert "bundle.json unusable" in failures["bundle.files"]
    # the items are still found (by folder) and checked
    assert details(broken_index)["item[JS_1].master.frames"].startswith("10 frames present")


@pytest.mark.parametrize("member", [name for name in MEMBERS if name.endswith(".json")])
def test_json_of_the_wrong_shape_fails_without_raising(
    bundle: bytes, signer: ManifestSigner, member: str
) -> None:
    shapes: list[object] = [
        [],
        None,
        "text",
        {"items": [{"path": {}}], "files": []},
        {"artifacts": [], "frames": [1]},
    ]
    for document in shapes:
        report = verify_bundle(tampered(bundle, {member: json.dumps(document).encode()}), [signer.public_key])
        assert not report.ok
        assert member in CAUSE and CAUSE[member] in failed(report), (member, document, report.render())


def test_custody_lines_that_are_not_entries_are_named(bundle: bytes, signer: ManifestSigner) -> None:
    lines = custody_lines(bundle)
    lines[1] = b'{"seq": "one"}\n'
    lines.insert(3, b"\n")
    failures = failed(verify_bundle(with_custody(bundle, lines), [signer.public_key]))
    chain = failures[f"item[{REF}].custody.chain"]
    assert "line 2 is not a valid custody entry" in chain and "line 4 is empty" in chain


# --------------------------------------------------------------------------- tamper: frames

FRAME_TAMPERS = [
    pytest.param(drop_frame(2), "frame 2 (seq 12) missing", id="drop"),
    pytest.param(
        swap_frames(3, 4), "frames out of order at index 3: expected seq 13 found seq 14", id="reorder"
    ),
    pytest.param(
        replace_frame(7, b"\xff\xd8 not the frame \xff\xd9"), "frame 7 (seq 17) sha256 mismatch", id="alter"
    ),
    pytest.param(
        add_member("frames/000010_20.jpg", b"\xff\xd8\xff\xd9"),
        "extra member frames/000010_20.jpg (claims frame 10, seq 20)",
        id="extra",
    ),
]


@pytest.mark.parametrize(("edit", "cause"), FRAME_TAMPERS)
def test_frame_tamper_by_a_key_holder_is_caught_by_the_frame_check_alone(
    item: BundleItem, signer: ManifestSigner, tsa_ca: bytes, edit: TarEdit, cause: str
) -> None:
    """Master rebuilt, its hash fixed in a re-signed manifest and index: only the frames can tell."""
    forged = resealed(item, rebuild_tar(master_of(item), edit), signer)
    report = verify_bundle(build_bundle([forged], request(), signer, tsa_ca), [signer.public_key])
    assert set(failed(report)) == {f"item[{REF}].master.frames"}, report.render()
    assert cause in failed(report)[f"item[{REF}].master.frames"]


@pytest.mark.parametrize(("edit", "cause"), FRAME_TAMPERS)
def test_frame_tamper_in_the_bundle_fails_hashes_and_frames(
    bundle: bytes, item: BundleItem, signer: ManifestSigner, edit: TarEdit, cause: str
) -> None:
    forged = rebuild_tar(master_of(item), edit)
    failures = failed(verify_bundle(tampered(bundle, {f"{ITEM}/master.tar": forged}), [signer.public_key]))
    assert f"{ITEM}/master.tar altered" in failures["bundle.files"]
    assert "master.tar altered" in failures[f"item[{REF}].master.sha256"]
    assert cause in failures[f"item[{REF}].master.frames"]


# --------------------------------------------------------------------------- tamper: the rest


def test_edited_manifest_field_fails_its_signature(
    bundle: bytes, item: BundleItem, signer: ManifestSigner
) -> None:
    edited = item.manifest.replace(b"12 High Street, Exampleton", b"14 High Street, Exampleton")
    failures = failed(verify_bundle(tampered(bundle, {f"{ITEM}/manifest.json": edited}), [signer.public_key]))
    signature = failures[f"item[{REF}].manifest.signature"]
    assert f"manifest.json altered: it hashes to {sha256_hex(edited)}" in signature
    assert "manifest.sig.json names manifest sha256" in failures[f"item[{REF}].manifest.sha256"]
    assert f"{ITEM}/manifest.json altered" in failures["bundle.files"]
    assert "timestamp covers a different document" in failures[f"item[{REF}].timestamp"]


def test_altered_custody_entry_is_named(bundle: bytes, signer: ManifestSigner) -> None:
    lines = custody_lines(bundle)
    entry = json.loads(lines[3])
    assert entry["reason"] == "review for injunction application"
    lines[3] = canonical({**entry, "reason": "routine check"}) + b"\n"
    failures = failed(verify_bundle(with_custody(bundle, lines), [signer.public_key]))
    chain = failures[f"item[{REF}].custody.chain"]
    assert "entry 3: content altered: 'downloaded' entry hashes to" in chain
    assert "entry 4: link broken" not in chain  # the next entry still links to the recorded hash
    assert f"{ITEM}/custody.jsonl altered" in failures["bundle.files"]


@pytest.mark.parametrize(
    ("removed", "cause"),
    [
        (2, "entry 3: sequence number 3 at position 2: an entry was removed"),
        (0, "entry 1: link broken"),
        (5, "bundle.json records the chain ending at entry 5"),
    ],
)
def test_deleted_custody_entry_is_named(
    bundle: bytes, signer: ManifestSigner, removed: int, cause: str
) -> None:
    lines = custody_lines(bundle)
    del lines[removed]
    failures = failed(verify_bundle(with_custody(bundle, lines), [signer.public_key]))
    assert cause in failures[f"item[{REF}].custody.chain"]
    assert f"{ITEM}/custody.jsonl altered" in failures["bundle.files"]


def test_custody_cut_short_by_a_key_holder_contradicts_the_checkpoint(
    item: BundleItem, signer: ManifestSigner, tsa_ca: bytes
) -> None:
    """A re-signed bundle whose chain lost entries the checkpoint recorded: only the checkpoint knows."""
    cut = replace(item, custody=list(item.custody[:4]))
    failures = failed(verify_bundle(build_bundle([cut], request(), signer, tsa_ca), [signer.public_key]))
    assert set(failures) == {f"item[{REF}].custody.checkpoint"}
    assert (
        "recorded entry 4, the log now holds 4 entries (entries deleted)"
        in (failures[f"item[{REF}].custody.checkpoint"])
    )


def test_custody_chain_of_another_item_is_refused(
    item: BundleItem, item2: BundleItem, signer: ManifestSigner, tsa_ca: bytes
) -> None:
    spliced = replace(item, custody=item2.custody, checkpoint=None)
    failures = failed(verify_bundle(build_bundle([spliced], request(), signer, tsa_ca), [signer.public_key]))
    assert (
        f"first entry is for evidence {item2.evidence_id}, this item is {item.evidence_id}"
        in (failures[f"item[{REF}].custody.chain"])
    )


def test_swapped_signing_key_fails_naming_both_key_ids(
    package: EvidencePackage,
    item: BundleItem,
    signer: ManifestSigner,
    other_signer: ManifestSigner,
    tsa_ca: bytes,
) -> None:
    forged = bundle_item(package, REF, other_signer, token=item.timestamp_token, extras=True)
    forged_bundle = build_bundle([forged], request(), other_signer, tsa_ca)
    failures = failed(verify_bundle(forged_bundle, [signer.public_key]))
    expected = (
        f"is signed by key {other_signer.key_id} (the signature is genuine for that key), which is not "
        f"trusted; trusted key id(s): {signer.key_id}"
    )
    for name in ("bundle.signature", f"item[{REF}].manifest.signature", f"item[{REF}].custody.checkpoint"):
        assert expected in failures[name], name
    assert expected in failures[f"item[{REF}].redactions"]
    assert verify_bundle(
        forged_bundle, [signer.public_key, other_signer.public_key]
    ).ok  # trust: the caller's


def test_manifest_re_signed_with_another_key_inside_a_genuine_bundle(
    item: BundleItem, signer: ManifestSigner, other_signer: ManifestSigner, tsa_ca: bytes
) -> None:
    swapped = replace(item, signature=other_signer.sign(item.manifest))
    failures = failed(verify_bundle(build_bundle([swapped], request(), signer, tsa_ca), [signer.public_key]))
    assert set(failures) == {f"item[{REF}].manifest.signature"}
    assert f"signed by key {other_signer.key_id}" in failures[f"item[{REF}].manifest.signature"]
    assert f"trusted key id(s): {signer.key_id}" in failures[f"item[{REF}].manifest.signature"]


def test_extra_and_missing_files_are_named(bundle: bytes, signer: ManifestSigner) -> None:
    extra = verify_bundle(tampered(bundle, {f"{ITEM}/extra.jpg": b"\xff\xd8\xff\xd9"}), [signer.public_key])
    assert failed(extra) == {"bundle.files": f"{ITEM}/extra.jpg is an extra file not listed in bundle.json"}
    missing = failed(verify_bundle(tampered(bundle, {f"{ITEM}/working.mp4": None}), [signer.public_key]))
    assert f"{ITEM}/working.mp4 is listed but missing" in missing["bundle.files"]
    assert missing[f"item[{REF}].working_copy.sha256"] == "working.mp4 is missing"


def test_unusable_trusted_keys_are_a_caller_error(bundle: bytes) -> None:
    with pytest.raises(ValueError, match="at least one"):
        verify_bundle(bundle, [])
    with pytest.raises(ValueError, match="public key"):
        verify_bundle(bundle, ["not-a-key"])


# --------------------------------------------------------------------------- a case of two items


def test_case_bundle_with_two_items(
    item: BundleItem, item2: BundleItem, signer: ManifestSigner, tsa_ca: bytes
) -> None:
    case = build_bundle([item, item2], request(case=True), signer, tsa_ca)
    report = verify_bundle(case, [signer.public_key])
    assert report.ok, report.render()
    names = [check.name for check in report.checks]
    assert [n for n in names if n.startswith(f"item[{REF2}]")] == [f"item[{REF2}].{c}" for c in ITEM_CHECKS]
    files = members(case)
    index = json.loads(files["bundle.json"])
    assert index["case"] == {"reference": "CASE-7", "title": "High Street persons unknown"}
    assert [entry["path"] for entry in index["items"]] == [ITEM, ITEM2]
    exhibit = files["exhibit_report.txt"].decode()
    assert f"EXHIBIT {REF}" in exhibit and f"EXHIBIT {REF2}" in exhibit
    assert "Case:             CASE-7: High Street persons unknown" in exhibit
    assert "(2026-01-15 09:30:02.000 GMT UK time)" in exhibit  # winter item: UK time is GMT
    assert "no custody checkpoint" in details(report)[f"item[{REF2}].custody.checkpoint"]
    forged = rebuild_tar(master_of(item2), drop_frame(0))
    failures = failed(verify_bundle(tampered(case, {f"{ITEM2}/master.tar": forged}), [signer.public_key]))
    assert set(failures) == {"bundle.files", f"item[{REF2}].master.sha256", f"item[{REF2}].master.frames"}
    assert "frame 0 (seq 10) missing" in failures[f"item[{REF2}].master.frames"]


# --------------------------------------------------------------------------- the CLI


def cctv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cctv", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_cli_verify_good_and_bad_bundles(bundle: bytes, signer: ManifestSigner, tmp_path: Path) -> None:
    good, bad, key_file = tmp_path / "good.zip", tmp_path / "bad.zip", tmp_path / "operator.pub"
    good.write_bytes(bundle)
    lines = custody_lines(bundle)
    del lines[2]
    bad.write_bytes(with_custody(bundle, lines))
    key_file.write_text(base64.b64encode(signer.public_key).decode() + "\n")

    ok = cctv("verify", str(good), "--public-key", str(key_file))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1].startswith("VERIFIED: all") and "FAIL" not in ok.stdout

    failing = cctv("verify", str(bad), "--public-key", signer.public_key.hex())
    assert failing.returncode == 1
    assert f"FAIL item[{REF}].custody.chain: entry 3: sequence number 3 at position 2" in failing.stdout
    assert failing.stdout.splitlines()[-1].startswith("NOT VERIFIED: 3 of")

    as_json = cctv("verify", str(bad), "--public-key", signer.public_key.hex(), "--json")
    document = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and document["ok"] is False
    assert {c["name"] for c in document["checks"] if not c["ok"]} == {
        "bundle.files",
        f"item[{REF}].custody.chain",
        f"item[{REF}].custody.checkpoint",  # position 4 now holds entry 5, not the head it recorded
    }

    assert cctv("verify", str(tmp_path / "absent.zip"), "--public-key", str(key_file)).returncode == 2
    assert cctv("verify", str(good)).returncode == 2  # no key: usage error
    unusable = cctv("verify", str(good), "--public-key", "not-a-key")
    assert unusable.returncode == 2 and "public key" in unusable.stderr
