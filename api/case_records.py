"""What a case holds and what happened to it: exhibits (one item or a whole incident), notes, the timeline.

Exhibits: one code path adds one item or every sealed item of an incident, so an
exhibit added either way gets the same ``added_to_case`` custody entry and, when
the case is held, the same store hold first and ``hold_placed`` entry after (the
order :mod:`api.holds` explains). All items of one request are numbered and
recorded in one transaction: an incident's items become exhibits together or
not at all. Numbers are read inside the unit of work, so a concurrent add that
won the race is re-read on retry and never renumbered.

The timeline is assembled from what is already recorded, nothing kept twice:
the case row, the exhibits' incidents (alert time) and case items, the hold
entries on the exhibits' custody chains that name this case, the case's exports
and their share links, and the notes. A case hold changes every exhibit's chain
with one entry each; the entries of one request carry the same ``operation`` id
in their details, so the timeline shows that request once. (A hold on a case
with no exhibits leaves no entry anywhere: the case row has only the current
state.)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args

from minio import Minio
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api import custody, holds
from api.access import Principal
from api.models import (
    CaseItemRow,
    CaseNoteRow,
    CaseRow,
    CustodyEntryRow,
    EvidenceRow,
    ExportRow,
    IncidentRow,
    ShareRow,
)
from api.problems import Problem, not_found
from api.schemas_legal import (
    CaseItemOut,
    CaseNoteOut,
    CaseOut,
    CaseSummaryOut,
    TimelineEventOut,
    TimelineKind,
)
from evidence_store.custody import CustodyAction

HOLD_ACTIONS = (CustodyAction.HOLD_PLACED.value, CustodyAction.HOLD_RELEASED.value)
# Same-instant events read in the order they happen (TimelineKind lists them in that order).
KIND_ORDER: dict[str, int] = {kind: n for n, kind in enumerate(get_args(TimelineKind))}


# --------------------------------------------------------------------------- reading


def load_case(session: Session, case_id: uuid.UUID) -> CaseRow:
    row = session.scalar(
        select(CaseRow)
        .where(CaseRow.case_id == case_id)
        .options(selectinload(CaseRow.items).selectinload(CaseItemRow.evidence))
    )
    if row is None:
        raise not_found("case", case_id)
    return row


def item_out(item: CaseItemRow, evidence: EvidenceRow | None = None) -> CaseItemOut:
    evidence = evidence or item.evidence
    return CaseItemOut(
        evidence_id=item.evidence_id,
        number=item.number,
        exhibit_ref=item.exhibit_ref,
        added_at=item.added_at,
        added_by=item.added_by,
        incident_id=evidence.incident_id,
        camera_id=evidence.camera_id,
        sealed_at=evidence.sealed_at,
    )


@dataclass
class Counts:
    items: int = 0
    incidents: int = 0
    exports: int = 0
    notes: int = 0


def counts(session: Session, case_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, Counts]:
    """Exhibits, distinct incidents, exports and notes per case (all cases when ``case_ids`` is None)."""

    def only(query: Any, column: Any) -> Any:
        return query if case_ids is None else query.where(column.in_(case_ids))

    found: dict[uuid.UUID, Counts] = {}
    items = only(
        select(CaseItemRow.case_id, func.count(), func.count(func.distinct(EvidenceRow.incident_id))).join(
            EvidenceRow, EvidenceRow.evidence_id == CaseItemRow.evidence_id
        ),
        CaseItemRow.case_id,
    ).group_by(CaseItemRow.case_id)
    for case_id, n, incidents in session.execute(items):
        found.setdefault(case_id, Counts()).items, found[case_id].incidents = n, incidents
    exports = only(
        select(ExportRow.case_id, func.count()).where(ExportRow.case_id.is_not(None)), ExportRow.case_id
    ).group_by(ExportRow.case_id)
    for case_id, n in session.execute(exports):
        found.setdefault(case_id, Counts()).exports = n
    notes = only(select(CaseNoteRow.case_id, func.count()), CaseNoteRow.case_id).group_by(CaseNoteRow.case_id)
    for case_id, n in session.execute(notes):
        found.setdefault(case_id, Counts()).notes = n
    return found


def _summary(row: CaseRow, n: Counts) -> dict[str, Any]:
    return {
        "case_id": row.case_id,
        "reference": row.reference,
        "title": row.title,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "legal_hold": row.legal_hold,
        "item_count": n.items,
        "incident_count": n.incidents,
        "export_count": n.exports,
        "note_count": n.notes,
    }


def summaries(session: Session) -> list[CaseSummaryOut]:
    """Every case, newest first, with its counts."""
    found = counts(session)
    rows = session.scalars(select(CaseRow).order_by(CaseRow.created_at.desc(), CaseRow.reference))
    return [CaseSummaryOut(**_summary(r, found.get(r.case_id, Counts()))) for r in rows]


def case_out(session: Session, row: CaseRow) -> CaseOut:
    n = counts(session, [row.case_id]).get(row.case_id, Counts())
    export_ids = session.scalars(
        select(ExportRow.export_id)
        .where(ExportRow.case_id == row.case_id)
        .order_by(ExportRow.created_at.desc(), ExportRow.export_id.desc())
    ).all()
    return CaseOut(
        **_summary(row, n),
        items=[item_out(i) for i in row.items],
        incident_ids=list(dict.fromkeys(i.evidence.incident_id for i in row.items)),
        export_ids=list(export_ids),
    )


# --------------------------------------------------------------------------- exhibits


def visible_evidence(session: Session, principal: Principal, evidence_id: uuid.UUID) -> EvidenceRow:
    """The item, or 404 when it does not exist or is of a camera the caller may not see."""
    evidence = holds.load_evidence(session, evidence_id)
    if not principal.may_see(evidence.camera_id):
        raise not_found("evidence", evidence_id)
    return evidence


def incident_evidence(
    session: Session, principal: Principal, case: CaseRow, incident_id: uuid.UUID
) -> list[EvidenceRow]:
    """The incident's sealed items not yet in the case, oldest seal first (404, or 409 with why none)."""
    incident = session.get(IncidentRow, incident_id)
    if incident is None or not principal.may_see(incident.camera_id):
        raise not_found("incident", incident_id)
    sealed = session.scalars(
        select(EvidenceRow)
        .where(EvidenceRow.incident_id == incident_id)
        .options(selectinload(EvidenceRow.artifacts))
        .order_by(EvidenceRow.sealed_at, EvidenceRow.evidence_id)
    ).all()
    if not sealed:
        raise Problem(
            409,
            "No sealed evidence yet",
            f"incident {incident_id} has no sealed evidence item yet: the clip is sealed after the incident "
            "closes and its post-roll is recorded; add the incident again once it is sealed",
            extra={"incident_id": str(incident_id)},
        )
    present = {i.evidence_id: i.exhibit_ref for i in case.items}
    new = [e for e in sealed if e.evidence_id not in present]
    if not new:
        refs = [present[e.evidence_id] for e in sealed]
        raise Problem(
            409,
            "Already in the case",
            f"every sealed item of incident {incident_id} is already in case {case.reference}: "
            f"exhibit {', '.join(refs)}",
            extra={"exhibit_refs": refs},
        )
    return list(new)


