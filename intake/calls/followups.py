"""Follow-up work: the queue, creating, assigning, recording attempts and closing.

Plain functions, no HTTP: each checks its rule, changes state, writes the audit row and flushes;
the caller commits. A follow-up exists only where the caller consented to be contacted, and an
attempt may not use a channel the caller did not allow (no voicemail without voicemail consent,
no text without text consent). Audit rows carry outcomes and counts, never note text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import aliased, contains_eager, joinedload, lazyload, load_only, raiseload

from intake.audit.services import record
from intake.calls.models import AttemptOutcome, Call, FollowUp, FollowUpAttempt, FollowUpStatus
from intake.extensions import db
from intake.permissions import Permission, can, roles_with
from intake.users.models import User
from intake.users.services import staff_accounts

QUEUE_LIMIT = 100
HISTORY_LIMIT = 100
STAFF_CHOICES_LIMIT = 200
NOTE_MAX_LENGTH = 2000

# Outcomes that use a contact channel needing its own consent: outcome -> Call consent attribute.
_CHANNEL_CONSENT = {
    AttemptOutcome.LEFT_VOICEMAIL: "consent_voicemail",
    AttemptOutcome.TEXT_SENT: "consent_text",
}
CLOSING_STATUSES = frozenset({FollowUpStatus.DONE, FollowUpStatus.CANCELLED})


class FollowUpError(ValueError):
    """A follow-up rule refused the change; ``field`` names the form field it concerns, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NoConsentError(FollowUpError):
    """The caller did not consent to any contact, so no follow-up may be created."""


class QueueFilter(StrEnum):
    MINE = "mine"
    UNASSIGNED = "unassigned"
    ALL = "all"


@dataclass(frozen=True)
class QueueRow:
    """One line of the queue: the follow-up, its call (consent fields only) and its assignee."""

    followup: FollowUp
    call: Call
    assignee: User | None
    overdue: bool
    delta: timedelta  # how long overdue, or how long until due; never negative


def has_contact_consent(call: Call) -> bool:
    """Did the caller allow any contact at all (a call back, a voicemail or a text)?"""
    return bool(call.consent_callback or call.consent_voicemail or call.consent_text)


def check_outcome_consent(call: Call, outcome: AttemptOutcome) -> None:
    """Refuse an outcome that used a channel the caller did not consent to."""
    attribute = _CHANNEL_CONSENT.get(outcome)
    if attribute is None or getattr(call, attribute):
        return
    if outcome == AttemptOutcome.LEFT_VOICEMAIL:
        raise FollowUpError("The caller did not agree to voicemail messages. Do not leave one.", field="outcome")
    raise FollowUpError("The caller did not agree to text messages. Do not send one.", field="outcome")


def create_followup(call: Call, due_at: datetime, assignee: User | None, actor: Any) -> FollowUp:
    """Schedule a call back for ``call``; refused (``NoConsentError``) when the caller consented
    to no contact at all. ``assignee`` may be None (unassigned, anyone on the team takes it)."""
    if not has_contact_consent(call):
        raise NoConsentError("This caller did not consent to being contacted, so no follow-up can be scheduled.")
    if due_at.tzinfo is None:
        raise FollowUpError("The due time must carry a time zone.", field="due_at")
    if assignee is not None:
        _check_assignable(assignee)
    if call.id is None:
        db.session.flush()
    followup = FollowUp(call_id=call.id, due_at=due_at, assignee_id=assignee.id if assignee is not None else None,
                        status=FollowUpStatus.OPEN, attempts=0)
    db.session.add(followup)
    db.session.flush()
    record("followup.created", actor=actor, object_type="followup", object_id=followup.id,
           details={"call_id": call.id, "assignee_id": followup.assignee_id})
    return followup


def open_queue(user: User, queue_filter: QueueFilter, now: datetime, limit: int = QUEUE_LIMIT) -> list[QueueRow]:
    """Open follow-ups by due time (so overdue ones come first), at most ``limit``.

    One query: the call (only its consent columns, so no other confidential text is decrypted)
    and the assignee are joined in.
    """
    assignee = aliased(User)
    query = (
        select(FollowUp, assignee)
        .join(FollowUp.call)
        .outerjoin(assignee, assignee.id == FollowUp.assignee_id)
        .options(contains_eager(FollowUp.call).options(
            load_only(Call.id, Call.uid, Call.started_at, Call.consent_callback, Call.consent_voicemail,
                      Call.consent_text, Call.safe_times, raiseload=True),
            raiseload("*")))
        .where(FollowUp.status == FollowUpStatus.OPEN)
        .options(load_only(*_user_columns(assignee)))
        .order_by(FollowUp.due_at, FollowUp.id)
        .limit(min(limit, QUEUE_LIMIT))
    )
    if queue_filter == QueueFilter.MINE:
        query = query.where(FollowUp.assignee_id == user.id)
    elif queue_filter == QueueFilter.UNASSIGNED:
        query = query.where(FollowUp.assignee_id.is_(None))
    rows = []
    for followup, staff in db.session.execute(query).unique().all():
        overdue = followup.due_at <= now
        delta = now - followup.due_at if overdue else followup.due_at - now
        rows.append(QueueRow(followup, followup.call, staff, overdue, delta))
    return rows


def load_followup(followup_id: int) -> FollowUp | None:
    """A follow-up with its call, or None. Only the call's consent columns are read (and so
    decrypted): the caller's name, number and notes stay sealed unless something asks for them."""
    return db.session.execute(
        select(FollowUp).options(joinedload(FollowUp.call).options(
            load_only(Call.id, Call.uid, Call.started_at, Call.consent_callback, Call.consent_voicemail,
                      Call.consent_text, Call.safe_times, Call.safe_wording),
            lazyload("*")))
        .where(FollowUp.id == followup_id)
    ).scalar_one_or_none()


