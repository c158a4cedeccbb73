"""Redacted-only disclosure bundles: the unredacted master and working copy are withheld, and the
offline verifier still proves what was withheld and that each redaction derives from it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from typing import Any

import pytest

from cctv.contracts import sha256_hex
from evidence_store.bundle import BundleItem, build_bundle
from evidence_store.package import EvidencePackage
from evidence_store.signing import ManifestSigner
from evidence_store.verify import verify_bundle
from tests.bundle_support import (
    ITEM,
    MEMBERS,
    REF,
    details,
    edited_index,
    failed,
    first_frame,
    foreign_redaction,
    members,
    redacted_item,
    request,
    resigned,
    tampered,
)

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the OpenSSL CLI (openssl) is missing: it runs the local TSA"
)
# --------------------------------------------------------------------------- redacted disclosures

RED = f"item[{REF}]"
REDACTIONS = tuple(f"{ITEM}/redactions/blurred-000.{ext}" for ext in ("jpg", "json", "sig.json"))


def master_sha(item: BundleItem) -> str:
    return str(json.loads(item.manifest)["artifacts"]["master"]["sha256"])


def test_redacted_bundle_verifies_without_the_unredacted_footage(
    bundle: bytes, redacted_bundle: bytes, item: BundleItem, package: EvidencePackage, signer: ManifestSigner
) -> None:
    report = verify_bundle(redacted_bundle, [signer.public_key])
    assert report.ok, report.render()
    files = members(redacted_bundle)
    assert tuple(files) == tuple(m for m in MEMBERS if not m.endswith(("master.tar", "working.mp4")))
    frame = first_frame(package)
    assert not any(frame in data for data in files.values())  # not one original frame leaks
    manifest = json.loads(item.manifest)["artifacts"]
    working = manifest["working_copy"]
    entry = json.loads(files["bundle.json"])["items"][0]
    assert entry["contents"] == "redacted"
    assert entry["withheld"] == {
        "master.tar": {"sha256": master_sha(item), "size": len(item.master or b"")},
        "working.mp4": {"sha256": working["sha256"], "size": working["size"]},
    }
    found = details(report)
    withheld = "withheld from this redacted disclosure; the signed manifest records sha256"
    for check in ("master.sha256", "master.frames"):
        assert f"{withheld} {master_sha(item)} (10 frames)" in found[f"{RED}.{check}"]
    assert f"{withheld} {working['sha256']}" in found[f"{RED}.working_copy.sha256"]
    assert "in place of the withheld master" in found[f"{RED}.redactions"]
    assert "redactions/blurred-000.jpg" not in found[f"{RED}.redactions"]  # relative to the folder
    assert "blurred-000.jpg (record blurred-000.json)" in found[f"{RED}.redactions"]
    exhibit = files["exhibit_report.txt"].decode()
    for expected in (
        "REDACTED COPY ONLY. The unredacted footage was WITHHELD",
        f"withheld        master.tar (the original frames): sha256 {master_sha(item)}",
        f"withheld        working.mp4 (the viewing copy): sha256 {working['sha256']}",
        "Redacted copy:    redactions/blurred-000.jpg\n"
        "                  a DERIVATIVE made from the master, not the original recording",
        "redactions/blurred-000.json names the master's sha256 and this copy's sha256",
    ):
        assert expected in exhibit, expected
    readme = files["README.txt"].decode()
    assert "THIS IS A REDACTED DISCLOSURE" in readme and "master.tar          WITHHELD" in readme
    full = members(bundle)
    assert "REDACTED" not in full["README.txt"].decode() + full["exhibit_report.txt"].decode()


def test_removing_the_redaction_fails_naming_it(redacted_bundle: bytes, signer: ManifestSigner) -> None:
    removed = failed(verify_bundle(tampered(redacted_bundle, dict.fromkeys(REDACTIONS)), [signer.public_key]))
    assert f"{REDACTIONS[0]} is listed but missing" in removed["bundle.files"]
    assert "this redacted disclosure carries no redacted copy" in removed[f"{RED}.redactions"]
    by_key_holder = failed(
        verify_bundle(resigned(redacted_bundle, dict.fromkeys(REDACTIONS), signer), [signer.public_key])
    )
    assert set(by_key_holder) == {f"{RED}.redactions"}
    record_only = failed(
        verify_bundle(resigned(redacted_bundle, {REDACTIONS[1]: None}, signer), [signer.public_key])
    )
    detail = record_only[f"{RED}.redactions"]
    assert "blurred-000.sig.json has no record blurred-000.json" in detail
    assert "blurred-000.jpg (sha256" in detail and "is named by no valid signed record" in detail


def test_a_redaction_record_for_another_master_fails(
    redacted_bundle: bytes, item: BundleItem, signer: ManifestSigner, tsa_ca: bytes
) -> None:
    foreign = foreign_redaction(item, signer)
    swapped = {f"{ITEM}/redactions/{name}": data for name, data in foreign.items()}
    failures = failed(verify_bundle(resigned(redacted_bundle, swapped, signer), [signer.public_key]))
    assert set(failures) == {f"{RED}.redactions"}
    detail = failures[f"{RED}.redactions"]
    assert f"blurred-000.json does not name this item's master sha256 {master_sha(item)}" in detail
    assert "no redacted copy in this redacted disclosure has a valid signed record" in detail
    # Beside a genuine one, a foreign record still fails (in a full bundle too).
    other = foreign["blurred-000.jpg"] + b"x"
    record = foreign["blurred-000.json"].replace(
        sha256_hex(foreign["blurred-000.jpg"]).encode(), sha256_hex(other).encode()
    )
    extra = {"other.jpg": other, "other.json": record, "other.sig.json": signer.sign(record)}
    both = replace(item, derivatives={**item.derivatives, **extra})
    full = failed(verify_bundle(build_bundle([both], request(), signer, tsa_ca), [signer.public_key]))
    assert set(full) == {f"{RED}.redactions"}
    assert "other.json does not name this item's master sha256" in full[f"{RED}.redactions"]


def test_a_full_bundle_missing_its_master_fails(bundle: bytes, signer: ManifestSigner) -> None:
    gone = {f"{ITEM}/master.tar": None}
    removed = failed(verify_bundle(tampered(bundle, gone), [signer.public_key]))
    assert removed[f"{RED}.master.sha256"] == "master.tar is missing"
    assert f"{ITEM}/master.tar is listed but missing" in removed["bundle.files"]
    # Re-signed by a key holder, the index still says "full": the master must be there.
    by_key_holder = failed(verify_bundle(resigned(bundle, gone, signer), [signer.public_key]))
    assert set(by_key_holder) == {f"{RED}.master.sha256", f"{RED}.master.frames"}
    assert by_key_holder[f"{RED}.master.frames"] == "master.tar is missing"


def test_editing_contents_in_the_index_fails_the_signature(
    bundle: bytes, redacted_bundle: bytes, item: BundleItem, signer: ManifestSigner
) -> None:
    def to_redacted(index: dict[str, Any]) -> None:
        index["items"][0].update(
            contents="redacted",
            withheld=json.loads(members(redacted_bundle)["bundle.json"])["items"][0]["withheld"],
        )

    def to_full(index: dict[str, Any]) -> None:
        index["items"][0].update(contents="full", withheld={})

    stripped = tampered(bundle, {f"{ITEM}/master.tar": None, f"{ITEM}/working.mp4": None})
    flipped = failed(verify_bundle(edited_index(stripped, to_redacted), [signer.public_key]))
    assert "bundle.json altered" in flipped["bundle.signature"]
    back = failed(verify_bundle(edited_index(redacted_bundle, to_full), [signer.public_key]))
    assert "bundle.json altered" in back["bundle.signature"]
    assert back[f"{RED}.master.sha256"] == "master.tar is missing"
    # A redacted disclosure that carries the master anyway (index re-signed) is refused too.
    leaked = resigned(redacted_bundle, {f"{ITEM}/master.tar": item.master}, signer)
    failures = failed(verify_bundle(leaked, [signer.public_key]))
    assert set(failures) == {f"{RED}.master.sha256", f"{RED}.master.frames"}
    assert "unredacted footage disclosed" in failures[f"{RED}.master.sha256"]
    odd = failed(
        verify_bundle(
            edited_index(redacted_bundle, lambda i: i["items"][0].update(contents="some")),
            [signer.public_key],
        )
    )
    assert "item 0 has contents 'some'" in odd["bundle.index"]


def test_build_bundle_refuses_what_a_redacted_bundle_must_not_hold(
    item: BundleItem, signer: ManifestSigner
) -> None:
    redacted, only = redacted_item(item), request(contents="redacted")
    for leak in (replace(redacted, master=item.master), replace(redacted, working_copy=item.working_copy)):
        with pytest.raises(ValueError, match="unredacted footage must be withheld"):
            build_bundle([leak], only, signer)
    for derivatives in ({}, foreign_redaction(item, signer)):
        with pytest.raises(
            ValueError, match=f"JS/1: a redacted bundle needs a redaction.*{master_sha(item)}"
        ):
            build_bundle([replace(redacted, derivatives=derivatives)], only, signer)
    with pytest.raises(ValueError, match="a full bundle needs the master"):
        build_bundle([redacted], request(), signer)
    with pytest.raises(ValueError, match="contents 'partial'"):
        build_bundle([item], replace(request(), contents="partial"), signer)  # type: ignore[arg-type]
