"""Retention: how long each kind of data is kept, legal holds, and the purge that applies them.

Four kinds (``DataKind``), each with a default period used until an admin saves a policy, a
lower limit below which the law or our own records would suffer, and what the purge does:

- ``call_text``: a call's free text and contact details are stripped (set to NULL, the phone's
  blind index too, so a repeat-caller lookup cannot find it), with the notes of its tasks and
  follow-up attempts; the coded fields stay for the figures. Emergency disclosures (42 CFR 2.51)
  are *not* call text: they are the record of who was told what about the caller and why, which
  the program must document and account for, so they stay with the call record.
- ``call_record``: the call is deleted with everything hanging off it (the foreign keys cascade).
  At least six years, so the disclosures above stay as long as an accounting of disclosures
  can be asked for (45 CFR 164.528).
- ``released_document``: the bytes of a copy of the records released to a requester are deleted
  once the request is closed, the download period ended (expired or withdrawn) and ``keep_days``
  passed since the release. The document row (name, size, SHA-256) stays as proof of what went
  out; letters and anything never released are not touched.
- ``audit_event``: the oldest events are removed as a prefix of the hash chain. A checkpoint
  (the last removed event's seq and hash, signed with the audit key) is written first, in the
  same transaction, and ``verify_chain`` starts from it; the database refuses to delete any event
  past the latest checkpoint or younger than six years (on PostgreSQL, any event at all unless the
  purge job's role asks). The last expired event is always kept: its time, which the key vouches
  for, is what proves that everything removed before it had expired. Never less than six years
  (45 CFR 164.316(b)(2)). Each run ends by writing a signed anchor of the chain's head outside the
  database (``intake/audit/anchor.py``).

The purge works in batches, one transaction each, committed here (it runs from the command line,
not from a request): every batch is audited as ``retention.purged`` and its progress is in the
rows themselves (``text_purged_at``, ``content_purged_at``, rows gone), so an interrupted run is
finished by the next one and nothing is done twice. A legal hold stops every purge of its kind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, or_, select, update

from intake.admin.models import DataKind, RetentionPolicy
from intake.archive.models import ArchivedPatient
from intake.audit.anchor import write_anchor
from intake.audit.chain import AUDIT_MIN_KEEP_DAYS, CHECKPOINT_ACTION, sign_checkpoint
from intake.audit.models import AuditCheckpoint, AuditEvent
from intake.audit.services import lock_trail, record
from intake.calls.models import Call, CallTask, FollowUp, FollowUpAttempt, SupervisorNote
from intake.database import affected_rows
from intake.db_types import utcnow
from intake.extensions import db
from intake.records.models import DocumentContent, FileKind, RecordsRequest, RequestDocument

MAX_DAYS = 36500
HOLD_REASON_MAX = 500
OBJECT_TYPE = "retention_policy"


@dataclass(frozen=True)
class KindRule:
    default_days: int
    min_days: int
    label: Any  # lazy string
    action: Any  # what the purge does to it (lazy string)


RULES: dict[DataKind, KindRule] = {
    DataKind.CALL_TEXT: KindRule(730, 30, _l("Call free text and contact details"),
                                 _l("stripped: names, phone numbers, notes and safe wording removed")),
    DataKind.CALL_RECORD: KindRule(2555, 2192, _l("Call records (coded fields)"),
                                   _l("deleted, with their referrals, tasks, follow-ups and disclosures")),
    DataKind.RELEASED_DOCUMENT: KindRule(365, 30, _l("Records released to requesters"),
                                         _l("file contents deleted; the list of what was released stays")),
    DataKind.AUDIT_EVENT: KindRule(2192, AUDIT_MIN_KEEP_DAYS, _l("Audit events"),
                                   _l("oldest events deleted behind a checkpoint of the hash chain")),
}
# Text before records: a call old enough to be deleted is never stripped first for nothing.
ORDER = (DataKind.CALL_TEXT, DataKind.CALL_RECORD, DataKind.RELEASED_DOCUMENT, DataKind.AUDIT_EVENT)


class PolicyInvalid(ValueError):
    """A policy change that breaks a rule; ``errors`` maps form fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Policy:
    kind: DataKind
    keep_days: int
    legal_hold: bool
    hold_reason: str | None
    updated_by_id: int | None
    updated_at: datetime | None  # None while the default applies
    rule: KindRule

    @property
    def is_default(self) -> bool:
        return self.updated_at is None

    def cutoff(self, now: datetime) -> datetime:
        """Data from before this moment has expired."""
        return now - timedelta(days=self.keep_days)