def add_exhibits(
    session: Session,
    store: Minio,
    actor: Principal,
    case: CaseRow,
    evidence: Sequence[EvidenceRow],
    reason: str | None,
) -> list[CaseItemOut]:
    """Add the items as the case's next exhibits (held first if the case is); those already in are skipped."""
    case_id, reference = case.case_id, case.reference
    hold_details = {
        "scope": "case",
        "case_id": str(case_id),
        "case_reference": reference,
        "operation": str(uuid.uuid4()),
    }
    changes = (
        {
            e.evidence_id: holds.store_hold(session, store, e, True, actor, reason or "", hold_details)
            for e in evidence
        }
        if case.legal_hold
        else {}
    )
    wanted = [e.evidence_id for e in evidence]

    def work(s: Session) -> list[CaseItemRow]:
        present = set(
            s.scalars(
                select(CaseItemRow.evidence_id).where(
                    CaseItemRow.case_id == case_id, CaseItemRow.evidence_id.in_(wanted)
                )
            )
        )
        number = s.scalar(select(func.max(CaseItemRow.number)).where(CaseItemRow.case_id == case_id)) or 0
        added = []
        for evidence_id in (e for e in wanted if e not in present):
            number += 1
            item = CaseItemRow(
                case_id=case_id,
                evidence_id=evidence_id,
                number=number,
                exhibit_ref=f"{reference}/{number:03d}",
                added_at=datetime.now(UTC),
                added_by=actor.name,
            )
            s.add(item)
            s.flush()
            custody.append(
                s,
                evidence_id,
                CustodyAction.ADDED_TO_CASE,
                actor,
                at=item.added_at,
                reason=reason,
                details={
                    "case_id": str(case_id),
                    "case_reference": reference,
                    "exhibit_ref": item.exhibit_ref,
                },
            )
            if evidence_id in changes:
                hold_reason = reason or f"case {reference} is under legal hold"
                holds.record_hold(
                    s, evidence_id, True, actor, hold_reason, changes[evidence_id], hold_details
                )
            added.append(item)
        return added

    items = custody.commit_with_retry(session, work)
    by_id = {e.evidence_id: e for e in evidence}
    return [item_out(i, by_id[i.evidence_id]) for i in items]


