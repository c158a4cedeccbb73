"""Court export bundles: read every item hash-checked, record the export, sign the bundle, lock it.

Order, and why:

1. every artifact of every item is read with :func:`api.integrity.fetch_verified`
   (master, working copy, manifest, its signature, the timestamp token, and each
   finished redaction's video, record and signature). A mismatch aborts the whole
   export before anything is recorded as exported (``download_refused`` on that
   item, 502), so no bundle ever carries bytes that differ from what was sealed;
2. an ``exported`` entry is appended to every item's chain, all in one
   transaction, BEFORE the bundle is built: the bundle then carries its own
   export in each custody extract. Its object is the item's manifest (the bundle's
   own hash cannot be in it: the bundle contains the entry); ``details`` name the
   export id and the bundle's key;
3. a signed checkpoint of every chain head is written now (:func:`write_checkpoint`),
   so the checkpoint inside the bundle covers each chain up to and including
   the export entry; the chains are read after it, so each passes through it;
4. :func:`build_bundle` signs the index with the API's key; the ZIP is stored
   COMPLIANCE-locked in the evidence bucket under
   ``exports/<YYYY>/<MM>/<DD>/<export_id>.zip`` (``evidence.export_retention_days``)
   and read back (:meth:`EvidenceStore.put_locked`); then the ``exports`` row.

If step 3 or 4 fails after the entries of step 2 were committed, a
``download_refused`` entry (``result: export_failed``) follows them, so the log
never leaves an export looking complete when no bundle was stored.

Contents (``ExportIn.contents``): ``full`` carries each item's master, working
copy and every done redaction. ``redacted`` is a disclosure to a third party
(ICO CCTV guidance: people other than the subjects obscured): the chosen
redactions (``redaction_ids``, else each item's newest done one) and never the
master or working copy, which are not even read. An item without a done
redaction is refused (409) before anything is read or recorded; the exported
entry's details name the contents and the redaction ids disclosed.

Exhibit references: a case export uses the case's exhibit refs
(``<case reference>/<nnn>``); an export of items uses each evidence id as its
reference (stable, unique, and what the exhibit report and custody log name).

Memory: the bundle builder is pure (bytes in, bytes out), so every item's
objects and the ZIP are in memory together, about twice the exported bytes.
Items are clips of tens of MB; :func:`fetch_verified` spools each read to disk
past 8 MB, but a case of many long clips would need a streaming ZIP writer.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api import custody, holds
from api.checkpoints import write_checkpoint
from api.custody import Actor
from api.integrity import fetch_verified
from api.metrics import ApiMetrics
from api.models import REDACTION_DONE, CaseItemRow, CaseRow, EvidenceRow, ExportRow, RedactionRow
from api.problems import Problem, not_found
from api.schemas_legal import ExportIn
from api.serving import ObjectRef, fetch_or_refuse, record_each
from cctv.config import Settings
from cctv.contracts import ArtifactKind
from evidence_store.bundle import REDACTED, BundleItem, ExportRequest, build_bundle, redaction_links
from evidence_store.custody import CustodyAction
from evidence_store.signing import ManifestSigner
from evidence_store.store import EvidenceStore, retain_until_for

log = logging.getLogger(__name__)

EXPORTS_PREFIX = "exports/"
REQUIRED = (ArtifactKind.MANIFEST, ArtifactKind.SIGNATURE, ArtifactKind.MASTER)
OPTIONAL = (ArtifactKind.WORKING_COPY, ArtifactKind.TIMESTAMP)
UNREDACTED = (ArtifactKind.MASTER, ArtifactKind.WORKING_COPY)  # never read for a redacted export


def export_key(export_id: uuid.UUID, at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{EXPORTS_PREFIX}{at:%Y/%m/%d}/{export_id}.zip"


def bundle_ref(row: ExportRow) -> ObjectRef:
    return ObjectRef(ArtifactKind.EXPORT_BUNDLE.value, row.bucket, row.key, row.version_id, row.sha256)


def exported_ids(row: ExportRow) -> list[uuid.UUID]:
    return [uuid.UUID(e) for e in row.evidence_ids]


@dataclass(frozen=True)
class Exhibit:
    evidence: EvidenceRow
    exhibit_ref: str


@dataclass(frozen=True)
class Selection:
    exhibits: list[Exhibit]
    case: CaseRow | None

    @property
    def evidence_ids(self) -> list[uuid.UUID]:
        return [e.evidence.evidence_id for e in self.exhibits]


def select_items(session: Session, body: ExportIn) -> Selection:
    """The items to export in bundle order (404 naming the first missing item or case)."""
    if body.case_id is not None:
        case = session.scalar(
            select(CaseRow).where(CaseRow.case_id == body.case_id).options(selectinload(CaseRow.items))
        )
        if case is None:
            raise not_found("case", body.case_id)
        if not case.items:
            raise Problem(
                409, "Case has no exhibits", f"case {case.reference} has no evidence items to export"
            )
        items: list[CaseItemRow] = sorted(case.items, key=lambda i: i.number)
        return Selection(
            [Exhibit(holds.load_evidence(session, i.evidence_id), i.exhibit_ref) for i in items], case
        )
    ids = list(dict.fromkeys(body.evidence_ids or []))  # a repeated id is exported once
    return Selection([Exhibit(holds.load_evidence(session, e), str(e)) for e in ids], None)


# --------------------------------------------------------------------------- redactions


def _done_redactions(session: Session, evidence_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[RedactionRow]]:
    """Every done redaction of each item, oldest first."""
    rows = session.scalars(
        select(RedactionRow)
        .where(RedactionRow.evidence_id.in_(evidence_ids), RedactionRow.status == REDACTION_DONE)
        .order_by(RedactionRow.created_at, RedactionRow.redaction_id)
    ).all()
    done: dict[uuid.UUID, list[RedactionRow]] = {e: [] for e in evidence_ids}
    for row in rows:
        done[row.evidence_id].append(row)
    return done


def _named_redactions(session: Session, selection: Selection, ids: list[uuid.UUID]) -> list[RedactionRow]:
    """The redactions a redacted export names: each must exist, be done and be of an exported item."""
    rows = {
        r.redaction_id: r
        for r in session.scalars(select(RedactionRow).where(RedactionRow.redaction_id.in_(ids)))
    }
    exported = set(selection.evidence_ids)
    for redaction_id in ids:
        row = rows.get(redaction_id)
        if row is None:
            raise not_found("redaction", redaction_id)
        if row.evidence_id not in exported:
            raise Problem(
                409,
                "Redaction of another item",
                f"redaction {redaction_id} is of evidence {row.evidence_id}, which is not in this export",
            )
        if row.status != REDACTION_DONE:
            raise Problem(409, "Redaction not done", f"redaction {redaction_id} is {row.status}, not done")
    return [rows[i] for i in dict.fromkeys(ids)]


def choose_redactions(
    session: Session, selection: Selection, body: ExportIn
) -> dict[uuid.UUID, list[RedactionRow]]:
    """Per item, the redactions the bundle carries. Full: every done one. Redacted: those named in
    ``redaction_ids``, else the newest done one; an item with none is refused (409) naming it."""
    done = _done_redactions(session, selection.evidence_ids)
    if body.contents != REDACTED:
        return done
    named = _named_redactions(session, selection, body.redaction_ids or [])
    chosen: dict[uuid.UUID, list[RedactionRow]] = {}
    for exhibit in selection.exhibits:
        evidence_id = exhibit.evidence.evidence_id
        mine = [r for r in named if r.evidence_id == evidence_id]
        chosen[evidence_id] = mine or done[evidence_id][-1:]
        if not chosen[evidence_id]:
            raise Problem(
                409,
                "No redaction to disclose",
                f"exhibit {exhibit.exhibit_ref} (evidence {evidence_id}) has no done redaction: a redacted "
                "export discloses redacted copies only; request a redaction of it first",
                extra={"evidence_id": str(evidence_id), "exhibit_ref": exhibit.exhibit_ref},
            )
    return chosen


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Reader:
    """Hash-checked reads for one export: refusals are recorded on the item they concern."""

    session: Session
    store: Minio
    metrics: ApiMetrics
    actor: Actor
    reason: str
    export_id: uuid.UUID

    def read(self, evidence_id: uuid.UUID, obj: ObjectRef) -> bytes:
        details: dict[str, Any] = {"purpose": "export", "export_id": str(self.export_id)}
        verified = fetch_or_refuse(
            self.session,
            self.store,
            self.metrics,
            obj,
            [evidence_id],
            self.actor,
            reason=self.reason,
            details=details,
        )
        with verified.file:
            verified.file.seek(0)
            return verified.file.read()


@dataclass
class ItemData:
    exhibit: Exhibit
    artifacts: dict[ArtifactKind, bytes]
    derivatives: dict[str, bytes]
    redaction_ids: list[str]


def _read_item(reader: Reader, exhibit: Exhibit, redactions: list[RedactionRow], contents: str) -> ItemData:
    evidence = exhibit.evidence
    by_kind = {a.kind: a for a in evidence.artifacts}
    missing = [k.value for k in REQUIRED if k.value not in by_kind]
    if missing:
        raise Problem(
            409,
            "Evidence incomplete",
            f"evidence {evidence.evidence_id} lacks {', '.join(missing)}: not exported",
        )
    data: dict[ArtifactKind, bytes] = {}
    skipped = UNREDACTED if contents == REDACTED else ()
    for kind in (*REQUIRED, *OPTIONAL):
        if kind not in skipped and (a := by_kind.get(kind.value)) is not None:
            obj = ObjectRef(kind.value, evidence.bucket, a.key, a.version_id, a.sha256)
            data[kind] = reader.read(evidence.evidence_id, obj)
    derivatives = _read_redactions(reader, evidence, redactions)
    if contents == REDACTED:
        _require_link(exhibit, data[ArtifactKind.MANIFEST], derivatives)
    return ItemData(exhibit, data, derivatives, [str(r.redaction_id) for r in redactions])


def _require_link(exhibit: Exhibit, manifest: bytes, derivatives: dict[str, bytes]) -> None:
    """Refused before anything is recorded: a redacted bundle whose copies are not of this master."""
    master_sha = json.loads(manifest)["artifacts"]["master"]["sha256"]
    if not redaction_links(derivatives, master_sha):
        raise Problem(
            409,
            "Redaction does not match the item",
            f"no chosen redaction of exhibit {exhibit.exhibit_ref} names its master sha256 {master_sha}",
        )


def _read_redactions(reader: Reader, evidence: EvidenceRow, rows: list[RedactionRow]) -> dict[str, bytes]:
    """The chosen redactions as ``<id>.mp4``, ``<id>.json``, ``<id>.sig.json`` (the verifier's names)."""
    files: dict[str, bytes] = {}
    for row in rows:
        parts = (
            (ArtifactKind.REDACTED_COPY, ".mp4", row.video_key, row.video_version, row.video_sha256),
            (ArtifactKind.REDACTION_RECORD, ".json", row.record_key, row.record_version, row.record_sha256),
            (
                ArtifactKind.REDACTION_SIGNATURE,
                ".sig.json",
                row.signature_key,
                row.signature_version,
                row.signature_sha256,
            ),
        )
        for kind, suffix, key, version, sha256 in parts:
            assert key is not None and sha256 is not None  # set together when the job is done
            obj = ObjectRef(kind.value, evidence.bucket, key, version, sha256)
            files[f"{row.redaction_id}{suffix}"] = reader.read(evidence.evidence_id, obj)
    return files


def _read_checkpoint(store: Minio, settings: Settings, row: Any) -> tuple[bytes, bytes]:
    """The checkpoint just written, as the bucket holds it (document hash-checked, signature as stored)."""
    bucket = settings.s3.evidence_bucket
    document = fetch_verified(store, bucket, row.object_key, row.version_id, row.sha256)
    with document.file:
        document.file.seek(0)
        data = document.file.read()
    response = store.get_object(bucket, row.signature_key, version_id=row.signature_version_id)
    try:
        return data, bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def _tsa_ca(settings: Settings) -> bytes | None:
    path = settings.evidence.tsa_ca_path
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:  # the verifier can still be given the CA; the bundle says it lacks one
        log.error("evidence.tsa_ca_path %s unreadable, bundle made without tsa-ca.pem: %s", path, exc)
        return None


# --------------------------------------------------------------------------- the export


@dataclass(frozen=True)
class Exporter:
    session: Session
    store: Minio
    settings: Settings
    signer: ManifestSigner
    metrics: ApiMetrics

    def export(self, actor: Actor, body: ExportIn) -> ExportRow:
        selection = select_items(self.session, body)
        export_id, now = uuid.uuid4(), datetime.now(UTC)
        key = export_key(export_id, now)
        chosen = choose_redactions(self.session, selection, body)
        reader = Reader(self.session, self.store, self.metrics, actor, body.reason, export_id)
        items = [
            _read_item(reader, e, chosen[e.evidence.evidence_id], body.contents) for e in selection.exhibits
        ]
        self._record_exported(actor, body, selection, items, export_id, key, now)
        try:
            return self._seal(actor, body, selection, items, export_id, key, now)
        except Exception as exc:
            self.session.rollback()
            log.error("export %s failed after it was recorded: %s", export_id, exc)
            record_each(
                self.session,
                selection.evidence_ids,
                CustodyAction.DOWNLOAD_REFUSED,
                actor,
                reason=body.reason,
                obj=None,
                details={
                    "purpose": "export",
                    "export_id": str(export_id),
                    "result": "export_failed",
                    "error": str(exc),
                },
            )
            if isinstance(exc, Problem):
                raise
            raise Problem(502, "Export failed", f"export {export_id} was not stored: {exc}") from exc

    def _record_exported(
        self,
        actor: Actor,
        body: ExportIn,
        selection: Selection,
        items: list[ItemData],
        export_id: uuid.UUID,
        key: str,
        now: datetime,
    ) -> None:
        case = selection.case
        details = {
            "export_id": str(export_id),
            "bundle_key": key,
            "contents": body.contents,
            "recipient": body.recipient,
            "organisation": body.organisation,
            "case_id": str(case.case_id) if case else None,
            "case_reference": case.reference if case else None,
            "items_in_bundle": len(selection.exhibits),
        }

        def work(s: Session) -> None:
            for item in items:
                exhibit = item.exhibit
                manifest = next(
                    a for a in exhibit.evidence.artifacts if a.kind == ArtifactKind.MANIFEST.value
                )
                custody.append(
                    s,
                    exhibit.evidence.evidence_id,
                    CustodyAction.EXPORTED,
                    actor,
                    at=now,
                    reason=body.reason,
                    object_key=manifest.key,
                    object_version=manifest.version_id,
                    object_sha256=manifest.sha256,
                    details={
                        **details,
                        "exhibit_ref": exhibit.exhibit_ref,
                        "redaction_ids": item.redaction_ids,
                    },
                )

        custody.commit_with_retry(self.session, work)

    def _seal(
        self,
        actor: Actor,
        body: ExportIn,
        selection: Selection,
        items: list[ItemData],
        export_id: uuid.UUID,
        key: str,
        now: datetime,
    ) -> ExportRow:
        checkpoint = write_checkpoint(self.session, self.store, self.settings, self.signer)
        signed = _read_checkpoint(self.store, self.settings, checkpoint)
        case = selection.case
        request = ExportRequest(
            export_id=str(export_id),
            created_at=now,
            actor=actor.name,
            role=actor.role.value,
            reason=body.reason,
            recipient=body.recipient,
            organisation=body.organisation,
            case_reference=case.reference if case else None,
            case_title=case.title if case else None,
            contents=body.contents,
        )
        bundle_items = [self._bundle_item(item, signed) for item in items]
        data = build_bundle(bundle_items, request, self.signer, _tsa_ca(self.settings))
        retain_until = retain_until_for(datetime.now(UTC), self.settings.evidence.export_retention_days)
        stored = EvidenceStore(self.store, self.settings.s3).put_locked(
            ArtifactKind.EXPORT_BUNDLE, key, data, retain_until
        )
        row = ExportRow(
            export_id=export_id,
            created_at=now,
            actor=actor.name,
            role=actor.role.value,
            reason=body.reason,
            recipient=body.recipient,
            organisation=body.organisation,
            case_id=case.case_id if case else None,
            case_reference=case.reference if case else None,
            contents=body.contents,
            items=[
                {
                    "evidence_id": str(i.exhibit.evidence.evidence_id),
                    "exhibit_ref": i.exhibit.exhibit_ref,
                    "redaction_ids": i.redaction_ids,
                }
                for i in items
            ],
            bucket=self.settings.s3.evidence_bucket,
            key=stored.key,
            version_id=stored.version_id,
            sha256=stored.sha256,
            size=stored.size,
        )
        self.session.add(row)
        self.session.commit()
        log.info("export %s: %d item(s), %d bytes, %s", export_id, len(items), stored.size, stored.key)
        return row

    def _bundle_item(self, item: ItemData, checkpoint: tuple[bytes, bytes]) -> BundleItem:
        evidence_id = item.exhibit.evidence.evidence_id
        data = item.artifacts
        return BundleItem(
            evidence_id=str(evidence_id),
            exhibit_ref=item.exhibit.exhibit_ref,
            manifest=data[ArtifactKind.MANIFEST],
            signature=data[ArtifactKind.SIGNATURE],
            master=data.get(ArtifactKind.MASTER),  # absent from a redacted export: never read
            working_copy=data.get(ArtifactKind.WORKING_COPY),
            timestamp_token=data.get(ArtifactKind.TIMESTAMP),
            custody=custody.read_chain(self.session, evidence_id),
            checkpoint=checkpoint,
            derivatives=item.derivatives,
        )