def policies() -> dict[DataKind, Policy]:
    """The four policies, saved ones merged over the defaults (one query)."""
    saved = {row.kind: row for row in db.session.execute(select(RetentionPolicy)).scalars()}
    result = {}
    for kind in ORDER:
        rule, row = RULES[kind], saved.get(kind)
        if row is None:
            result[kind] = Policy(kind, rule.default_days, False, None, None, None, rule)
        else:
            result[kind] = Policy(kind, row.keep_days, row.legal_hold, row.hold_reason, row.updated_by_id,
                                  row.updated_at, rule)
    return result


def update_policy(kind: DataKind | str, keep_days: int, legal_hold: bool, hold_reason: str | None,
                  actor: Any) -> Policy:
    """Save one kind's period and hold. A hold needs a reason (kept encrypted; the audit event has
    the kind, the days and the hold flag, never the reason). Raises ``PolicyInvalid``."""
    kind = DataKind(kind)
    rule = RULES[kind]
    current = policies()
    errors: dict[str, str] = {}
    if not rule.min_days <= keep_days <= MAX_DAYS:
        errors["keep_days"] = _("Enter a number of days from %(min)d to %(max)d.", min=rule.min_days, max=MAX_DAYS)
    elif kind == DataKind.CALL_TEXT and keep_days > current[DataKind.CALL_RECORD].keep_days:
        errors["keep_days"] = _("Call text cannot be kept longer than the call records themselves (%(n)d days).",
                                n=current[DataKind.CALL_RECORD].keep_days)
    elif kind == DataKind.CALL_RECORD and keep_days < current[DataKind.CALL_TEXT].keep_days:
        errors["keep_days"] = _("Call records must be kept at least as long as their text (%(n)d days).",
                                n=current[DataKind.CALL_TEXT].keep_days)
    reason = (hold_reason or "").strip()
    if legal_hold and not reason:
        errors["hold_reason"] = _("Say why the data is held (for example the case or request it is held for).")
    elif len(reason) > HOLD_REASON_MAX:
        errors["hold_reason"] = _("Keep the reason under %(n)d characters.", n=HOLD_REASON_MAX)
    if errors:
        raise PolicyInvalid(errors)
    row = db.session.get(RetentionPolicy, kind)
    before = current[kind]
    if row is None:
        row = RetentionPolicy(kind=kind)
        db.session.add(row)
    row.keep_days, row.legal_hold = keep_days, bool(legal_hold)
    row.hold_reason = reason if legal_hold else None
    row.updated_by_id = getattr(actor, "id", None)
    row.updated_at = utcnow()
    record("retention.policy_changed", actor=actor, object_type=OBJECT_TYPE, object_id=kind.value,
           details={"kind": kind.value, "keep_days": keep_days, "legal_hold": bool(legal_hold),
                    "previous_days": before.keep_days, "previous_hold": before.legal_hold})
    db.session.flush()
    return policies()[kind]


# --- What has expired ---------------------------------------------------------------------------
# Each kind has a counter (for the dry run: how many rows a purge would touch now) and a batch
# (one batch of work in the current transaction, returning how many rows it touched).

def _call_text_ids(cutoff: datetime, limit: int) -> list[int]:
    return list(db.session.execute(
        select(Call.id).where(Call.text_purged_at.is_(None), Call.started_at < cutoff)
        .order_by(Call.text_purged_at, Call.started_at).limit(limit)).scalars())


def _count_call_text(cutoff: datetime, now: datetime) -> int:
    return db.session.execute(select(func.count()).select_from(Call).where(
        Call.text_purged_at.is_(None), Call.started_at < cutoff)).scalar_one()