# --------------------------------------------------------------------------- notes


def add_note(session: Session, actor: Principal, case_id: uuid.UUID, text: str) -> CaseNoteOut:
    row = CaseNoteRow(
        case_id=case_id, at=datetime.now(UTC), actor=actor.name, role=actor.role.value, text=text
    )
    session.add(row)
    session.commit()
    return CaseNoteOut.model_validate(row)


def notes(session: Session, case_id: uuid.UUID) -> list[CaseNoteOut]:
    rows = session.scalars(
        select(CaseNoteRow).where(CaseNoteRow.case_id == case_id).order_by(CaseNoteRow.at, CaseNoteRow.id)
    )
    return [CaseNoteOut.model_validate(r) for r in rows]


# --------------------------------------------------------------------------- timeline


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _incident_events(session: Session, items: Sequence[CaseItemRow]) -> list[TimelineEventOut]:
    refs: dict[uuid.UUID, list[str]] = {}
    for item in items:
        refs.setdefault(item.evidence.incident_id, []).append(item.exhibit_ref)
    incidents = session.scalars(select(IncidentRow).where(IncidentRow.incident_id.in_(list(refs))))
    events = []
    for incident in incidents:
        what = f"{incident.rule.replace('_', ' ')} alert" if incident.rule else "incident (details pending)"
        events.append(
            TimelineEventOut(
                at=incident.threshold_at,
                kind="incident_alert",
                label=f"{what.capitalize()} on camera {incident.camera_id}: {incident.summary}",
                ref=", ".join(refs[incident.incident_id]),
                incident_id=incident.incident_id,
                camera_id=incident.camera_id,
            )
        )
    return events


def _exhibit_events(items: Sequence[CaseItemRow]) -> list[TimelineEventOut]:
    return [
        TimelineEventOut(
            at=i.added_at,
            kind="exhibit_added",
            label=f"Exhibit {i.exhibit_ref} added: evidence sealed "
            f"{i.evidence.sealed_at:%Y-%m-%d %H:%M:%S} UTC from camera {i.evidence.camera_id}",
            actor=i.added_by,
            ref=i.exhibit_ref,
            evidence_id=i.evidence_id,
            incident_id=i.evidence.incident_id,
            camera_id=i.evidence.camera_id,
        )
        for i in items
    ]


@dataclass
class _HoldGroup:
    first: CustodyEntryRow
    refs: list[str] = field(default_factory=list)
    partial: bool = False