def attempt_history(followup: FollowUp, limit: int = HISTORY_LIMIT) -> list[FollowUpAttempt]:
    """The follow-up's attempts, newest first (at most ``limit``)."""
    return list(db.session.execute(
        select(FollowUpAttempt).where(FollowUpAttempt.followup_id == followup.id)
        .order_by(FollowUpAttempt.attempted_at.desc(), FollowUpAttempt.id.desc()).limit(limit)
    ).scalars())


def assignable_staff() -> list[User]:
    """Active staff who work follow-ups (operators, supervisors): who a follow-up can be given to."""
    return staff_accounts(active_only=True, roles=roles_with([Permission.FOLLOWUPS_WORK]))


def users_by_id(ids: set[int]) -> dict[int, User]:
    """The accounts with these ids, in one query (for naming who made each attempt)."""
    if not ids:
        return {}
    query = select(User).options(load_only(*_user_columns(User))).where(User.id.in_(ids))
    return {u.id: u for u in db.session.execute(query).scalars()}


def _user_columns(entity: Any) -> tuple[Any, ...]:
    """What naming a staff member needs: their name and address, not their authenticator secret."""
    return (entity.id, entity.uid, entity.email, entity.display_name, entity.active, entity.session_version)


def _check_open(followup: FollowUp) -> None:
    if followup.status != FollowUpStatus.OPEN:
        raise FollowUpError("This follow-up is closed; nothing can be changed on it.")


def _check_assignable(user: User) -> None:
    if not can(user, Permission.FOLLOWUPS_WORK):
        raise FollowUpError("Follow-ups can only be given to an active operator or administrator.", field="assignee")


def assign_followup(followup: FollowUp, assignee: User, actor: Any) -> None:
    """Give an open follow-up to ``assignee`` (an active operator or admin)."""
    _check_open(followup)
    _check_assignable(assignee)
    previous = followup.assignee_id
    followup.assignee_id = assignee.id
    db.session.flush()
    record("followup.assigned", actor=actor, object_type="followup", object_id=followup.id,
           details={"assignee_id": assignee.id, "previous_assignee_id": previous})


def record_attempt(followup: FollowUp, outcome: AttemptOutcome | str, note: str | None, actor: Any,
                   now: datetime) -> FollowUpAttempt:
    """Record one try at reaching the caller. The note is stored encrypted and never audited."""
    _check_open(followup)
    try:
        outcome = AttemptOutcome(outcome)
    except ValueError as exc:
        raise FollowUpError("Choose one of the listed outcomes.", field="outcome") from exc
    check_outcome_consent(followup.call, outcome)
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX_LENGTH:
        raise FollowUpError(f"Notes are at most {NOTE_MAX_LENGTH} characters.", field="note")
    attempt = FollowUpAttempt(followup_id=followup.id, operator_id=actor.id, attempted_at=now,
                              outcome=outcome, note=note)
    db.session.add(attempt)
    followup.attempts = (followup.attempts or 0) + 1
    followup.last_outcome = outcome
    db.session.flush()
    record("followup.attempt", actor=actor, object_type="followup", object_id=followup.id,
           details={"outcome": outcome.value, "attempt": followup.attempts, "has_note": note is not None})
    return attempt


def close_followup(followup: FollowUp, status: FollowUpStatus | str, outcome: AttemptOutcome | str | None,
                   actor: Any, now: datetime) -> None:
    """Close an open follow-up as done or cancelled; ``outcome``, when given, becomes its last outcome."""
    _check_open(followup)
    try:
        status = FollowUpStatus(status)
    except ValueError as exc:
        raise FollowUpError("Choose done or cancelled.", field="resolution") from exc
    if status not in CLOSING_STATUSES:
        raise FollowUpError("Choose done or cancelled.", field="resolution")
    if outcome:
        try:
            outcome = AttemptOutcome(outcome)
        except ValueError as exc:
            raise FollowUpError("Choose one of the listed outcomes.", field="outcome") from exc
        check_outcome_consent(followup.call, outcome)
        followup.last_outcome = outcome
    followup.status = status
    followup.closed_at = now
    db.session.flush()
    record("followup.closed", actor=actor, object_type="followup", object_id=followup.id,
           details={"status": status.value, "outcome": outcome.value if outcome else None,
                    "attempts": followup.attempts})


# What a callback's outcome does to the follow-up when the operator records it in one step: reached,
# declined or a wrong number ends it; the others leave it open for another try.
CLOSES_ON = {
    AttemptOutcome.REACHED: FollowUpStatus.DONE,
    AttemptOutcome.DECLINED: FollowUpStatus.DONE,
    AttemptOutcome.WRONG_NUMBER: FollowUpStatus.CANCELLED,
}


def record_callback(followup: FollowUp, outcome: AttemptOutcome | str, note: str | None, keep_open: bool,
                    actor: Any, now: datetime) -> FollowUpStatus:
    """One callback in one step: the attempt is recorded and, when its outcome ends the follow-up (and
    the operator did not ask to keep it open), the follow-up is closed too. Returns the new status."""
    attempt = record_attempt(followup, outcome, note, actor, now)
    closing = CLOSES_ON.get(attempt.outcome)
    if closing is not None and not keep_open:
        close_followup(followup, closing, None, actor, now)
    return followup.status


def caller_phone(followup: FollowUp) -> str | None:
    """The caller's number, decrypted: loaded through the ORM (the column alone would be the sealed
    envelope), only when asked (``load_followup`` leaves it unread). The reveal that shows it is audited."""
    return followup.call.caller_phone