def _batch_call_text(cutoff: datetime, now: datetime, size: int) -> int:
    ids = _call_text_ids(cutoff, size)
    if not ids:
        return 0
    db.session.execute(update(CallTask).where(CallTask.call_id.in_(ids)).values(note=None)
                       .execution_options(synchronize_session=False))
    db.session.execute(update(FollowUpAttempt)
                       .where(FollowUpAttempt.followup_id.in_(select(FollowUp.id).where(FollowUp.call_id.in_(ids))))
                       .values(note=None).execution_options(synchronize_session=False))
    db.session.execute(update(SupervisorNote).where(SupervisorNote.call_id.in_(ids)).values(body=None)
                       .execution_options(synchronize_session=False))
    # The condition is repeated so a second purge running at the same moment counts nothing twice.
    return affected_rows(db.session.execute(
        update(Call).where(Call.id.in_(ids), Call.text_purged_at.is_(None))
        .values(caller_name=None, caller_phone=None, caller_phone_index=None, safe_times=None, safe_wording=None,
                notes=None, draft_extras=None, text_purged_at=now)
        .execution_options(synchronize_session=False)))


def _count_call_record(cutoff: datetime, now: datetime) -> int:
    return db.session.execute(select(func.count()).select_from(Call).where(Call.started_at < cutoff)).scalar_one()


def _batch_call_record(cutoff: datetime, now: datetime, size: int) -> int:
    ids = list(db.session.execute(select(Call.id).where(Call.started_at < cutoff)
                                  .order_by(Call.started_at, Call.id).limit(size)).scalars())
    if not ids:
        return 0
    # Substances, referrals, tasks, follow-ups (and their attempts), disclosures and reviews go
    # with the call: every foreign key to calls is ON DELETE CASCADE.
    return affected_rows(db.session.execute(delete(Call).where(Call.id.in_(ids))
                              .execution_options(synchronize_session=False)))


def _expired_documents(cutoff: datetime, now: datetime):
    return (select(RequestDocument.id)
            .join(RecordsRequest, RecordsRequest.id == RequestDocument.request_id)
            .where(RequestDocument.kind == FileKind.RELEASED_RECORD, RequestDocument.content_purged_at.is_(None),
                   RequestDocument.released_at.is_not(None), RequestDocument.released_at < cutoff,
                   or_(RequestDocument.revoked_at.is_not(None), RequestDocument.expires_at <= now),
                   RecordsRequest.is_open.is_(False)))


def _count_released_document(cutoff: datetime, now: datetime) -> int:
    return db.session.execute(select(func.count()).select_from(_expired_documents(cutoff, now).subquery())).scalar_one()


def _batch_released_document(cutoff: datetime, now: datetime, size: int) -> int:
    ids = list(db.session.execute(_expired_documents(cutoff, now).order_by(RequestDocument.id).limit(size)).scalars())
    if not ids:
        return 0
    db.session.execute(delete(DocumentContent).where(DocumentContent.id.in_(ids))
                       .execution_options(synchronize_session=False))
    return affected_rows(db.session.execute(
        update(RequestDocument).where(RequestDocument.id.in_(ids), RequestDocument.content_purged_at.is_(None))
        .values(content_purged_at=now).execution_options(synchronize_session=False)))


def _latest_checkpoint() -> AuditCheckpoint | None:
    return db.session.execute(
        select(AuditCheckpoint).order_by(AuditCheckpoint.through_seq.desc()).limit(1)).scalar_one_or_none()


def _audit_target(cutoff: datetime) -> int | None:
    """The last event to remove: the one before the last event of the longest prefix of the chain
    older than ``cutoff``. Events are removed only as a prefix, so one young event stops the prefix
    even if older ones follow it; and the last expired event stays, so the first event the chain
    keeps is itself expired and its (keyed) time proves that everything removed was too
    (``intake/audit/chain.py``, ``_checkpoint_problem``)."""
    first_young = db.session.execute(
        select(func.min(AuditEvent.seq)).where(AuditEvent.occurred_at >= cutoff)).scalar_one()
    if first_young is not None:
        return first_young - 2
    last = db.session.execute(select(func.max(AuditEvent.seq))).scalar_one()
    return None if last is None else last - 1