def _hold_events(session: Session, case: CaseRow) -> list[TimelineEventOut]:
    """This case's holds (one event per request) and the exhibits' own holds while in the case."""
    by_item = {i.evidence_id: i for i in case.items}
    rows = session.scalars(
        select(CustodyEntryRow)
        .where(CustodyEntryRow.evidence_id.in_(list(by_item)), CustodyEntryRow.action.in_(HOLD_ACTIONS))
        .order_by(CustodyEntryRow.at, CustodyEntryRow.id)
    )
    groups: dict[str, _HoldGroup] = {}
    for row in rows:
        details, item = row.details or {}, by_item[row.evidence_id]
        if details.get("scope") == "case" and details.get("case_id") == str(case.case_id):
            key = f"{row.action}:{details.get('operation') or row.id}"
        elif details.get("scope") == "item" and row.at >= item.added_at:
            key = f"item:{row.id}"
        else:
            continue  # another case's hold, or the item's own hold before it joined this case
        group = groups.setdefault(key, _HoldGroup(row))
        group.refs.append(item.exhibit_ref)
        group.partial = group.partial or details.get("result") == "partial"
    events = []
    for key, group in groups.items():
        row, on = group.first, group.first.action == CustodyAction.HOLD_PLACED.value
        if key.startswith("item:"):
            label = f"Exhibit {group.refs[0]} {'held' if on else 'released'} on its own"
        else:
            verb = "placed on" if on else "released from"
            label = f"Case legal hold {verb} {_plural(len(group.refs), 'exhibit')}"
        if group.partial:
            label += " (partly: the store refused some versions)"
        events.append(
            TimelineEventOut(
                at=row.at,
                kind="hold_placed" if on else "hold_released",
                label=f"{label}: {row.reason}" if row.reason else label,
                actor=row.actor,
                ref=", ".join(dict.fromkeys(group.refs)),
                evidence_id=row.evidence_id if len(group.refs) == 1 else None,
            )
        )
    return events


def _export_events(session: Session, case_id: uuid.UUID) -> list[TimelineEventOut]:
    events = []
    exports = session.scalars(select(ExportRow).where(ExportRow.case_id == case_id)).all()
    for export in exports:
        to = (
            f" for {export.recipient or export.organisation}"
            if export.recipient or export.organisation
            else ""
        )
        events.append(
            TimelineEventOut(
                at=export.created_at,
                kind="exported",
                label=f"Case bundle exported ({export.contents}, "
                f"{_plural(len(export.items), 'exhibit')}){to}: {export.reason}",
                actor=export.actor,
                ref=", ".join(export.exhibit_refs),
                export_id=export.export_id,
            )
        )
    shares = session.scalars(
        select(ShareRow).where(ShareRow.export_id.in_([e.export_id for e in exports]))
    ).all()
    for share in shares:
        events.append(
            TimelineEventOut(
                at=share.created_at,
                kind="shared",
                label=f"Bundle shared with {share.recipient} ({share.organisation}) until "
                f"{share.expires_at:%Y-%m-%d %H:%M} UTC: {share.reason}",
                actor=share.created_by,
                export_id=share.export_id,
                share_id=share.share_id,
            )
        )
        if share.revoked_at is not None:
            events.append(
                TimelineEventOut(
                    at=share.revoked_at,
                    kind="share_revoked",
                    label=f"Share link for {share.recipient} revoked"
                    + (f": {share.revoke_reason}" if share.revoke_reason else ""),
                    actor=share.revoked_by,
                    export_id=share.export_id,
                    share_id=share.share_id,
                )
            )
    return events


def _note_events(session: Session, case_id: uuid.UUID) -> list[TimelineEventOut]:
    return [
        TimelineEventOut(at=n.at, kind="note", label=n.text, actor=n.actor, note_id=n.id)
        for n in notes(session, case_id)
    ]


def timeline(session: Session, case: CaseRow) -> list[TimelineEventOut]:
    """Everything that happened to the case and its exhibits, oldest first."""
    events = [
        TimelineEventOut(
            at=case.created_at,
            kind="case_created",
            label=f"Case {case.reference} opened: {case.title}",
            actor=case.created_by,
            ref=case.reference,
        ),
        *_incident_events(session, case.items),
        *_exhibit_events(case.items),
        *_hold_events(session, case),
        *_export_events(session, case.case_id),
        *_note_events(session, case.case_id),
    ]
    return sorted(events, key=lambda e: (e.at, KIND_ORDER[e.kind]))
