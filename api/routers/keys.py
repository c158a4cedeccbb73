"""Public keys that verify manifests, export bundles and custody checkpoints (public: no actor needed)."""

from __future__ import annotations

from fastapi import APIRouter

from api.access import PUBLIC
from api.checkpoints import PublicKey, published_keys
from api.deps import SettingsDep, SignerDep
from api.schemas import KeysOut, PublicKeyOut

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


@router.get(
    "",
    response_model=KeysOut,
    summary="The current Ed25519 signing public key and the retired keys that still verify older items",
    dependencies=PUBLIC,
)
def get_keys(signer: SignerDep, settings: SettingsDep) -> KeysOut:
    current, *retired = published_keys(signer, settings)
    return KeysOut(current=_out(current), retired=[_out(k) for k in retired])


def _out(key: PublicKey) -> PublicKeyOut:
    return PublicKeyOut(key_id=key.key_id, algorithm=key.algorithm, public_key=key.public_key)