def _count_audit_event(cutoff: datetime, now: datetime) -> int:
    checkpoint = _latest_checkpoint()
    through = max(_audit_target(cutoff) or 0, checkpoint.through_seq if checkpoint else 0)
    return db.session.execute(select(func.count()).select_from(AuditEvent)
                              .where(AuditEvent.seq <= through)).scalar_one()


def _batch_audit_event(cutoff: datetime, now: datetime, size: int) -> int:
    lock_trail()  # serialise with every append (and with a second purge)
    checkpoint = _latest_checkpoint()
    through = checkpoint.through_seq if checkpoint else 0
    first = db.session.execute(select(func.min(AuditEvent.seq))).scalar_one()
    if first is None:
        return 0
    if first > through:
        # Everything up to the last checkpoint is gone: a new checkpoint further on, if due.
        target = _audit_target(cutoff)
        if target is None or target < first:
            return 0
        last = db.session.get_one(AuditEvent, target)
        checkpoint = AuditCheckpoint(through_seq=target, through_hash=last.hash, created_at=utcnow())
        sign_checkpoint(checkpoint)
        db.session.add(checkpoint)
        db.session.flush()
        # Announced in the chain itself (a keyed link, with a time the key vouches for), so
        # ``verify_chain`` can check the checkpoint against the events it kept.
        record(CHECKPOINT_ACTION, object_type="audit_checkpoint", object_id=checkpoint.id,
               details={"through_seq": target, "through_hash": last.hash,
                        "cutoff": cutoff.isoformat(timespec="seconds")})
        through = target
    upper = min(through, first + size - 1)
    return affected_rows(db.session.execute(delete(AuditEvent).where(AuditEvent.seq >= first, AuditEvent.seq <= upper)
                              .execution_options(synchronize_session=False)))


COUNTERS: dict[DataKind, Callable[[datetime, datetime], int]] = {
    DataKind.CALL_TEXT: _count_call_text,
    DataKind.CALL_RECORD: _count_call_record,
    DataKind.RELEASED_DOCUMENT: _count_released_document,
    DataKind.AUDIT_EVENT: _count_audit_event,
}
BATCHES: dict[DataKind, Callable[[datetime, datetime, int], int]] = {
    DataKind.CALL_TEXT: _batch_call_text,
    DataKind.CALL_RECORD: _batch_call_record,
    DataKind.RELEASED_DOCUMENT: _batch_released_document,
    DataKind.AUDIT_EVENT: _batch_audit_event,
}


@dataclass(frozen=True)
class KindResult:
    kind: DataKind
    cutoff: datetime
    count: int  # rows purged (or, in a dry run, that would be)
    held: bool = False
    dry_run: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not self.held and self.count == 0


class PurgeInterrupted(RuntimeError):
    """A batch failed: ``done`` holds what was purged (and committed) before it, the last entry
    being the kind that failed, whose count is the batches committed before the failure."""

    def __init__(self, done: list[KindResult], kind: DataKind) -> None:
        super().__init__(f"purge interrupted during {kind.value}")
        self.done = done
        self.kind = kind


def plan(now: datetime | None = None) -> list[KindResult]:
    """Per kind: its cutoff, whether it is held, and how many rows a purge would touch now.

    Counts rows, so it runs only when asked (the dry run, the page's preview), never on a page load.
    """
    return purge(now, dry_run=True)


def purge(now: datetime | None = None, dry_run: bool = False, batch_size: int = 500,
          on_batch: Callable[[DataKind, int], None] | None = None) -> list[KindResult]:
    """Apply every policy: per kind, batches of at most ``batch_size`` rows, each committed in
    its own transaction with a ``retention.purged`` audit event. A held kind is not touched.
    With ``dry_run`` nothing is written and the counts say what would be purged. ``on_batch``
    hears each committed batch (kind, rows): the command's progress bar."""
    now = now or utcnow()
    results: list[KindResult] = []
    try:
        for kind, policy in policies().items():
            results.append(_purge_kind(kind, policy, now, dry_run, batch_size, results, on_batch))
    except PurgeInterrupted:
        try:
            _anchor_after_purge()  # the batches committed before the failure stand: anchor them
        except Exception:  # noqa: BLE001 - the database may be what failed; the interruption is the news
            db.session.rollback()
            logging.getLogger(__name__).warning("no anchor written after the interrupted purge")
        raise
    if dry_run:
        db.session.rollback()
    else:
        _anchor_after_purge()
    return results


