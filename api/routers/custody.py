"""The custody log as a whole: verification against the signed WORM checkpoints, and writing one now."""

from __future__ import annotations

from fastapi import APIRouter
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from api.checkpoints import CustodyVerification, published_keys, verify_against_checkpoints, write_checkpoint
from api.deps import ActorDep, LegalActorDep, SessionDep, SettingsDep, SignerDep, StoreDep
from api.problems import Problem
from api.schemas import CheckpointOut, CheckpointWrittenOut, CustodyVerifyOut

STORE_ERRORS = (S3Error, HTTPError, OSError)

router = APIRouter(prefix="/api/v1/custody", tags=["custody"])


def verification_out(result: CustodyVerification) -> CustodyVerifyOut:
    return CustodyVerifyOut(
        ok=result.ok,
        chains_checked=result.chains_checked,
        entries_checked=result.entries_checked,
        checkpoints=[
            CheckpointOut(
                key=c.key,
                version_id=c.version_id,
                sha256=c.sha256,
                at=c.document.get("at"),
                items=len(c.document.get("items", {})),
                signature_ok=c.signature_ok,
                key_id=c.key_id,
                problems=c.problems,
            )
            for c in result.checkpoints
        ],
        problems=result.problems,
        warnings=result.warnings,
    )


@router.get(
    "/verify",
    response_model=CustodyVerifyOut,
    summary="Verify every custody chain and check it against the newest signed checkpoints in the bucket",
)
def verify(
    session: SessionDep, store: StoreDep, settings: SettingsDep, signer: SignerDep, _actor: ActorDep
) -> CustodyVerifyOut:
    try:
        result = verify_against_checkpoints(session, store, settings, published_keys(signer, settings))
    except STORE_ERRORS as exc:
        raise Problem(502, "Evidence store unavailable", f"cannot read custody checkpoints: {exc}") from exc
    return verification_out(result)


@router.post(
    "/checkpoints",
    response_model=CheckpointWrittenOut,
    status_code=201,
    summary="Write a signed checkpoint of every chain head to the WORM bucket now (legal, admin)",
)
def post_checkpoint(
    session: SessionDep, store: StoreDep, settings: SettingsDep, signer: SignerDep, _actor: LegalActorDep
) -> CheckpointWrittenOut:
    try:
        row = write_checkpoint(session, store, settings, signer)
    except STORE_ERRORS as exc:
        raise Problem(502, "Evidence store unavailable", f"cannot write the checkpoint: {exc}") from exc
    return CheckpointWrittenOut.model_validate(row)
