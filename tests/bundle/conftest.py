"""Real evidence items and bundles shared by the bundle tests (module-scoped: built once per file)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cctv.config import Camera
from cctv.local_tsa import LocalTsa
from evidence_store.bundle import BundleItem, build_bundle
from evidence_store.package import EvidencePackage
from evidence_store.signing import ManifestSigner
from evidence_store.timestamp import request_token
from tests.bundle_support import (
    REF,
    REF2,
    SUMMER,
    WINTER,
    bundle_item,
    redacted_item,
    request,
    sealed_package,
)

# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def signer() -> ManifestSigner:
    return ManifestSigner.generate()


@pytest.fixture(scope="module")
def other_signer() -> ManifestSigner:
    return ManifestSigner.generate()


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    with LocalTsa(tmp_path_factory.mktemp("bundle-tsa")) as running:
        yield running


@pytest.fixture(scope="module")
def tsa_ca(tsa: LocalTsa) -> bytes:
    return tsa.ca_pem_path.read_bytes()


@pytest.fixture(scope="module")
def camera() -> Camera:
    return Camera(
        id="cam-hs-n",
        name="High Street North",
        location="12 High Street, Exampleton",
        source="sim://loiterer?size=320x240&seed=3",
        fps=5,
    )


@pytest.fixture(scope="module")
def package(camera: Camera, signer: ManifestSigner) -> EvidencePackage:
    return sealed_package(camera, SUMMER, signer, count=10)


@pytest.fixture(scope="module")
def item(package: EvidencePackage, signer: ManifestSigner, tsa: LocalTsa) -> BundleItem:
    token = request_token(tsa.url, package.manifest_sha256, timeout_s=10)
    return bundle_item(package, REF, signer, token=token, extras=True)


@pytest.fixture(scope="module")
def item2(camera: Camera, signer: ManifestSigner) -> BundleItem:
    park = camera.model_copy(update={"id": "cam-park", "name": "Park Gate", "location": "Park Road"})
    return bundle_item(sealed_package(park, WINTER, signer, count=6), REF2, signer, token=None, extras=False)


@pytest.fixture(scope="module")
def bundle(item: BundleItem, signer: ManifestSigner, tsa_ca: bytes) -> bytes:
    return build_bundle([item], request(), signer, tsa_ca)


@pytest.fixture(scope="module")
def redacted_bundle(item: BundleItem, signer: ManifestSigner, tsa_ca: bytes) -> bytes:
    return build_bundle([redacted_item(item)], request(contents="redacted"), signer, tsa_ca)