def _anchor_after_purge() -> None:
    """Every purge ends by anchoring the chain's head outside the database (``write_anchor``)."""
    db.session.rollback()  # only what is committed is anchored
    write_anchor("purge")
    db.session.commit()  # the e-mail to the privacy officer, when one is set


def _purge_kind(kind: DataKind, policy: Policy, now: datetime, dry_run: bool, batch_size: int,
                done: list[KindResult], on_batch: Callable[[DataKind, int], None] | None = None) -> KindResult:
    """One kind of ``purge``: its batches, each committed with its audit event."""
    cutoff = policy.cutoff(now)
    if policy.legal_hold:
        return KindResult(kind, cutoff, 0, held=True, dry_run=dry_run)
    if dry_run:
        return KindResult(kind, cutoff, COUNTERS[kind](cutoff, now), dry_run=True)
    db.session.commit()  # what the caller did before stays out of the batches
    total = 0
    try:
        while True:
            count = BATCHES[kind](cutoff, now, batch_size)
            if count == 0:
                db.session.rollback()
                break
            record("retention.purged", object_type=OBJECT_TYPE, object_id=kind.value,
                   details={"kind": kind.value, "count": count, "cutoff": cutoff.isoformat(timespec="seconds")})
            db.session.commit()
            total += count
            if on_batch is not None:
                on_batch(kind, count)
    except Exception as exc:
        # Only the failed batch is undone; the committed ones stand and the next run goes on.
        db.session.rollback()
        raise PurgeInterrupted([*done, KindResult(kind, cutoff, total)], kind) from exc
    return KindResult(kind, cutoff, total)


def last_purges() -> dict[DataKind, datetime]:
    """When each kind was last purged, from the audit trail (one indexed lookup per kind)."""
    found = {}
    for kind in ORDER:
        when = db.session.execute(
            select(AuditEvent.occurred_at).where(AuditEvent.object_type == OBJECT_TYPE,
                                                 AuditEvent.object_id == kind.value,
                                                 AuditEvent.action == "retention.purged")
            .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one_or_none()
        if when is not None:
            found[kind] = when
    return found


# --- The archive index: former patients past their retention date --------------------------------

@dataclass(frozen=True)
class PastRetention:
    patient_id: int
    retention_until: date


def past_retention(today: date, after: tuple[date, int] | None = None, size: int = 50) -> list[PastRetention]:
    """Archived patients past both their retention date and their lawful floor, and not held, before
    ``today``, oldest date first, keyset-paged
    on (retention_until, id) after ``after``. Only the record number and the date: the names and
    MRN are confidential and the reviewer opens the record to see them."""
    # Never before the lawful floor (H&S 123145, six years of documentation; ``archive.services``), never
    # without one, never under a legal hold: a typed date alone does not make a record destroyable.
    stmt = select(ArchivedPatient.id, ArchivedPatient.retention_until).where(
        ArchivedPatient.retention_until.is_not(None), ArchivedPatient.retention_until < today,
        ArchivedPatient.retention_floor.is_not(None), ArchivedPatient.retention_floor < today,
        ArchivedPatient.legal_hold.is_(False))
    if after is not None:
        day, row_id = after
        stmt = stmt.where(or_(ArchivedPatient.retention_until > day,
                              (ArchivedPatient.retention_until == day) & (ArchivedPatient.id > row_id)))
    rows = db.session.execute(stmt.order_by(ArchivedPatient.retention_until, ArchivedPatient.id).limit(size)).all()
    return [PastRetention(row.id, row.retention_until) for row in rows]
